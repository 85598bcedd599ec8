"""Forms of the teaching pages: building a proficiency set and assigning it."""

from django import forms
from django.contrib.auth.models import Group
from django.db.models import QuerySet

from accounts.models import User
from accounts.roles import Role
from classifier.models import CellClass
from review.teaching_selectors import SourceCriteria
from review.teaching_services import MAX_SET_SIZE, MAX_TIME_LIMIT_MINUTES


class ProficiencySetForm(forms.Form):
    name = forms.CharField(max_length=200)
    label = forms.ChoiceField(
        choices=[("", "Any class"), *CellClass.choices], required=False, label="Verified class"
    )
    min_confidence = forms.IntegerField(
        min_value=0, max_value=100, initial=0, label="Model confidence from (%)"
    )
    max_confidence = forms.IntegerField(min_value=0, max_value=100, initial=100, label="to (%)")
    model_wrong_only = forms.BooleanField(
        required=False, label="Only cells the model got wrong (verified class differs from its prediction)"
    )
    size = forms.IntegerField(min_value=1, max_value=MAX_SET_SIZE, initial=20, label="Number of cells")
    time_limit_minutes = forms.IntegerField(
        min_value=1, max_value=MAX_TIME_LIMIT_MINUTES, required=False, label="Time limit (minutes, optional)"
    )

    def criteria(self) -> SourceCriteria:
        data = self.cleaned_data
        return SourceCriteria(
            label=data["label"],
            min_confidence=data["min_confidence"] / 100,
            max_confidence=data["max_confidence"] / 100,
            model_wrong_only=data["model_wrong_only"],
        )


def trainee_choices() -> QuerySet[User]:
    return User.objects.filter(is_active=True, groups__name=Role.TRAINEE).order_by("username")


def assignable_groups() -> QuerySet[Group]:
    """The trainee role's group and groups that are not roles (a class, a year of residents)."""
    other_roles = [role.value for role in Role if role != Role.TRAINEE]
    return Group.objects.exclude(name__in=other_roles).order_by("name")


class AssignForm(forms.Form):
    trainees = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trainees"].queryset = trainee_choices()
        self.fields["trainees"].label_from_instance = lambda user: f"{user.display_name} ({user.username})"
        self.fields["groups"].queryset = assignable_groups()
