"""Forms of the consult pages."""

from datetime import timedelta

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from classifier.models import Prediction
from review.selectors import class_name


def consultant_choices(requester: User) -> QuerySet[User]:
    return (
        User.objects.filter(is_active=True, groups__name__in=[Role.PATHOLOGIST, Role.CONSULTANT])
        .exclude(pk=requester.pk)
        .distinct()
        .order_by("last_name", "username")
    )


class ConsultRequestForm(forms.Form):
    consultant = forms.ModelChoiceField(queryset=User.objects.none(), help_text="A pathologist or consultant")
    question = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    blind = forms.BooleanField(
        required=False,
        initial=True,
        label="Blind: the consultant does not see the primary labels (nor the model's)",
    )
    access_days = forms.IntegerField(
        min_value=1,
        max_value=30,
        initial=7,
        label="Access for (days)",
        help_text="The consultant's access ends then",
    )
    cells = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every counted classified cell of the slide",
    )

    def __init__(self, *args, requester: User, predictions: list[Prediction], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        consultant = self.fields["consultant"]
        consultant.queryset = consultant_choices(requester)
        consultant.label_from_instance = lambda user: (
            f"{user.display_name} ({user.role.label if user.role else ''})"
        )
        self.fields["cells"].choices = [
            (
                str(prediction.pk),
                f"{prediction.cell_image.original_filename}: model {class_name(prediction.label)}"
                + (f", reviewed {class_name(prediction.review_label)}" if prediction.review_label else ""),
            )
            for prediction in predictions
        ]

    def access_until(self):  # noqa: ANN201
        return timezone.now() + timedelta(days=self.cleaned_data["access_days"])

    def prediction_ids(self) -> list[int]:
        return [int(value) for value in self.cleaned_data["cells"]]


class OpinionForm(forms.Form):
    opinion = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=8000)
