"""Model registry, inference jobs and their outcomes.

Predictions and failures are clinical records: written once by a worker, never updated or deleted
(the database refuses it, migration 0002). A pathologist's review is a separate row, in the
``review`` app, that points at the prediction it judged.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from cases.models import CellImage, FieldImage, Slide


class CellClass(models.TextChoices):
    """The four white-cell classes every registered model must predict, in the models' order."""

    EOSINOPHIL = "EOSINOPHIL", "Eosinophil"
    LYMPHOCYTE = "LYMPHOCYTE", "Lymphocyte"
    MONOCYTE = "MONOCYTE", "Monocyte"
    NEUTROPHIL = "NEUTROPHIL", "Neutrophil"


class ModelVersion(models.Model):
    """A model directory registered for serving, pinned to the checksum of its files."""

    name = models.CharField(max_length=100, unique=True, help_text="The version named in the model card")
    # Relative to HEMATOVISION_MODELS_ROOT when inside it, so every worker machine can resolve it.
    directory = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64, help_text="Digest over the names and sha256 of every file")
    file_hashes = models.JSONField(help_text="sha256 of each file of the directory at registration")
    review_threshold = models.FloatField(help_text="Below this confidence a prediction is flagged for review")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation metrics from the model card")
    # The training domain's thresholds from the card (ml.domain); both null: no domain statistics,
    # so every slide's domain is unknown and nothing is auto-acceptable.
    domain_cell_threshold = models.FloatField(null=True, blank=True)
    domain_slide_threshold = models.FloatField(null=True, blank=True)
    validated_domains = models.JSONField(
        default=dict, blank=True, help_text="The sources the model was trained and validated on, with counts"
    )
    is_active = models.BooleanField(default=False)
    # An adapted model waits as a candidate until an admin activates it (re-entering their
    # password); it never becomes active by itself. ``parent`` is the version it was adapted from.
    is_candidate = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="adapted_versions"
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-registered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="model_version_single_active"
            ),
            models.CheckConstraint(
                condition=Q(review_threshold__gte=0, review_threshold__lte=1),
                name="model_version_review_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_domain_statistics(self) -> bool:
        return self.domain_cell_threshold is not None and self.domain_slide_threshold is not None


class InferenceJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIALLY_FAILED = "partially_failed", "Partially failed"
    FAILED = "failed", "Failed"


INFERENCE_JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    InferenceJobStatus.QUEUED: frozenset({InferenceJobStatus.RUNNING, InferenceJobStatus.FAILED}),
    InferenceJobStatus.RUNNING: frozenset(
        {InferenceJobStatus.SUCCEEDED, InferenceJobStatus.PARTIALLY_FAILED, InferenceJobStatus.FAILED}
    ),
    InferenceJobStatus.SUCCEEDED: frozenset(),
    InferenceJobStatus.PARTIALLY_FAILED: frozenset(),
    InferenceJobStatus.FAILED: frozenset(),
}
INFERENCE_JOB_FINISHED = frozenset(
    {InferenceJobStatus.SUCCEEDED, InferenceJobStatus.PARTIALLY_FAILED, InferenceJobStatus.FAILED}
)


