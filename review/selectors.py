"""Reading reviews, the review queue, cell exclusions, differential counts and signatures.

A cell's *current prediction* is its newest one (a re-run with another model version adds a newer
one); a prediction's *current review* is its newest review, the ones before it are history; a
cell is *excluded* when its newest ``CellExclusion`` says so. All are computed in SQL
(subqueries), so list pages cost a fixed number of queries.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from cases.models import CellImage, Slide, SlideStatus
from cases.selectors import cell_image_visible_queryset, slide_visible_queryset
from classifier.domain import prediction_auto_acceptable_q, slide_in_domain_exists
from classifier.models import (
    INFERENCE_JOB_FINISHED,
    CellClass,
    GradCam,
    InferenceJob,
    ModelVersion,
    Prediction,
    PredictionFailure,
)
from classifier.selectors import prediction_visible_queryset, slide_cell_cards
from review.models import CellExclusion, Review, SlideAmendment, SlideSignature

# The confidence bands offered as queue filters; "flagged" means not auto-acceptable: below the
# review threshold of the prediction's own model version, or the cell or its slide out of domain.
CONFIDENCE_BANDS: dict[str, tuple[str, Q]] = {
    "flagged": (
        "Not auto-acceptable (below the review threshold or out of domain)",
        ~prediction_auto_acceptable_q(),
    ),
    "low": ("Under 60 %", Q(confidence__lt=0.6)),
    "medium": ("60–90 %", Q(confidence__gte=0.6, confidence__lt=0.9)),
    "high": ("90 % and above", Q(confidence__gte=0.9)),
}
QUEUE_SLIDE_STATUSES = (SlideStatus.SUBMITTED, SlideStatus.READY_FOR_REVIEW, SlideStatus.IN_REVIEW)


def review_label_choices() -> list[tuple[str, str]]:
    """The classes a pathologist may give a cell, as (value, name): the choices of a review's
    final label. The one list the review services accept and the gallery groups cells by."""
    return list(Review._meta.get_field("label").choices)


def review_visible_queryset(user: AbstractBaseUser) -> QuerySet[Review]:
    if not user.is_authenticated or not user.has_perm("review.view_review"):
        return Review.objects.none()
    return Review.objects.filter(prediction__in=prediction_visible_queryset(user)).select_related("reviewer")


def signature_visible_queryset(user: AbstractBaseUser) -> QuerySet[SlideSignature]:
    if not user.is_authenticated or not user.has_perm("review.view_slidesignature"):
        return SlideSignature.objects.none()
    return SlideSignature.objects.filter(slide__in=slide_visible_queryset(user))


def _superseded() -> Exists:
    """A newer prediction of the same cell exists. NOT EXISTS plans as an anti-join; the equivalent
    ``pk = (newest of the cell)`` made PostgreSQL guess one row and nest loops over 10,000 cells."""
    return Exists(Prediction.objects.filter(cell_image=OuterRef("cell_image"), pk__gt=OuterRef("pk")))


def _excluded_now() -> Exists:
    """The cell's newest exclusion row excludes it (as a filter; the same as ``excluded``)."""
    newer = CellExclusion.objects.filter(cell_image=OuterRef("cell_image"), pk__gt=OuterRef("pk"))
    return Exists(
        CellExclusion.objects.filter(cell_image=OuterRef("cell_image"), excluded=True).filter(~Exists(newer))
    )


def _newest_exclusion(cell_image: OuterRef | int) -> QuerySet[CellExclusion]:
    return CellExclusion.objects.filter(cell_image=cell_image).order_by("-id")


def _is_excluded(cell_image: OuterRef) -> Coalesce:
    return Coalesce(
        Subquery(_newest_exclusion(cell_image).values("excluded")[:1]),
        Value(False),
        output_field=BooleanField(),
    )


def current_predictions(predictions: QuerySet[Prediction]) -> QuerySet[Prediction]:
    """Only each cell's newest prediction, annotated with its current review (``review_*``) and
    whether its cell is excluded from the differential (``excluded``)."""
    newest_review = Review.objects.filter(prediction=OuterRef("pk")).order_by("-id")
    return predictions.filter(~_superseded()).annotate(
        excluded=_is_excluded(OuterRef("cell_image")),
        review_id=Subquery(newest_review.values("pk")[:1]),
        review_label=Subquery(newest_review.values("label")[:1]),
        review_decision=Subquery(newest_review.values("decision")[:1]),
        review_reason=Subquery(newest_review.values("reason")[:1]),
        review_created_at=Subquery(newest_review.values("created_at")[:1]),
        review_bulk=Subquery(newest_review.values("bulk")[:1]),
        review_bulk_threshold=Subquery(newest_review.values("bulk_threshold")[:1]),
        reviewer_username=Subquery(newest_review.values("reviewer__username")[:1]),
    )


