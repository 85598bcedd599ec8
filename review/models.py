"""Pathologist review and sign-off: verdicts on predictions, cell exclusions, electronic signatures
and amendments.

Every row here is a clinical record: written once, never updated or deleted (the database refuses
it). The tables keep the names they had when these models lived in ``classifier`` (moved by a
state-only migration), so a database migrated by earlier code keeps every row.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from cases.models import TARGET_COUNT_MAX, TARGET_COUNT_MIN, CellImage, Slide
from classifier.models import CellClass, Prediction
from review.class_defaults import DEFAULT_TARGET


class ReviewDecision(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    CORRECTED = "corrected", "Corrected"


class Review(models.Model):
    """A pathologist's verdict on one prediction; append-only (the database refuses changes).

    A newer review of the same prediction supersedes the older one, which stays as history. The
    prediction itself is never touched.
    """

    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="reviews")
    # One row may supersede at most one other, so two concurrent reviews cannot fork the history.
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The code of a ``DifferentialClass`` (the model's four and the lab's other classes); a plain
    # code, not a foreign key, so rows written before the class list existed stay as they are.
    label = models.CharField("final label", max_length=16)
    decision = models.CharField(max_length=16, choices=ReviewDecision.choices)
    reason = models.TextField(blank=True)
    bulk = models.BooleanField(default=False, help_text="Confirmed by a bulk confirm, not one by one")
    # The model version's review threshold the bulk confirm accepted the cell against; empty for a
    # cell verified individually, and for bulk confirmations recorded before it was kept.
    bulk_threshold = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "classifier_review"
        ordering = ["prediction_id", "-created_at", "-id"]
        default_permissions = ("add", "view")
        constraints = [
            models.CheckConstraint(
                condition=~Q(decision=ReviewDecision.CORRECTED) | ~Q(reason=""),
                name="review_correction_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} {self.label} for prediction {self.prediction_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("A review is never changed; record a new one instead.")
        super().save(*args, **kwargs)

    @property
    def verification(self) -> str:
        return review_verification(bulk=self.bulk, bulk_threshold=self.bulk_threshold)


def review_verification(*, bulk: bool, bulk_threshold: float | None) -> str:
    """How a cell was verified, as exports and pages say it: "individual" (a person looked at the
    cell) or "bulk at threshold 0.972" (accepted by a bulk confirm at or above that threshold)."""
    if not bulk:
        return "individual"
    return "bulk" if bulk_threshold is None else f"bulk at threshold {bulk_threshold:g}"


class Counting(models.TextChoices):
    """How the cells of a class count in the differential."""

    WBC = "wbc", "Counts towards the WBC differential"
    PER_100_WBC = "per_100_wbc", "Reported per 100 WBC, not in the WBC total"
    NOT_REPORTED = "none", "Neither: counted, not reported"


TARGET_COUNT_DEFAULT = DEFAULT_TARGET

LOINC_CODE_VALIDATOR = RegexValidator(r"^[0-9]{1,7}-[0-9]$", "A LOINC code looks like 26446-5.")
CLASS_CODE_VALIDATOR = RegexValidator(
    r"^[A-Z][A-Z0-9_]*$", "Upper-case letters, digits and underscores, starting with a letter."
)


class DifferentialClass(models.Model):
    """One class a pathologist may give a cell: the model's four and the lab's others (blast,
    band neutrophil, smudge cell, …). Configuration, not a clinical record: renamed, reordered and
    deactivated by an admin (audited), never deleted, so every review keeps a class to show.

    ``code`` is what a review stores and never changes; ``name`` is what people read.
    """

    code = models.CharField(max_length=16, unique=True, validators=[CLASS_CODE_VALIDATOR])
    name = models.CharField(
        max_length=60, unique=True, error_messages={"unique": "Another class already has this name."}
    )
    counting = models.CharField(max_length=16, choices=Counting.choices, default=Counting.WBC)
    position = models.PositiveIntegerField(help_text="Order on the review screen and in the differential")
    is_active = models.BooleanField(default=True, help_text="Inactive: no new corrections to it")
    # Shown (with 0) in every differential; other classes only when a cell has them.
    always_reported = models.BooleanField(default=False)
    shortcut = models.CharField(max_length=1, blank=True, help_text="Key on the review screen")
    loinc_code = models.CharField(max_length=10, blank=True, validators=[LOINC_CODE_VALIDATOR])
    loinc_display = models.CharField(max_length=200, blank=True)
    absolute_loinc_code = models.CharField(max_length=10, blank=True, validators=[LOINC_CODE_VALIDATOR])
    absolute_loinc_display = models.CharField(max_length=200, blank=True)
    reference_low = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    reference_high = models.FloatField(null=True, blank=True, validators=[MaxValueValidator(100)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        default_permissions = ("add", "change", "view")
        constraints = [
            models.CheckConstraint(
                condition=Q(reference_low__isnull=True)
                | Q(reference_high__isnull=True)
                | Q(reference_low__lte=models.F("reference_high")),
                name="differential_class_reference_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_model_class(self) -> bool:
        """One of the classes every model predicts: always active, always a white cell."""
        return self.code in CellClass.values


class CountingSettings(models.Model):
    """The lab's counting rules (one row): the default target of white cells per slide."""

    default_target = models.PositiveIntegerField(
        default=TARGET_COUNT_DEFAULT,
        validators=[MinValueValidator(TARGET_COUNT_MIN), MaxValueValidator(TARGET_COUNT_MAX)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ("change", "view")
        verbose_name_plural = "counting settings"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="counting_settings_single_row")]

    def __str__(self) -> str:
        return f"Target {self.default_target} WBC per slide"


