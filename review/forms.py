"""Forms of the review pages (and the date-range export, shared with the API)."""

from datetime import date

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from cases.models import TARGET_COUNT_MAX, TARGET_COUNT_MIN, WBC_COUNT_MAX, WBC_COUNT_MIN, Slide
from classifier.models import CellClass
from review.models import DifferentialClass, ExclusionCategory
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


class FieldCellAddForm(forms.Form):
    """A box on a field, in the field's pixels (top-left corner, width, height)."""

    x = forms.IntegerField(min_value=0)
    y = forms.IntegerField(min_value=0)
    width = forms.IntegerField(min_value=1)
    height = forms.IntegerField(min_value=1)
    reason = forms.CharField(max_length=2000, required=False)


class IncludeForm(forms.Form):
    reason = forms.CharField(max_length=2000)


COMMENT_MAX_LENGTH = 4000


class SignForm(forms.Form):
    comment = forms.CharField(
        label="Comment / interpretation",
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed on the report with your signature (optional). After an amendment it starts "
        "from the comment of the version signed before.",
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True})
    )
    acknowledge_domain = forms.BooleanField(
        required=False,
        label="I reviewed every cell myself: this slide is outside the model's validated domain, "
        "where its confidence does not hold.",
    )
    acknowledge_count = forms.BooleanField(required=False)

    acknowledge_consults = forms.BooleanField(
        required=False,
        label="Sign without waiting: a consult of this slide is not closed "
        "(the signature keeps it as it stands).",
    )

    def __init__(
        self,
        *args,
        domain_attention: bool = False,
        below_target: str = "",
        open_consults: bool = False,
        **kwargs,
    ) -> None:
        """``below_target``: e.g. "73 / 100 WBC counted" when the slide is below its target."""
        super().__init__(*args, **kwargs)
        if not domain_attention:
            del self.fields["acknowledge_domain"]
        else:
            self.fields["acknowledge_domain"].required = True
        if not below_target:
            del self.fields["acknowledge_count"]
        else:
            self.fields["acknowledge_count"].required = True
            self.fields["acknowledge_count"].label = (
                f"I sign below the target count ({below_target}): the differential counts fewer white "
                "cells than this slide should."
            )
        if not open_consults:
            del self.fields["acknowledge_consults"]
        else:
            self.fields["acknowledge_consults"].required = True


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


class _CrispyForm(forms.Form):
    submit_label = "Save"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", self.submit_label))


class DifferentialClassForm(forms.ModelForm):
    """An admin's form for one class of the lab's list (the code only when the class is new)."""

    reason = forms.CharField(
        max_length=500, required=False, help_text="Why it changes (kept in the audit trail)"
    )

    class Meta:
        model = DifferentialClass
        fields = [
            "code",
            "name",
            "counting",
            "shortcut",
            "always_reported",
            "is_active",
            "loinc_code",
            "loinc_display",
            "absolute_loinc_code",
            "absolute_loinc_display",
            "reference_low",
            "reference_high",
        ]
        labels = {
            "is_active": "Active (may be given to cells)",
            "always_reported": "Always reported, with 0 when no cell has it",
            "loinc_code": "LOINC code (per 100 leukocytes)",
            "absolute_loinc_code": "LOINC code (absolute, #/volume)",
            "reference_low": "Reference low (%)",
            "reference_high": "Reference high (%)",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Save"))
        if self.instance.pk:
            self.fields["code"].disabled = True
            self.fields["code"].help_text = "Reviews name the class by its code: it never changes."
        else:
            del self.fields["reason"]
        if self.instance.pk and self.instance.is_model_class:
            for name in ("counting", "is_active"):
                self.fields[name].disabled = True
                self.fields[
                    name
                ].help_text = "The model predicts this class: it stays active and a white cell."

    def _post_clean(self) -> None:
        # The service validates the class (it checks more than the model does): only the form's
        # own field checks here, so an error is not reported twice.
        pass


class CountingDefaultForm(_CrispyForm):
    default_target = forms.IntegerField(
        label="Target WBC count per slide (lab default)",
        min_value=TARGET_COUNT_MIN,
        max_value=TARGET_COUNT_MAX,
    )


class SlideTargetForm(forms.Form):
    target = forms.IntegerField(
        label="Target WBC count",
        required=False,
        min_value=TARGET_COUNT_MIN,
        max_value=TARGET_COUNT_MAX,
        help_text="Empty: the lab's default",
    )
    reason = forms.CharField(max_length=500, required=False)


class SlideWbcCountForm(forms.Form):
    wbc_count = forms.DecimalField(
        label="WBC count (×10⁹/L)",
        required=False,
        max_digits=5,
        decimal_places=2,
        min_value=WBC_COUNT_MIN,
        max_value=WBC_COUNT_MAX,
    )
    reason = forms.CharField(max_length=500, required=False)


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