def prediction_is_current(prediction: Prediction) -> bool:
    return not Prediction.objects.filter(
        cell_image_id=prediction.cell_image_id, pk__gt=prediction.pk
    ).exists()


def review_current(prediction: Prediction) -> Review | None:
    return prediction.reviews.order_by("-id").first()


def cell_exclusion_current(cell_image: CellImage) -> CellExclusion | None:
    """The cell's newest exclusion decision (which may be a withdrawal), or None."""
    return _newest_exclusion(cell_image.pk).first()


def cell_exclusion_visible_queryset(user: AbstractBaseUser) -> QuerySet[CellExclusion]:
    if not user.is_authenticated or not user.has_perm("review.view_cellexclusion"):
        return CellExclusion.objects.none()
    return CellExclusion.objects.filter(cell_image__in=cell_image_visible_queryset(user)).select_related(
        "decided_by"
    )


@dataclass(frozen=True)
class QueueFilters:
    slide: Slide | None = None
    label: str = ""
    band: str = ""
    reviewed: bool | None = None
    # Excluded cells need no verification; the slide's review screen still lists them.
    include_excluded: bool = False


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
    # Filters as EXISTS rather than on the annotations, so the planner can estimate them.
    if filters.reviewed is not None:
        reviewed = Exists(Review.objects.filter(prediction=OuterRef("pk")))
        predictions = predictions.filter(reviewed if filters.reviewed else ~reviewed)
    if not filters.include_excluded:
        predictions = predictions.filter(~_excluded_now())
    predictions = predictions.annotate(
        auto_acceptable=ExpressionWrapper(prediction_auto_acceptable_q(), output_field=BooleanField()),
        slide_in_domain=slide_in_domain_exists("cell_image__slide", "model_version"),
    )
    return predictions.order_by("confidence", "id")


def slide_review_predictions(*, user: AbstractBaseUser, slide: Slide) -> list[Prediction]:
    """The slide's current predictions in queue order, each with ``history`` (its reviews, newest
    first), ``exclusions`` (its cell's exclusion decisions, newest first) and ``gradcam_status``;
    five queries whatever the number of cells."""
    predictions = list(review_queue(user=user, filters=QueueFilters(slide=slide, include_excluded=True)))
    by_id = {prediction.pk: prediction for prediction in predictions}
    by_cell = {prediction.cell_image_id: prediction for prediction in predictions}
    for prediction in predictions:
        prediction.history = []
        prediction.exclusions = []
        prediction.gradcam_status = ""
    for review in review_visible_queryset(user).filter(prediction__in=by_id).order_by("-id"):
        by_id[review.prediction_id].history.append(review)
    for exclusion in cell_exclusion_visible_queryset(user).filter(cell_image__in=by_cell).order_by("-id"):
        by_cell[exclusion.cell_image_id].exclusions.append(exclusion)
    for prediction_id, status in GradCam.objects.filter(prediction__in=by_id).values_list(
        "prediction_id", "status"
    ):
        by_id[prediction_id].gradcam_status = status
    return predictions


@dataclass(frozen=True)
class ReviewProgress:
    """Where each cell of a slide stands; every cell is in exactly one of the counts after
    ``predicted`` (which counts current predictions, excluded cells' included)."""

    cells: int
    predicted: int
    reviewed: int
    unreviewed: int
    excluded: int
    classifying: int
    failed: int
    unclassified: int

    @property
    def complete(self) -> bool:
        """Signable: every cell reviewed or excluded, and at least one cell counted."""
        return self.reviewed > 0 and self.reviewed + self.excluded == self.cells

    def blockers(self) -> list[str]:
        """Why the slide cannot be signed yet, one sentence per reason."""
        reasons = []
        if self.classifying:
            reasons.append(
                f"{self._of(self.classifying, 'is', 'are')} still being classified; wait for the job."
            )
        if self.failed:
            reasons.append(
                f"{self._of(self.failed, 'was', 'were')} unreadable for the model; retry the classification "
                "or exclude them from the differential with a reason."
            )
        if self.unclassified:
            reasons.append(
                f"{self._of(self.unclassified, 'has', 'have')} no classification (its job failed or no "
                "model was active); retry the classification or exclude them."
            )
        if self.unreviewed:
            reasons.append(
                f"{self._of(self.unreviewed, 'has', 'have')} no review yet; review or exclude them."
            )
        if not self.cells:
            reasons.append("The slide has no cell images.")
        elif not self.reviewed and not reasons:
            reasons.append("Every cell is excluded: there is no differential to sign.")
        return reasons

    def _of(self, count: int, singular_verb: str, plural_verb: str) -> str:
        return f"{count} of {self.cells} cells {singular_verb if count == 1 else plural_verb}"

    @property
    def summary(self) -> str:
        """One line for the pages, e.g. "3 of 4 cells reviewed · 1 excluded"."""
        text = f"{self.reviewed} of {self.cells - self.excluded} cells reviewed"
        return f"{text} · {self.excluded} excluded" if self.excluded else text

    def as_dict(self) -> dict:
        return {**vars(self), "complete": self.complete, "summary": self.summary}


