"""Reading reviews, the review queue, differential counts and signatures.

A cell's *current prediction* is its newest one (a re-run with another model version adds a newer
one); a prediction's *current review* is its newest review, the ones before it are history. Both
are computed in SQL (subqueries), so list pages cost a fixed number of queries.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from cases.models import Slide, SlideStatus
from cases.selectors import slide_visible_queryset
from classifier.models import CellClass, GradCam, Prediction, Review, SlideAmendment, SlideSignature
from classifier.selectors import prediction_visible_queryset

# Lower bounds of the confidence bands offered as queue filters; "flagged" means below the review
# threshold of the prediction's own model version.
CONFIDENCE_BANDS: dict[str, tuple[str, Q]] = {
    "flagged": ("Below the model's review threshold", Q(confidence__lt=F("model_version__review_threshold"))),
    "low": ("Under 60 %", Q(confidence__lt=0.6)),
    "medium": ("60–90 %", Q(confidence__gte=0.6, confidence__lt=0.9)),
    "high": ("90 % and above", Q(confidence__gte=0.9)),
}
QUEUE_SLIDE_STATUSES = (SlideStatus.SUBMITTED, SlideStatus.IN_REVIEW)


def review_visible_queryset(user: AbstractBaseUser) -> QuerySet[Review]:
    if not user.is_authenticated or not user.has_perm("classifier.view_review"):
        return Review.objects.none()
    return Review.objects.filter(prediction__in=prediction_visible_queryset(user)).select_related("reviewer")


def signature_visible_queryset(user: AbstractBaseUser) -> QuerySet[SlideSignature]:
    if not user.is_authenticated or not user.has_perm("classifier.view_slidesignature"):
        return SlideSignature.objects.none()
    return SlideSignature.objects.filter(slide__in=slide_visible_queryset(user))


def gradcam_visible_queryset(user: AbstractBaseUser) -> QuerySet[GradCam]:
    if not user.is_authenticated or not user.has_perm("classifier.view_gradcam"):
        return GradCam.objects.none()
    return GradCam.objects.filter(prediction__in=prediction_visible_queryset(user))


def _newest_prediction_of_cell() -> Subquery:
    return Subquery(
        Prediction.objects.filter(cell_image=OuterRef("cell_image")).order_by("-id").values("pk")[:1]
    )


def current_predictions(predictions: QuerySet[Prediction]) -> QuerySet[Prediction]:
    """Only each cell's newest prediction, annotated with its current review (``review_*``)."""
    newest_review = Review.objects.filter(prediction=OuterRef("pk")).order_by("-id")
    return predictions.filter(pk=_newest_prediction_of_cell()).annotate(
        review_id=Subquery(newest_review.values("pk")[:1]),
        review_label=Subquery(newest_review.values("label")[:1]),
        review_decision=Subquery(newest_review.values("decision")[:1]),
        review_reason=Subquery(newest_review.values("reason")[:1]),
        review_created_at=Subquery(newest_review.values("created_at")[:1]),
        reviewer_username=Subquery(newest_review.values("reviewer__username")[:1]),
    )


def prediction_is_current(prediction: Prediction) -> bool:
    return not Prediction.objects.filter(
        cell_image_id=prediction.cell_image_id, pk__gt=prediction.pk
    ).exists()


def review_current(prediction: Prediction) -> Review | None:
    return prediction.reviews.order_by("-id").first()


@dataclass(frozen=True)
class QueueFilters:
    slide: Slide | None = None
    label: str = ""
    band: str = ""
    reviewed: bool | None = None


def review_queue(*, user: AbstractBaseUser, filters: QueueFilters) -> QuerySet[Prediction]:
    """Cells to verify, least confident first; across slides awaiting review unless one is chosen."""
    predictions = current_predictions(prediction_visible_queryset(user)).select_related(
        "cell_image__slide__patient"
    )
    if filters.slide is not None:
        predictions = predictions.filter(cell_image__slide=filters.slide)
    else:
        predictions = predictions.filter(cell_image__slide__status__in=QUEUE_SLIDE_STATUSES)
    if filters.label:
        predictions = predictions.filter(label=filters.label)
    if filters.band in CONFIDENCE_BANDS:
        predictions = predictions.filter(CONFIDENCE_BANDS[filters.band][1])
    if filters.reviewed is not None:
        predictions = predictions.filter(review_id__isnull=not filters.reviewed)
    return predictions.order_by("confidence", "id")


