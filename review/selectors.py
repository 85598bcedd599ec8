"""Reading reviews, the review queue, cell exclusions, differential counts and signatures.

A cell's *current prediction* is its newest one (a re-run with another model version adds a newer
one); a prediction's *current review* is its newest review, the ones before it are history; a
cell is *excluded* when its newest ``CellExclusion`` says so. All are computed in SQL
(subqueries), so list pages cost a fixed number of queries.
"""

from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now

from cases.models import CellImage, FieldImage, Priority, Slide, SlideStatus
from cases.selectors import cell_image_visible_queryset, field_image_visible_queryset, slide_visible_queryset
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
from review.models import (
    TARGET_COUNT_DEFAULT,
    CellExclusion,
    Counting,
    CountingSettings,
    DifferentialClass,
    Review,
    SlideAmendment,
    SlideSignature,
)

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


# --- Differential classes and counting rules -------------------------------------------------------------


def differential_classes(*, active_only: bool = False) -> list[DifferentialClass]:
    """The lab's classes in their order (inactive ones too unless ``active_only``)."""
    classes = DifferentialClass.objects.order_by("position", "id")
    return list(classes.filter(is_active=True) if active_only else classes)


def correction_choices() -> list[tuple[str, str]]:
    """(code, name) of every class a cell may be given now, in the lab's order: the one list the
    review screen, the API and any other page that reclassifies cells offer."""
    return [(cell_class.code, cell_class.name) for cell_class in differential_classes(active_only=True)]


def class_name(code: str) -> str:
    """A class's name by its code: the model's four without a query, the lab's others from its list."""
    if code in CellClass.values:
        return CellClass(code).label
    return class_names().get(code, code)


def class_names() -> dict[str, str]:
    """Every class's name by code, inactive ones included (old reviews still name them)."""
    return dict(DifferentialClass.objects.values_list("code", "name"))


def counting_default_target() -> int:
    """The lab's target count of white cells per slide."""
    target = CountingSettings.objects.filter(pk=1).values_list("default_target", flat=True).first()
    return target or TARGET_COUNT_DEFAULT


@dataclass(frozen=True)
class CountTarget:
    """How many white cells the slide's differential should count, and how many it has."""

    count: int
    # "slide" (set for this slide) or "lab default".
    source: str
    counted: int

    @property
    def reached(self) -> bool:
        return self.counted >= self.count

    @property
    def summary(self) -> str:
        """E.g. "73 / 100 WBC counted"."""
        return f"{self.counted} / {self.count} WBC counted"

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "source": self.source,
            "counted": self.counted,
            "reached": self.reached,
            "summary": self.summary,
        }


def _wbc_codes(classes: list[DifferentialClass]) -> set[str]:
    return {cell_class.code for cell_class in classes if cell_class.counting == Counting.WBC}


def slide_count_target(*, slide: Slide, counted: int | None = None) -> CountTarget:
    """The slide's target (its own or the lab's default) and its verified white cells so far."""
    if counted is None:
        codes = DifferentialClass.objects.filter(counting=Counting.WBC).values("code")
        counted = (
            current_predictions(Prediction.objects.filter(cell_image__slide=slide))
            .filter(excluded=False, review_label__in=codes)
            .count()
        )
    if slide.target_wbc_count:
        return CountTarget(count=slide.target_wbc_count, source="slide", counted=counted)
    return CountTarget(count=counting_default_target(), source="lab default", counted=counted)


