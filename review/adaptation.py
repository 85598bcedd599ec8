"""The lab's verified cells, gathered for adapting the model to the lab (``classifier.adaptation``).

A cell's *final label* is the label of the current review of its current prediction: the predicted
label when the pathologist confirmed it, the corrected label when they corrected it. Cells excluded
from the differential are left out, and by default only cells of signed slides count (their result
was approved with a signature), and so are cells given one of the lab's other classes (a blast, a
smudge cell): the model learns its own four. The date range is on the day the final review was recorded.
This lives in ``review`` because review is the layer that knows reviews; ``classifier`` receives
the frozen (cell image, final label) pairs and runs the adaptation.
"""

from dataclasses import dataclass
from datetime import date

from accounts.models import User
from cases.models import CellImage, SlideStatus
from classifier.adaptation import (
    AdaptationError,
    adaptation_class_counts,
    adaptation_counts_refusal,
    adaptation_run_create,
)
from classifier.models import AdaptationRun, CellClass, Prediction
from review.selectors import current_predictions


@dataclass(frozen=True)
class LabCellSelection:
    signed_only: bool = True
    date_from: date | None = None
    date_to: date | None = None

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise AdaptationError("The start date is after the end date.")


def lab_verified_cells(*, selection: LabCellSelection) -> list[tuple[int, str]]:
    """(cell image id, final label) of every reviewed, non-excluded cell the selection covers."""
    predictions = current_predictions(Prediction.objects.all()).filter(
        review_id__isnull=False, excluded=False, review_label__in=CellClass.values
    )
    if selection.signed_only:
        predictions = predictions.filter(cell_image__slide__status=SlideStatus.SIGNED)
    if selection.date_from:
        predictions = predictions.filter(review_created_at__date__gte=selection.date_from)
    if selection.date_to:
        predictions = predictions.filter(review_created_at__date__lte=selection.date_to)
    return list(predictions.order_by("cell_image_id").values_list("cell_image_id", "review_label"))


@dataclass(frozen=True)
class LabCellCounts:
    counts: dict[str, int]
    refusal: str  # why adaptation would be refused, or ""
    slides: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def lab_cell_counts(*, selection: LabCellSelection) -> LabCellCounts:
    cells = lab_verified_cells(selection=selection)
    counts = adaptation_class_counts(cells)
    slides = (
        CellImage.objects.filter(pk__in=[cell_id for cell_id, _ in cells])
        .values("slide_id")
        .distinct()
        .count()
    )
    return LabCellCounts(counts=counts, refusal=adaptation_counts_refusal(counts), slides=slides)


def lab_adaptation_start(
    *, actor: User | None, selection: LabCellSelection, enqueue: bool = True
) -> AdaptationRun:
    """Gather the selected cells' final labels and queue the adaptation on the training queue.
    Refused (AdaptationError) when a class has too few cells or an adaptation is unfinished."""
    if actor is not None and not actor.has_perm("classifier.add_adaptationrun"):
        raise PermissionError("Only an admin adapts the model to the lab.")
    return adaptation_run_create(
        actor=actor,
        cells=lab_verified_cells(selection=selection),
        signed_only=selection.signed_only,
        date_from=selection.date_from,
        date_to=selection.date_to,
        enqueue=enqueue,
    )
