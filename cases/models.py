from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

MRN_TAKEN = "A patient with this MRN already exists (MRNs are compared ignoring upper and lower case)."


class Sex(models.TextChoices):
    # FHIR administrative-gender codes, so exports need no mapping.
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Patient(models.Model):
    mrn = models.CharField("MRN", max_length=32, unique=True, help_text="Medical record number")
    family_name = models.CharField(max_length=100)
    given_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=16, choices=Sex.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name", "mrn"]
        constraints = [
            # MRN-1001 and mrn-1001 are one patient's number typed twice, not two patients.
            models.UniqueConstraint(
                Lower("mrn"), name="patient_mrn_unique_ignoring_case", violation_error_message=MRN_TAKEN
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    def clean(self) -> None:
        errors = {}
        if self.date_of_birth and self.date_of_birth > timezone.localdate():
            errors["date_of_birth"] = "The date of birth cannot be in the future."
        if self.mrn and Patient.objects.filter(mrn__iexact=self.mrn).exclude(pk=self.pk).exists():
            errors["mrn"] = MRN_TAKEN
        if errors:
            raise ValidationError(errors)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class SlideStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    IN_REVIEW = "in_review", "In review"
    SIGNED = "signed", "Signed"


# The only status changes a service may make. Submitted → ready for review when classification
# has finished; submitted → in review when a pathologist starts before it has; signed → in review
# is an amendment (reopening).
SLIDE_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    SlideStatus.DRAFT: frozenset({SlideStatus.SUBMITTED}),
    SlideStatus.SUBMITTED: frozenset({SlideStatus.READY_FOR_REVIEW, SlideStatus.IN_REVIEW}),
    SlideStatus.READY_FOR_REVIEW: frozenset({SlideStatus.IN_REVIEW}),
    SlideStatus.IN_REVIEW: frozenset({SlideStatus.SIGNED}),
    SlideStatus.SIGNED: frozenset({SlideStatus.IN_REVIEW}),
}


class Stain(models.TextChoices):
    WRIGHT_GIEMSA = "wright_giemsa", "Wright-Giemsa"
    MAY_GRUNWALD_GIEMSA = "may_grunwald_giemsa", "May-Grünwald-Giemsa"
    WRIGHT = "wright", "Wright"
    GIEMSA = "giemsa", "Giemsa"
    LEISHMAN = "leishman", "Leishman"
    OTHER = "other", "Other"


class Priority(models.TextChoices):
    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"


# Bounds of a target count of white cells per slide (the lab's default and a slide's override).
TARGET_COUNT_MIN = 50
TARGET_COUNT_MAX = 1000
# The analyser's white cell count, ×10⁹/L.
WBC_COUNT_MIN = Decimal("0.01")
WBC_COUNT_MAX = Decimal("999.99")


class Slide(models.Model):
    accession_number = models.CharField(max_length=32, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="slides")
    collected_at = models.DateTimeField()
    # When the specimen reached the lab: turnaround time runs from here to sign-off.
    received_at = models.DateTimeField(default=timezone.now)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    stain = models.CharField(max_length=32, choices=Stain.choices, default=Stain.WRIGHT_GIEMSA)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=SlideStatus.choices, default=SlideStatus.DRAFT)
    # How many white cells the differential should count; empty: the lab's default.
    target_wbc_count = models.PositiveIntegerField(
        "target WBC count",
        null=True,
        blank=True,
        validators=[MinValueValidator(TARGET_COUNT_MIN), MaxValueValidator(TARGET_COUNT_MAX)],
    )
    # The specimen's white cell count from the analyser (×10⁹/L), entered by lab staff: with it the
    # differential gives absolute counts.
    wbc_count = models.DecimalField(
        "WBC count (×10⁹/L)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(WBC_COUNT_MIN), MaxValueValidator(WBC_COUNT_MAX)],
    )
    wbc_count_entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    wbc_count_entered_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-collected_at", "accession_number"]
        permissions = [("change_slide_target_count", "Can set a slide's target WBC count")]

    def __str__(self) -> str:
        return self.accession_number

    def clean(self) -> None:
        errors = {}
        if self.received_at and self.received_at > timezone.now():
            errors["received_at"] = "The time the specimen was received cannot be in the future."
        elif self.received_at and self.collected_at and self.received_at < self.collected_at:
            errors["received_at"] = "The specimen cannot have been received before it was collected."
        if errors:
            raise ValidationError(errors)

    @property
    def is_locked(self) -> bool:
        """A signed slide takes no edits or uploads until it is explicitly reopened."""
        return self.status == SlideStatus.SIGNED