def slide_cells_with_state(*, slide: Slide) -> QuerySet[CellImage]:
    """The slide's cell images annotated with what sign-off needs to know of each: ``is_excluded``,
    ``current_prediction_id``, ``is_reviewed``, ``is_classifying`` (in an unfinished job) and
    ``has_failed`` (the model could not classify it)."""
    newest_prediction = Prediction.objects.filter(cell_image=OuterRef("pk")).order_by("-id")
    return CellImage.objects.filter(slide=slide).annotate(
        is_excluded=_is_excluded(OuterRef("pk")),
        current_prediction_id=Subquery(newest_prediction.values("pk")[:1]),
        is_reviewed=Exists(Review.objects.filter(prediction_id=OuterRef("current_prediction_id"))),
        is_classifying=Exists(
            InferenceJob.objects.filter(cell_images=OuterRef("pk")).exclude(status__in=INFERENCE_JOB_FINISHED)
        ),
        has_failed=Exists(PredictionFailure.objects.filter(cell_image=OuterRef("pk"))),
    )


# Filters on ``slide_cells_with_state`` for cells that have no current prediction.
UNPREDICTED = Q(is_excluded=False, current_prediction_id__isnull=True)
CELL_STATE_FILTERS: dict[str, Q] = {
    "reviewed": Q(is_excluded=False, is_reviewed=True),
    "unreviewed": Q(is_excluded=False, current_prediction_id__isnull=False, is_reviewed=False),
    "excluded": Q(is_excluded=True),
    "classifying": UNPREDICTED & Q(is_classifying=True),
    "failed": UNPREDICTED & Q(is_classifying=False, has_failed=True),
    "unclassified": UNPREDICTED & Q(is_classifying=False, has_failed=False),
}


def slide_review_progress(*, slide: Slide) -> ReviewProgress:
    """Counts of the slide's cells by state, in one query."""
    counts = slide_cells_with_state(slide=slide).aggregate(
        cells=Count("pk"),
        predicted=Count("pk", filter=Q(current_prediction_id__isnull=False)),
        **{state: Count("pk", filter=condition) for state, condition in CELL_STATE_FILTERS.items()},
    )
    return ReviewProgress(**counts)


def slide_unresolved_cells(*, user: AbstractBaseUser, slide: Slide) -> list[CellImage]:
    """Cells without a current prediction (being classified, failed or never classified) and
    excluded cells without one, each with ``failure`` (its newest failure or None) and
    ``exclusion`` (its newest exclusion decision or None); three queries."""
    cells = list(
        slide_cells_with_state(slide=slide)
        .filter(pk__in=cell_image_visible_queryset(user))
        .filter(current_prediction_id__isnull=True)
        .order_by("id")
    )
    for cell in cells:
        cell.failure = None
        cell.exclusion = None
    by_id = {cell.pk: cell for cell in cells}
    for failure in PredictionFailure.objects.filter(cell_image__in=by_id).order_by("id"):
        by_id[failure.cell_image_id].failure = failure
    for exclusion in (
        CellExclusion.objects.filter(cell_image__in=by_id).select_related("decided_by").order_by("id")
    ):
        by_id[exclusion.cell_image_id].exclusion = exclusion
    return cells