SIGNATURE_MEANING = "reviewed and approved"


class SlideSignature(models.Model):
    """An electronic signature of a slide's verified result; append-only.

    ``version`` counts sign-offs of the slide: an amendment reopens the slide and the next
    signature gets the next version, the earlier ones stay.
    """

    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="signatures")
    version = models.PositiveIntegerField()
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # As printed at signing time: names may change later, a signature must not.
    signer_full_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=100, default=SIGNATURE_MEANING)
    signed_at = models.DateTimeField()
    # The verified differential at the moment of signing (counts and percentages per class).
    differential = models.JSONField()
    # Who the result was signed for, as the patient record read at signing (MRN, names, date of
    # birth, sex): a later correction of the record must not change a signed report. Empty for
    # signatures from before this was recorded.
    patient_identity = models.JSONField(null=True, blank=True)
    # The pathologist's comment or interpretation, printed on the report. Nullable so the column
    # is added without rebuilding the append-only table: NULL for signatures from before it was
    # kept, "" when the pathologist wrote none.
    comment = models.TextField(null=True, blank=True)  # noqa: DJ001 (see above)

    class Meta:
        db_table = "classifier_slidesignature"
        ordering = ["slide_id", "-version"]
        default_permissions = ("add", "view")
        constraints = [
            models.UniqueConstraint(fields=["slide", "version"], name="slide_signature_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.slide} v{self.version} signed by {self.signer_full_name}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("A signature is never changed.")
        super().save(*args, **kwargs)


class SlideAmendment(models.Model):
    """Reopening of a signed slide, with the reason; append-only."""

    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="amendments")
    signature = models.OneToOneField(SlideSignature, on_delete=models.PROTECT, related_name="amendment")
    reason = models.TextField()
    amended_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amended_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "classifier_slideamendment"
        ordering = ["slide_id", "-amended_at"]
        default_permissions = ("add", "view")
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="slide_amendment_has_reason")]

    def __str__(self) -> str:
        return f"Amendment of {self.slide} v{self.signature.version}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("An amendment is never changed.")
        super().save(*args, **kwargs)


class ExclusionCategory(models.TextChoices):
    ARTEFACT = "artefact", "Artefact"
    SMUDGE = "smudge", "Smudge cell"
    UNREADABLE = "unreadable", "Unreadable image"
    # A box the locator drew on a field around something that is not a white cell.
    NOT_WHITE_CELL = "not_white_cell", "Not a white cell"
    OTHER = "other", "Other"


class CellExclusion(models.Model):
    """A pathologist's decision that a cell does not count in the slide's differential, or that an
    earlier exclusion is withdrawn; append-only.

    The cell's newest row decides: ``excluded`` keeps it out of the differential and out of the
    cells sign-off waits for (a cell the model could not classify can only be resolved this way
    or by a successful retry). Older rows stay as history.
    """

    cell_image = models.ForeignKey(CellImage, on_delete=models.PROTECT, related_name="exclusions")
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    excluded = models.BooleanField(help_text="False: an earlier exclusion is withdrawn")
    category = models.CharField(max_length=16, choices=ExclusionCategory.choices, blank=True)
    reason = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "classifier_cellexclusion"
        ordering = ["cell_image_id", "-id"]
        default_permissions = ("add", "view")
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="cell_exclusion_has_reason"),
            models.CheckConstraint(
                condition=Q(excluded=False) | ~Q(category=""), name="cell_exclusion_has_category"
            ),
        ]

    def __str__(self) -> str:
        verb = "Excluded" if self.excluded else "Included again"
        return f"{verb}: cell image {self.cell_image_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("An exclusion is never changed; record a new decision instead.")
        super().save(*args, **kwargs)


# Teaching and consults live in their own modules; imported here so Django registers their models.
from review.consult_models import (  # noqa: E402, F401
    Consult,
    ConsultCell,
    ConsultLabel,
    ConsultStatus,
    InboxMessage,
)
from review.teaching_models import (  # noqa: E402, F401
    ProficiencyAnswer,
    ProficiencyAssignment,
    ProficiencyAttempt,
    ProficiencySet,
    ProficiencySetItem,
)