def slide_review_predictions(*, user: AbstractBaseUser, slide: Slide) -> list[Prediction]:
    """The slide's current predictions in queue order, each with ``history`` (its reviews, newest
    first) and ``gradcam_status``; four queries whatever the number of cells."""
    predictions = list(review_queue(user=user, filters=QueueFilters(slide=slide)))
    by_id = {prediction.pk: prediction for prediction in predictions}
    for prediction in predictions:
        prediction.history = []
        prediction.gradcam_status = ""
    for review in review_visible_queryset(user).filter(prediction__in=by_id).order_by("-id"):
        by_id[review.prediction_id].history.append(review)
    for prediction_id, status in GradCam.objects.filter(prediction__in=by_id).values_list(
        "prediction_id", "status"
    ):
        by_id[prediction_id].gradcam_status = status
    return predictions


@dataclass(frozen=True)
class ReviewProgress:
    cells: int
    predicted: int
    reviewed: int

    @property
    def unreviewed(self) -> int:
        return self.cells - self.reviewed

    @property
    def complete(self) -> bool:
        return self.cells > 0 and self.reviewed == self.cells


def slide_review_progress(*, slide: Slide) -> ReviewProgress:
    """Every cell image counts: one the model could not classify has nothing to review, so it keeps
    the slide from being signed until it is removed or classified."""
    predictions = current_predictions(Prediction.objects.filter(cell_image__slide=slide))
    return ReviewProgress(
        cells=slide.cell_images.count(),
        predicted=predictions.count(),
        reviewed=predictions.filter(Exists(Review.objects.filter(prediction=OuterRef("pk")))).count(),
    )


# --- Differential count -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DifferentialRow:
    label: str
    name: str
    predicted_count: int
    predicted_percent: float
    verified_count: int
    verified_percent: float
    reference_low: float | None
    reference_high: float | None

    @property
    def reference_width(self) -> float | None:
        """For the chart: the interval's width on a 0–100 % axis."""
        if self.reference_low is None or self.reference_high is None:
            return None
        return self.reference_high - self.reference_low

    @property
    def flag(self) -> str:
        """ "low"/"high" when the verified percentage is outside the reference interval."""
        if self.reference_low is not None and self.verified_percent < self.reference_low:
            return "low"
        if self.reference_high is not None and self.verified_percent > self.reference_high:
            return "high"
        return ""


@dataclass(frozen=True)
class Differential:
    rows: list[DifferentialRow]
    predicted_total: int
    verified_total: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The verified result, as stored with a signature and exported."""
        return {
            "total": self.verified_total,
            "classes": {
                row.label: {"count": row.verified_count, "percent": row.verified_percent, "flag": row.flag}
                for row in self.rows
            },
        }


def _percent(count: int, total: int) -> float:
    if not total:
        return 0.0
    return float((Decimal(100 * count) / Decimal(total)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def reference_intervals() -> dict[str, tuple[float | None, float | None]]:
    return {
        label: tuple(interval)
        for label, interval in settings.HEMATOVISION_DIFFERENTIAL_REFERENCE_INTERVALS.items()
    }


def slide_differential(*, slide: Slide) -> Differential:
    """Count and percentage per class: as predicted, and as verified (current reviews' labels)."""
    predictions = list(
        current_predictions(Prediction.objects.filter(cell_image__slide=slide)).values_list(
            "label", "review_label"
        )
    )
    predicted = {label: 0 for label in CellClass.values}
    verified = {label: 0 for label in CellClass.values}
    for label, review_label in predictions:
        predicted[label] += 1
        if review_label:
            verified[review_label] += 1
    predicted_total, verified_total = len(predictions), sum(verified.values())
    intervals = reference_intervals()
    rows = [
        DifferentialRow(
            label=cell_class.value,
            name=cell_class.label,
            predicted_count=predicted[cell_class],
            predicted_percent=_percent(predicted[cell_class], predicted_total),
            verified_count=verified[cell_class],
            verified_percent=_percent(verified[cell_class], verified_total),
            reference_low=intervals.get(cell_class.value, (None, None))[0],
            reference_high=intervals.get(cell_class.value, (None, None))[1],
        )
        for cell_class in CellClass
    ]
    return Differential(rows=rows, predicted_total=predicted_total, verified_total=verified_total)


# --- Signatures and amendments ---------------------------------------------------------------------------


def slide_signature_latest(*, slide: Slide) -> SlideSignature | None:
    return SlideSignature.objects.filter(slide=slide).order_by("-version").first()


def slide_signature_history(*, slide: Slide) -> list[SlideSignature]:
    """Every signature of the slide, newest first, each with its amendment (if it was reopened)."""
    return list(SlideSignature.objects.filter(slide=slide).select_related("amendment__amended_by"))


def slide_amendments(*, slide: Slide) -> QuerySet[SlideAmendment]:
    return SlideAmendment.objects.filter(slide=slide).select_related("amended_by", "signature")