class InferenceJob(models.Model):
    """Classify a fixed set of a slide's cell images with one model version."""

    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="inference_jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs")
    # The images this job must classify, fixed when it is created; later uploads get a job of their own.
    cell_images = models.ManyToManyField(CellImage, related_name="inference_jobs")
    # Whole fields whose white cells this job locates first; each located cell joins
    # ``cell_images`` (and ``total``) in the transaction that stores it.
    field_images = models.ManyToManyField(FieldImage, related_name="inference_jobs", blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=InferenceJobStatus.choices, default=InferenceJobStatus.QUEUED, db_index=True
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # How many times a worker picked the job up; above 1 means it was redelivered.
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker at claim time and after every batch: a running job whose heartbeat is
    # old lost its worker, and the workers' sweep sends it again (see classifier.broker_recovery).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(done__lte=F("total")), name="inference_job_done_within_total"),
            models.CheckConstraint(
                condition=Q(failed__lte=F("total")), name="inference_job_failed_within_total"
            ),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.get_status_display()}) for slide {self.slide_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in INFERENCE_JOB_FINISHED


def _probability_in_range(field: str) -> Q:
    return Q(**{f"{field}__gte": 0.0, f"{field}__lte": 1.0})


PROBABILITY_FIELDS: dict[str, str] = {
    CellClass.EOSINOPHIL: "probability_eosinophil",
    CellClass.LYMPHOCYTE: "probability_lymphocyte",
    CellClass.MONOCYTE: "probability_monocyte",
    CellClass.NEUTROPHIL: "probability_neutrophil",
}


class Prediction(models.Model):
    """The model's answer for one cell image; written once, never changed (see module docstring)."""

    cell_image = models.ForeignKey(CellImage, on_delete=models.PROTECT, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    job = models.ForeignKey(InferenceJob, on_delete=models.PROTECT, related_name="predictions")
    label = models.CharField(max_length=16, choices=CellClass.choices, db_index=True)
    probability_eosinophil = models.FloatField()
    probability_lymphocyte = models.FloatField()
    probability_monocyte = models.FloatField()
    probability_neutrophil = models.FloatField()
    confidence = models.FloatField(db_index=True)
    # Distance of the cell's features from the model's training domain (ml.domain) and whether it is
    # within the model's cell threshold; both null when the model has no domain statistics.
    domain_score = models.FloatField(null=True, blank=True)
    in_domain = models.BooleanField(null=True, blank=True)
    # The review threshold this cell is held to: its nearest training source's when the model has
    # per-source thresholds (ml.domain), else the model's; null on rows written before it was kept.
    review_threshold = models.FloatField(null=True, blank=True)
    # The cell's share of its batch's model time (decoding and preprocessing included).
    inference_ms = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cell_image_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cell_image", "model_version"], name="prediction_unique_per_model"
            ),
            models.CheckConstraint(
                condition=(
                    _probability_in_range("probability_eosinophil")
                    & _probability_in_range("probability_lymphocyte")
                    & _probability_in_range("probability_monocyte")
                    & _probability_in_range("probability_neutrophil")
                    & _probability_in_range("confidence")
                ),
                name="prediction_probabilities_in_range",
            ),
            models.CheckConstraint(
                condition=Q(review_threshold__isnull=True) | _probability_in_range("review_threshold"),
                name="prediction_review_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.confidence:.2f}) for cell image {self.cell_image_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("A prediction is never changed; review it instead.")
        super().save(*args, **kwargs)

    @property
    def probabilities(self) -> dict[str, float]:
        return {label: getattr(self, field) for label, field in PROBABILITY_FIELDS.items()}

    @property
    def cell_review_threshold(self) -> float:
        """The threshold this cell's confidence is compared with (its own, else its model's)."""
        return self.model_version.review_threshold if self.review_threshold is None else self.review_threshold


class PredictionFailure(models.Model):
    """A cell image the model could not classify (undecodable, missing file), with the reason."""

    cell_image = models.ForeignKey(CellImage, on_delete=models.PROTECT, related_name="prediction_failures")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="failures")
    job = models.ForeignKey(InferenceJob, on_delete=models.PROTECT, related_name="failures")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cell_image_id", "-created_at"]
        constraints = [
            # Per job, not per model version: a pathologist may retry a failed cell with the same
            # model (a file that was missing may be back), and a second failure is a row of its own.
            models.UniqueConstraint(fields=["cell_image", "job"], name="prediction_failure_unique_per_job"),
        ]

    def __str__(self) -> str:
        return f"Failure for cell image {self.cell_image_id}: {self.reason}"


class QuickClassificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class QuickClassification(models.Model):
    """One image classified outside any clinical record (no patient, no slide, no review).

    Its file lives under its own storage prefix and is shown only to the user who uploaded it.
    """

    image = models.FileField(upload_to="quick-classify/%Y/%m/", max_length=255)
    original_filename = models.CharField(max_length=255)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=QuickClassificationStatus.choices, default=QuickClassificationStatus.QUEUED
    )
    label = models.CharField(max_length=16, choices=CellClass.choices, blank=True)
    probabilities = models.JSONField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    domain_score = models.FloatField(null=True, blank=True)
    in_domain = models.BooleanField(null=True, blank=True)
    review_threshold = models.FloatField(null=True, blank=True)  # as Prediction.review_threshold
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Quick classification {self.pk} ({self.get_status_display()})"

    @property
    def cell_review_threshold(self) -> float:
        return self.model_version.review_threshold if self.review_threshold is None else self.review_threshold