# --- Differential count -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DifferentialRow:
    label: str
    name: str
    predicted_count: int
    predicted_percent: float
    verified_count: int
    # % of the white cells counted; for a per-100-WBC class, cells per 100 white cells counted;
    # None for a class that is counted but not reported (artefacts).
    verified_percent: float | None
    reference_low: float | None
    reference_high: float | None
    counting: str = Counting.WBC
    # ×10⁹/L, when the slide has its analyser's WBC count.
    absolute: float | None = None
    loinc_code: str = ""
    loinc_display: str = ""
    absolute_loinc_code: str = ""
    absolute_loinc_display: str = ""

    @property
    def reference_width(self) -> float | None:
        """For the chart: the interval's width on a 0–100 % axis."""
        if self.reference_low is None or self.reference_high is None:
            return None
        return self.reference_high - self.reference_low

    @property
    def flag(self) -> str:
        """ "low"/"high" when the verified percentage is outside the reference interval."""
        if self.verified_percent is None:
            return ""
        if self.reference_low is not None and self.verified_percent < self.reference_low:
            return "low"
        if self.reference_high is not None and self.verified_percent > self.reference_high:
            return "high"
        return ""

    @property
    def unit(self) -> str:
        return {Counting.WBC: "%", Counting.PER_100_WBC: "/100 WBC"}.get(self.counting, "")

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "counting": self.counting,
            "count": self.verified_count,
            "percent": self.verified_percent,
            "flag": self.flag,
            "reference_low": self.reference_low,
            "reference_high": self.reference_high,
            "absolute": self.absolute,
            "loinc": {"code": self.loinc_code, "display": self.loinc_display} if self.loinc_code else None,
            "absolute_loinc": {"code": self.absolute_loinc_code, "display": self.absolute_loinc_display}
            if self.absolute_loinc_code
            else None,
        }


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
                label: {"individual": self.individual[label], "bulk": self.bulk.get(label, 0)}
                for label in self.individual
            },
        }


@dataclass(frozen=True)
class Differential:
    rows: list[DifferentialRow]
    predicted_total: int
    # White cells counted (the classes counting towards the WBC differential): the percentages' base.
    verified_total: int
    # Cells excluded from the differential (artefacts, smudge cells, unreadable images).
    excluded: int = 0
    notes: list[str] = field(default_factory=list)
    verification: Verification | None = None
    target: CountTarget | None = None
    # The slide's WBC count from the analyser, ×10⁹/L (None: not entered).
    wbc_count: Decimal | None = None

    @property
    def wbc_rows(self) -> list[DifferentialRow]:
        return [row for row in self.rows if row.counting == Counting.WBC]

    @property
    def other_rows(self) -> list[DifferentialRow]:
        """Classes outside the WBC total: per 100 WBC (NRBC, smudge cells), then not reported."""
        return [row for row in self.rows if row.counting != Counting.WBC]

    def as_dict(self) -> dict:
        """The verified result, as stored with a signature and exported."""
        result = {
            "total": self.verified_total,
            "excluded": self.excluded,
            "classes": {row.label: row.as_dict() for row in self.rows},
            "wbc_count": None
            if self.wbc_count is None
            else {"value": float(self.wbc_count), "unit": "10*9/L"},
        }
        if self.target is not None:
            result["target"] = self.target.as_dict()
        if self.verification is not None:
            result["verification"] = self.verification.as_dict()
        return result


