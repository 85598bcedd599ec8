"""Forms of the review pages (and the date-range export, shared with the API)."""

from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from cases.models import Slide
from classifier.models import CellClass
from review.models import ExclusionCategory
from review.selectors import CONFIDENCE_BANDS, QueueFilters


class QueueFilterForm(forms.Form):
    slide = forms.ModelChoiceField(
        queryset=Slide.objects.none(), required=False, empty_label="All awaiting review"
    )
    label = forms.ChoiceField(choices=[("", "Any class"), *CellClass.choices], required=False)
    band = forms.ChoiceField(
        choices=[("", "Any confidence"), *((key, text) for key, (text, _) in CONFIDENCE_BANDS.items())],
        required=False,
    )
    reviewed = forms.ChoiceField(
        choices=[("", "Reviewed or not"), ("no", "Not reviewed"), ("yes", "Reviewed")], required=False
    )

    def __init__(self, *args, slides: QuerySet[Slide], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slide"].queryset = slides

    def filters(self) -> QueueFilters:
        if not self.is_valid():
            return QueueFilters()
        data = self.cleaned_data
        reviewed = {"yes": True, "no": False}.get(data["reviewed"])
        return QueueFilters(slide=data["slide"], label=data["label"], band=data["band"], reviewed=reviewed)


class ExclusionForm(forms.Form):
    category = forms.ChoiceField(choices=ExclusionCategory.choices)
    reason = forms.CharField(max_length=2000)


class IncludeForm(forms.Form):
    reason = forms.CharField(max_length=2000)


class SignForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True})
    )
    acknowledge_domain = forms.BooleanField(
        required=False,
        label="I reviewed every cell myself: this slide is outside the model's validated domain, "
        "where its confidence does not hold.",
    )

    def __init__(self, *args, domain_attention: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not domain_attention:
            del self.fields["acknowledge_domain"]
        else:
            self.fields["acknowledge_domain"].required = True


class AmendForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Your password, as for signing: reopening a signed result needs it every time.",
    )


class DateRangeExportForm(forms.Form):
    collected_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    collected_to = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    export_format = forms.ChoiceField(choices=[("csv", "CSV"), ("json", "JSON")], initial="csv")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("collected_from"), data.get("collected_to")
        if isinstance(start, date) and isinstance(end, date) and start > end:
            raise ValidationError("The start date is after the end date.")
        return data


class LabAdaptationForm(forms.Form):
    """Which verified cells the model learns the lab from."""

    selection = forms.CharField(widget=forms.HiddenInput, initial="1", required=False)
    signed_only = forms.BooleanField(
        required=False, initial=True, label="Only cells of signed slides (their result was approved)"
    )
    date_from = forms.DateField(
        required=False, label="Reviewed from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="Reviewed until", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if isinstance(start, date) and isinstance(end, date) and start > end:
            raise ValidationError("The start date is after the end date.")
        return data
