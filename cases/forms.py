from datetime import datetime

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils import timezone

from cases.models import Patient, Priority, Slide


class _CrispyModelForm(forms.ModelForm):
    submit_label = "Save"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", self.submit_label))

    def read_only(self) -> None:
        """Shown, not editable: every field disabled (a posted value would be ignored) and no button."""
        for field in self.fields.values():
            field.disabled = True
        self.helper.inputs = []


class PatientForm(_CrispyModelForm):
    correction_reason = forms.CharField(
        max_length=500,
        required=False,
        help_text="Required once a slide of the patient is signed: the change is then a recorded "
        "correction, shown with the signed reports.",
    )

    class Meta:
        model = Patient
        fields = ["mrn", "family_name", "given_name", "date_of_birth", "sex"]
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The browser's date picker offers no future date; the model refuses one anyway.
        self.fields["date_of_birth"].widget.attrs["max"] = timezone.localdate().isoformat()


def _datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class SlideForm(_CrispyModelForm):
    class Meta:
        model = Slide
        fields = ["accession_number", "collected_at", "received_at", "priority", "stain", "notes"]
        widgets = {
            "collected_at": _datetime_input(),
            "received_at": _datetime_input(),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"received_at": "Received in the lab"}
        help_texts = {
            "received_at": "Turnaround time runs from here to sign-off.",
            "priority": "Urgent slides come first on the pathologists' worklist.",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Left out of a post, they keep the slide's values (now and routine for a new slide).
        self.fields["received_at"].required = False
        self.fields["priority"].required = False

    def clean_received_at(self) -> datetime:
        return self.cleaned_data["received_at"] or self.instance.received_at or timezone.now()

    def clean_priority(self) -> str:
        return self.cleaned_data["priority"] or self.instance.priority or Priority.ROUTINE


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")


class CellImageDeleteForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"list": "delete-reasons", "autocomplete": "off"}),
        help_text="Kept in the audit trail with the image's name and SHA-256.",
    )
    return_to = forms.ChoiceField(choices=[("slide", "slide"), ("upload", "upload")], required=False)