class ImageKind(models.TextChoices):
    """What an uploaded image shows: one cell, or a whole microscope field (cells located by the
    worker). ``auto`` decides from the image's size (``cases.uploads.image_kind_detect``)."""

    AUTO = "auto", "Detect from the size"
    CELL = "cell", "Cell image"
    FIELD = "field", "Microscope field"


class FieldImage(models.Model):
    """A whole microscope field; the worker locates its white cells and stores one ``CellImage``
    per located cell (``located_at`` set once, in the same transaction as those cells)."""

    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="field_images")
    file = models.FileField(upload_to="field-images/%Y/%m/", max_length=255)
    sha256 = models.CharField(max_length=64)
    image_format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    original_filename = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Written once by the worker: when the cells were located, how many, and with what settings.
    located_at = models.DateTimeField(null=True, blank=True)
    located_count = models.PositiveIntegerField(null=True, blank=True)
    locator = models.JSONField(null=True, blank=True, help_text="The locator settings used (ml.locate)")
    # Why the field could not be located (file missing or unreadable); empty otherwise.
    location_error = models.TextField(blank=True)

    class Meta:
        ordering = ["slide", "id"]
        constraints = [
            models.UniqueConstraint(fields=["slide", "sha256"], name="field_image_unique_per_slide"),
        ]

    def __str__(self) -> str:
        return f"{self.slide} / field {self.original_filename}"

    @property
    def is_located(self) -> bool:
        return self.located_at is not None


class CellSource(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    LOCATED = "located", "Located on a field"
    ADDED = "added", "Added by pathologist"


class CellImage(models.Model):
    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="cell_images")
    # Stored under a generated name; the name the user gave is only kept (sanitised) for display.
    file = models.FileField(upload_to="cell-images/%Y/%m/", max_length=255)
    sha256 = models.CharField(max_length=64)
    image_format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    original_filename = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, choices=CellSource.choices, default=CellSource.UPLOADED)
    # A cell of a field: its box in field pixels (x, y of the top-left corner) and the locator's
    # score (none for a box drawn by a pathologist). The file is then the classifier's crop.
    field_image = models.ForeignKey(
        FieldImage, null=True, blank=True, on_delete=models.PROTECT, related_name="cells"
    )
    box_x = models.PositiveIntegerField(null=True, blank=True)
    box_y = models.PositiveIntegerField(null=True, blank=True)
    box_w = models.PositiveIntegerField(null=True, blank=True)
    box_h = models.PositiveIntegerField(null=True, blank=True)
    locator_score = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["slide", "id"]
        constraints = [
            # An uploaded image twice is a mistake; two cells of fields may crop alike (the same
            # cell boxed on two overlapping fields), and are told apart by their boxes.
            models.UniqueConstraint(
                fields=["slide", "sha256"],
                condition=models.Q(field_image__isnull=True),
                name="cell_image_unique_per_slide",
            ),
            models.UniqueConstraint(
                fields=["field_image", "box_x", "box_y", "box_w", "box_h"],
                condition=models.Q(field_image__isnull=False),
                name="cell_image_unique_box_per_field",
            ),
            models.CheckConstraint(
                condition=models.Q(field_image__isnull=True, source="uploaded")
                | models.Q(
                    field_image__isnull=False,
                    source__in=["located", "added"],
                    box_x__isnull=False,
                    box_y__isnull=False,
                    box_w__gt=0,
                    box_h__gt=0,
                ),
                name="cell_image_field_cells_have_a_box",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slide} / {self.original_filename}"

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """(x, y, width, height) in the field's pixels, or None for an uploaded cell image."""
        if self.field_image_id is None:
            return None
        return self.box_x, self.box_y, self.box_w, self.box_h