def _percent(count: int, total: int) -> float:
    if not total:
        return 0.0
    return float((Decimal(100 * count) / Decimal(total)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _absolute(count: int, total: int, wbc_count: Decimal | None) -> float | None:
    """×10⁹/L: the class's share of the white cells counted times the analyser's WBC count."""
    if wbc_count is None or not total:
        return None
    return float((wbc_count * count / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def reference_intervals() -> dict[str, tuple[float | None, float | None]]:
    """Each class's reference interval (% of white cells, or per 100 WBC), where the lab set one."""
    return {
        code: (low, high)
        for code, low, high in DifferentialClass.objects.values_list(
            "code", "reference_low", "reference_high"
        )
        if low is not None or high is not None
    }


def _differential_row(
    cell_class: DifferentialClass,
    *,
    predicted: tuple[int, int],
    verified: tuple[int, int],
    wbc_count: Decimal | None,
) -> DifferentialRow:
    """``predicted``/``verified``: (the class's count, the total it is a share of)."""
    reported = cell_class.counting != Counting.NOT_REPORTED
    return DifferentialRow(
        label=cell_class.code,
        name=cell_class.name,
        predicted_count=predicted[0],
        predicted_percent=_percent(*predicted),
        verified_count=verified[0],
        verified_percent=_percent(*verified) if reported else None,
        reference_low=cell_class.reference_low,
        reference_high=cell_class.reference_high,
        counting=cell_class.counting,
        absolute=_absolute(*verified, wbc_count) if reported else None,
        loinc_code=cell_class.loinc_code,
        loinc_display=cell_class.loinc_display,
        absolute_loinc_code=cell_class.absolute_loinc_code,
        absolute_loinc_display=cell_class.absolute_loinc_display,
    )


def slide_differential(*, slide: Slide) -> Differential:
    """Count and percentage per class: as predicted, and as verified (current reviews' labels).

    Percentages are of the white cells counted (classes counting towards the WBC differential);
    per-100-WBC classes (NRBC, smudge cells) are per 100 of those and not in the total; artefacts
    are counted only. A class is listed when it is always reported or a cell has it (an inactive
    class too: its cells keep it). Excluded cells count in neither column.
    """
    classes = differential_classes()
    predictions = list(
        current_predictions(Prediction.objects.filter(cell_image__slide=slide))
        .filter(excluded=False)
        .values_list("label", "review_label", "review_bulk", "review_bulk_threshold")
    )
    predicted = Counter(label for label, *_ in predictions)
    verified = Counter(review_label for _, review_label, *_ in predictions if review_label)
    wbc_total = sum(verified[code] for code in _wbc_codes(classes))
    wbc_count = slide.wbc_count
    rows = [
        _differential_row(
            cell_class,
            predicted=(predicted[cell_class.code], len(predictions)),
            verified=(verified[cell_class.code], wbc_total),
            wbc_count=wbc_count,
        )
        for cell_class in classes
        if cell_class.always_reported or predicted[cell_class.code] or verified[cell_class.code]
    ]
    excluded = slide_cells_with_state(slide=slide).filter(is_excluded=True).count()
    return Differential(
        rows=rows,
        predicted_total=len(predictions),
        verified_total=wbc_total,
        excluded=excluded,
        verification=_verification([row[1:] for row in predictions], [row.label for row in rows]),
        target=slide_count_target(slide=slide, counted=wbc_total),
        wbc_count=wbc_count,
    )


def slide_counted_model_versions(*, slide: Slide) -> list[str]:
    """Names of the model versions whose predictions count in the slide's differential."""
    predictions = current_predictions(Prediction.objects.filter(cell_image__slide=slide)).filter(
        excluded=False
    )
    return sorted(set(predictions.values_list("model_version__name", flat=True)))


def _verification(
    reviews: list[tuple[str | None, bool | None, float | None]], labels: list[str]
) -> Verification:
    """From (final label, bulk, bulk threshold) of each counted cell (label None: no review yet)."""
    individual = dict.fromkeys(labels, 0)
    bulk = dict.fromkeys(labels, 0)
    thresholds: set[float] = set()
    for label, is_bulk, threshold in reviews:
        if label is None:
            continue
        counts = bulk if is_bulk else individual
        counts[label] = counts.get(label, 0) + 1
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
    # The name of the review's class (the lab's list names it; a review stores its code).
    review_label_name: str = ""
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
    names = class_names() if reviews else {}
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
                review_label_name=names.get(review.label, review.label) if review else "",
                flagged=card.flagged,
            )
        )
    return reviewed


# --- The pathologists' worklist ---------------------------------------------------------------------------

WORKLIST_STATUSES = (SlideStatus.SUBMITTED, SlideStatus.READY_FOR_REVIEW, SlideStatus.IN_REVIEW)
# Sort keys → (column heading, fields in their natural order); "-key" reverses every field.
WORKLIST_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "priority": ("Priority", ("priority_rank", "-turnaround")),
    "age": ("Sample age", ("-sample_age",)),
    "received": ("Received", ("received_at",)),
    "turnaround": ("Turnaround", ("-turnaround",)),
    "accession": ("Accession", ("accession_number",)),
    "patient": ("Patient", ("patient__family_name", "patient__given_name", "patient__mrn")),
}
WORKLIST_DEFAULT_SORT = "priority"


def _worklist_order(sort: str) -> list[OrderBy]:
    key = sort.removeprefix("-")
    fields = WORKLIST_SORTS.get(key, WORKLIST_SORTS[WORKLIST_DEFAULT_SORT])[1]
    reverse = sort.startswith("-") and key in WORKLIST_SORTS
    order = []
    for name in (*fields, "pk"):
        descending = name.startswith("-") != (reverse and name != "pk")
        expression = F(name.removeprefix("-"))
        order.append(expression.desc() if descending else expression.asc())
    return order


_cell_counts = (
    CellImage.objects.filter(slide=OuterRef("pk")).order_by().values("slide").annotate(count=Count("pk"))
)


def slide_worklist(
    *, user: AbstractBaseUser, status: str = "", sort: str = WORKLIST_DEFAULT_SORT
) -> QuerySet[Slide]:
    """Slides awaiting a pathologist (or, with ``status="signed"``, signed ones), each annotated with
    ``priority_rank`` (urgent 0), ``sample_age`` (since collection), ``signed_at`` (the first
    sign-off) and ``turnaround`` (received → first sign-off, or → now while not signed);
    urgent first and longest waiting first unless ``sort`` says otherwise."""
    if not user.has_perm("review.add_review"):
        return Slide.objects.none()
    statuses = (status,) if status in (*WORKLIST_STATUSES, SlideStatus.SIGNED) else WORKLIST_STATUSES
    first_signature = SlideSignature.objects.filter(slide=OuterRef("pk")).order_by("version")
    slides = slide_visible_queryset(user).filter(status__in=statuses)
    slides = slides.annotate(
        priority_rank=Case(
            When(priority=Priority.URGENT, then=Value(0)), default=Value(1), output_field=IntegerField()
        ),
        signed_at=Subquery(first_signature.values("signed_at")[:1]),
        turnaround_end=Case(
            When(status=SlideStatus.SIGNED, then=F("signed_at")), default=Now(), output_field=DateTimeField()
        ),
        turnaround=ExpressionWrapper(F("turnaround_end") - F("received_at"), output_field=DurationField()),
        sample_age=ExpressionWrapper(Now() - F("collected_at"), output_field=DurationField()),
        # A correlated count per slide on the page, not a join of every cell grouped by slide.
        cell_count=Coalesce(Subquery(_cell_counts.values("count")[:1]), Value(0)),
    )
    return slides.order_by(*_worklist_order(sort))


# --- Whole fields -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldCell:
    """One box of a field: its cell, current prediction (with its current review) and whether the
    cell is excluded now (with the exclusion)."""

    cell_image: CellImage
    prediction: Prediction | None
    exclusion: CellExclusion | None
    class_names: dict[str, str] = field(default_factory=dict)  # the lab's class names by code

    @property
    def label(self) -> str:
        """What the box says: the verified class, else the predicted one, else "pending"."""
        if self.exclusion is not None:
            return self.exclusion.get_category_display()
        if self.prediction is None:
            return "pending"
        code = self.prediction.review_label or self.prediction.label
        return self.class_names.get(code, code)

    @property
    def verified(self) -> bool:
        return self.prediction is not None and bool(self.prediction.review_label)


def field_cells(*, user: AbstractBaseUser, field_image: FieldImage) -> list[FieldCell]:
    """Every cell of a field (located and added), in box order, with what the pages say of each
    (four queries, whatever the number of boxes)."""
    cells = list(cell_image_visible_queryset(user).filter(field_image=field_image).order_by("id"))
    ids = [cell.pk for cell in cells]
    predictions = {
        p.cell_image_id: p
        for p in current_predictions(prediction_visible_queryset(user).filter(cell_image__in=ids))
    }
    exclusions: dict[int, CellExclusion] = {}
    for exclusion in cell_exclusion_visible_queryset(user).filter(cell_image__in=ids).order_by("id"):
        exclusions[exclusion.cell_image_id] = exclusion  # the newest wins
    names = class_names() if cells else {}
    return [
        FieldCell(
            cell,
            predictions.get(cell.pk),
            exclusion if (exclusion := exclusions.get(cell.pk)) and exclusion.excluded else None,
            names,
        )
        for cell in cells
    ]


def slide_fields(*, user: AbstractBaseUser, slide: Slide) -> QuerySet[FieldImage]:
    """The slide's fields with ``cell_count`` (located and added cells), in upload order."""
    return (
        field_image_visible_queryset(user)
        .filter(slide=slide)
        .annotate(cell_count=Count("cells"))
        .order_by("id")
    )