class DomainVerdict(models.TextChoices):
    """A slide's cells against the model's validated domain (``ml.domain.Verdict``)."""

    IN_DOMAIN = "in_domain", "In domain"
    OUT_OF_DOMAIN = "out_of_domain", "Out of domain"
    UNKNOWN = "unknown", "Domain unknown"


class SlideDomainAssessment(models.Model):
    """Whether a slide's cells look like the model's training domain, decided when one of its jobs
    finishes; append-only. The newest row per slide and model version is the slide's verdict."""

    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="domain_assessments")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    job = models.ForeignKey(InferenceJob, on_delete=models.PROTECT, related_name="domain_assessments")
    verdict = models.CharField(max_length=16, choices=DomainVerdict.choices)
    # The slide statistic (median cell domain score) and the threshold it was compared with.
    statistic = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    cell_count = models.PositiveIntegerField()
    few_cells = models.BooleanField(help_text="Fewer cells than a reliable verdict needs")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slide_id", "-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.slide}: {self.get_verdict_display()} ({self.model_version})"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("A domain assessment is never changed; a later job adds a new one.")
        super().save(*args, **kwargs)


class GradCamStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class GradCam(models.Model):
    """The class-activation overlay of one prediction, computed once by a worker and stored."""

    prediction = models.OneToOneField(Prediction, on_delete=models.PROTECT, related_name="gradcam")
    status = models.CharField(max_length=16, choices=GradCamStatus.choices, default=GradCamStatus.QUEUED)
    image = models.FileField(upload_to="gradcam/%Y/%m/", max_length=255, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"Grad-CAM of prediction {self.prediction_id} ({self.get_status_display()})"


class AdaptationRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ADAPTATION_RUN_UNFINISHED = frozenset({AdaptationRunStatus.QUEUED, AdaptationRunStatus.RUNNING})
ADAPTATION_RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    AdaptationRunStatus.QUEUED: frozenset(
        {AdaptationRunStatus.RUNNING, AdaptationRunStatus.FAILED, AdaptationRunStatus.CANCELLED}
    ),
    AdaptationRunStatus.RUNNING: frozenset(
        {AdaptationRunStatus.SUCCEEDED, AdaptationRunStatus.FAILED, AdaptationRunStatus.CANCELLED}
    ),
    AdaptationRunStatus.SUCCEEDED: frozenset(),
    AdaptationRunStatus.FAILED: frozenset(),
    AdaptationRunStatus.CANCELLED: frozenset(),
}


class AdaptationRun(models.Model):
    """Fine-tuning the active model on the lab's verified cells (``ml.adapt``), run by the worker
    of the ``training`` queue; its result is registered as a candidate model version.

    ``cells`` is the frozen selection the run was started with: ``[cell image id, final label]``
    pairs, so a review recorded while it runs changes nothing of it.
    """

    status = models.CharField(
        max_length=16, choices=AdaptationRunStatus.choices, default=AdaptationRunStatus.QUEUED, db_index=True
    )
    base_model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    result_model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="adaptation_run"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_only = models.BooleanField(default=True)
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    cells = models.JSONField(default=list)
    class_counts = models.JSONField(default=dict)
    stage = models.CharField(max_length=16, blank=True)
    message = models.CharField(max_length=500, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written by a thread of the training worker every HEMATOVISION_JOB_HEARTBEAT_SECONDS: a running
    # run whose heartbeat is old lost its worker and the sweep marks it failed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(percent__lte=100), name="adaptation_run_percent_range"),
            models.UniqueConstraint(
                models.Value(True),
                condition=Q(status__in=["queued", "running"]),
                name="adaptation_run_one_at_a_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Adaptation run {self.pk} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status not in ADAPTATION_RUN_UNFINISHED

    @property
    def cell_count(self) -> int:
        return sum(self.class_counts.values())

    @property
    def class_counts_in_order(self) -> list[tuple[str, int]]:
        """The counts in the classes' order (the database keeps JSON keys in an order of its own)."""
        return [(name, self.class_counts.get(name, 0)) for name in CellClass.values]