def slide_cells_to_retry(*, slide: Slide) -> list[int]:
    """Ids of the cells a retry classifies again: not excluded, no prediction, not in a job now."""
    return list(
        slide_cells_with_state(slide=slide)
        .filter(CELL_STATE_FILTERS["failed"] | CELL_STATE_FILTERS["unclassified"])
        .order_by("id")
        .values_list("pk", flat=True)
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
class Verification:
    """How the verified cells were verified: by a person one by one, or by a bulk confirm (at the
    review thresholds in ``bulk_thresholds``); per class and in all."""

    individual: dict[str, int]
    bulk: dict[str, int]
    bulk_thresholds: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        return {
            "individual": sum(self.individual.values()),
            "bulk": sum(self.bulk.values()),
            "bulk_thresholds": list(self.bulk_thresholds),
            "classes": {
                label: {"individual": self.individual[label], "bulk": self.bulk[label]}
                for label in self.individual
            },
        }


@dataclass(frozen=True)
class Differential:
    rows: list[DifferentialRow]
    predicted_total: int
    verified_total: int
    # Cells excluded from the differential (artefacts, smudge cells, unreadable images).
    excluded: int = 0
    notes: list[str] = field(default_factory=list)
    verification: Verification | None = None

    def as_dict(self) -> dict:
        """The verified result, as stored with a signature and exported."""
        result = {
            "total": self.verified_total,
            "excluded": self.excluded,
            "classes": {
                row.label: {"count": row.verified_count, "percent": row.verified_percent, "flag": row.flag}
                for row in self.rows
            },
        }
        if self.verification is not None:
            result["verification"] = self.verification.as_dict()
        return result


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
    """Count and percentage per class: as predicted, and as verified (current reviews' labels).
    Excluded cells count in neither."""
    predictions = list(
        current_predictions(Prediction.objects.filter(cell_image__slide=slide))
        .filter(excluded=False)
        .values_list("label", "review_label", "review_bulk", "review_bulk_threshold")
    )
    predicted = {label: 0 for label in CellClass.values}
    verified = {label: 0 for label in CellClass.values}
    for label, review_label, _, _ in predictions:
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
    excluded = slide_cells_with_state(slide=slide).filter(is_excluded=True).count()
    return Differential(
        rows=rows,
        predicted_total=predicted_total,
        verified_total=verified_total,
        excluded=excluded,
        verification=_verification([row[1:] for row in predictions]),
    )


def _verification(reviews: list[tuple[str | None, bool | None, float | None]]) -> Verification:
    """From (final label, bulk, bulk threshold) of each counted cell (label None: no review yet)."""
    individual = {label: 0 for label in CellClass.values}
    bulk = {label: 0 for label in CellClass.values}
    thresholds: set[float] = set()
    for label, is_bulk, threshold in reviews:
        if label is None:
            continue
        (bulk if is_bulk else individual)[label] += 1
        if is_bulk and threshold is not None:
            thresholds.add(threshold)
    return Verification(individual=individual, bulk=bulk, bulk_thresholds=tuple(sorted(thresholds)))


# --- Signatures and amendments ---------------------------------------------------------------------------


def slide_signature_latest(*, slide: Slide) -> SlideSignature | None:
    return SlideSignature.objects.filter(slide=slide).order_by("-version").first()


def slide_signature_history(*, slide: Slide) -> list[SlideSignature]:
    """Every signature of the slide, newest first, each with its amendment (if it was reopened)."""
    return list(SlideSignature.objects.filter(slide=slide).select_related("amendment__amended_by"))


def slide_amendments(*, slide: Slide) -> QuerySet[SlideAmendment]:
    return SlideAmendment.objects.filter(slide=slide).select_related("amended_by", "signature")


@dataclass(frozen=True)
class ReviewedCellCard:
    """A slide page thumbnail with, where the user may see them, the pathologist's current review
    and whether the cell is excluded."""

    cell_image: CellImage
    prediction: Prediction | None
    failure: PredictionFailure | None
    needs_review: bool
    review: Review | None = None
    exclusion: CellExclusion | None = None
    # Not auto-acceptable (below the review threshold, or out of domain), reviewed or not.
    flagged: bool = False

    @property
    def corrected(self) -> bool:
        return self.review is not None and self.review.label != self.prediction.label


def slide_reviewed_cards(
    *, user: AbstractBaseUser, slide: Slide, model_version: ModelVersion
) -> list[ReviewedCellCard]:
    """The classifier's cell cards with reviews and exclusions (two queries more, whatever the
    number of cells)."""
    cards = slide_cell_cards(user=user, slide=slide, model_version=model_version)
    prediction_ids = [card.prediction.pk for card in cards if card.prediction]
    reviews: dict[int, Review] = {}
    if prediction_ids and user.has_perm("review.view_review"):
        for review in (
            Review.objects.filter(prediction_id__in=prediction_ids).select_related("reviewer").order_by("id")
        ):
            reviews[review.prediction_id] = review  # the newest wins
    exclusions: dict[int, CellExclusion] = {}
    if cards and user.has_perm("review.view_cellexclusion"):
        for exclusion in CellExclusion.objects.filter(cell_image__slide=slide).order_by("id"):
            exclusions[exclusion.cell_image_id] = exclusion
    reviewed = []
    for card in cards:
        review = reviews.get(card.prediction.pk) if card.prediction else None
        exclusion = exclusions.get(card.cell_image.pk)
        reviewed.append(
            ReviewedCellCard(
                card.cell_image,
                card.prediction,
                card.failure,
                needs_review=card.flagged and review is None,
                review=review,
                exclusion=exclusion if exclusion and exclusion.excluded else None,
                flagged=card.flagged,
            )
        )
    return reviewed
