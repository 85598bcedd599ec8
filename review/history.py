"""The patient's earlier results: the signed differential of each of the patient's slides, oldest
first, how much each class moved since the result before it (a delta flag once it moves more than
``HEMATOVISION_DELTA_POINTS`` percentage points), and a small trend chart the server draws as
inline SVG (no script, no library).

A slide counts with its newest signature; one reopened for amendment still shows the result it was
signed with, marked as reopened. The classes are whatever the signed differentials hold, in the
order they were signed with, so classes added to the lab's list later simply appear.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Exists, OuterRef
from django.utils import timezone

from cases.models import Patient, Slide
from classifier.models import CellClass
from review.models import SlideAmendment, SlideSignature
from review.selectors import Differential, signature_visible_queryset

# Line colours of the trend chart, one per class in column order (repeating past the last).
CHART_COLOURS = (
    "#0d6efd",
    "#198754",
    "#fd7e14",
    "#d63384",
    "#6f42c1",
    "#20c997",
    "#6c757d",
    "#dc3545",
    "#0dcaf0",
    "#795548",
    "#ffc107",
    "#343a40",
)
# Marks a class that moved more than the delta limit (U+2206: the report's font has this one).
DELTA_MARK = "∆"
CHART_WIDTH, CHART_HEIGHT = 640, 200
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 36, 12, 10, 28


@dataclass(frozen=True)
class ResultPoint:
    """One result: a signed differential, or (``signature`` None) the slide being signed now."""

    slide: Slide
    signature: SlideSignature | None
    percents: dict[str, float]
    flags: dict[str, str]  # "low"/"high" against the reference interval, as signed
    total: int
    reopened: bool = False

    @property
    def when(self) -> datetime:
        return self.slide.collected_at


@dataclass(frozen=True)
class ResultCell:
    percent: float | None
    delta: float | None  # percentage points since the result before it; None for the first
    delta_flagged: bool
    flag: str


@dataclass(frozen=True)
class ResultRow:
    point: ResultPoint
    cells: list[ResultCell]

    @property
    def delta_flagged(self) -> bool:
        return any(cell.delta_flagged for cell in self.cells)


@dataclass(frozen=True)
class ChartSeries:
    label: str
    name: str
    colour: str
    points: str  # the polyline's "x,y x,y …"
    dots: list[tuple[float, float, str]]  # x, y, tooltip


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    series: list[ChartSeries]
    x_labels: list[tuple[float, str]]
    y_lines: list[tuple[float, int]]  # y, percent
    x_start: int = CHART_LEFT
    x_end: int = CHART_WIDTH - CHART_RIGHT


@dataclass(frozen=True)
class ClassColumn:
    label: str
    name: str


@dataclass
class ResultHistory:
    columns: list[ClassColumn]
    rows: list[ResultRow]
    delta_points: int
    chart: TrendChart | None = None

    @property
    def previous(self) -> ResultRow | None:
        """The result before the last one (what the last one is compared with)."""
        return self.rows[-2] if len(self.rows) > 1 else None

    @property
    def latest_delta_flagged(self) -> bool:
        return bool(self.rows) and self.rows[-1].delta_flagged


def delta_points() -> int:
    return settings.HEMATOVISION_DELTA_POINTS


def _class_name(label: str, names: dict[str, str]) -> str:
    if label in names:
        return names[label]
    if label in CellClass.values:
        return CellClass(label).label
    return label.replace("_", " ").capitalize()


def classes_in_order(labels: list[str], known_order: list[str]) -> list[str]:
    """The lab's order (``known_order``: the differential's rows, else the model's classes), then
    any other label alphabetically. A signed differential's own key order is not kept: PostgreSQL's
    jsonb stores object keys shortest first."""
    order = known_order or list(CellClass.values)
    position = {label: index for index, label in enumerate(order)}
    return sorted(dict.fromkeys(labels), key=lambda label: (position.get(label, len(order)), label))


def signature_point(signature: SlideSignature) -> ResultPoint:
    classes = signature.differential.get("classes", {})
    return ResultPoint(
        slide=signature.slide,
        signature=signature,
        percents={label: result["percent"] for label, result in classes.items()},
        flags={label: result.get("flag", "") for label, result in classes.items()},
        total=signature.differential.get("total", 0),
        reopened=signature_reopened(signature),
    )


def signature_reopened(signature: SlideSignature) -> bool:
    """The slide was reopened for amendment after this signature."""
    try:
        return signature.amendment is not None
    except SlideAmendment.DoesNotExist:
        return False


def differential_point(*, slide: Slide, differential: Differential) -> ResultPoint:
    """The slide's verified differential as it stands (not signed yet)."""
    return ResultPoint(
        slide=slide,
        signature=None,
        percents={row.label: row.verified_percent for row in differential.rows},
        flags={row.label: row.flag for row in differential.rows},
        total=differential.verified_total,
    )


def patient_signed_points(
    *, user: AbstractBaseUser, patient: Patient, before: Slide | None = None
) -> list[ResultPoint]:
    """Each of the patient's slides with its newest signature, oldest collection first; with
    ``before``, only the other slides collected before it."""
    newer = SlideSignature.objects.filter(slide=OuterRef("slide"), version__gt=OuterRef("version"))
    signatures = (
        signature_visible_queryset(user)
        .filter(slide__patient=patient)
        .filter(~Exists(newer))
        .select_related("slide__patient", "amendment")
    )
    if before is not None:
        signatures = signatures.exclude(slide=before).filter(slide__collected_at__lt=before.collected_at)
    ordered = signatures.order_by("slide__collected_at", "signed_at", "pk")
    return [signature_point(signature) for signature in ordered]


def result_history(
    *, points: list[ResultPoint], names: dict[str, str] | None = None, chart: bool = True
) -> ResultHistory:
    """Rows of ``points`` (in order), each class compared with the result before it."""
    names = names or {}
    labels = classes_in_order([label for point in points for label in point.percents], list(names))
    columns = [ClassColumn(label, _class_name(label, names)) for label in labels]
    threshold = delta_points()
    rows, previous = [], None
    for point in points:
        rows.append(ResultRow(point, [_cell(point, previous, label, threshold) for label in labels]))
        previous = point
    history = ResultHistory(columns=columns, rows=rows, delta_points=threshold)
    if chart and points:
        history.chart = trend_chart(columns=columns, points=points)
    return history


def _cell(point: ResultPoint, previous: ResultPoint | None, label: str, threshold: int) -> ResultCell:
    percent = point.percents.get(label)
    before = previous.percents.get(label) if previous is not None else None
    delta = round(percent - before, 1) if percent is not None and before is not None else None
    return ResultCell(
        percent=percent,
        delta=delta,
        delta_flagged=delta is not None and abs(delta) > threshold,
        flag=point.flags.get(label, ""),
    )


def trend_chart(*, columns: list[ClassColumn], points: list[ResultPoint]) -> TrendChart:
    """One line per class that was ever above 0 %, results evenly spaced left to right."""
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM

    def x_of(index: int) -> float:
        if len(points) == 1:
            return CHART_LEFT + plot_width / 2
        return round(CHART_LEFT + plot_width * index / (len(points) - 1), 1)

    def y_of(percent: float) -> float:
        return round(CHART_TOP + plot_height * (100 - percent) / 100, 1)

    series = []
    for position, column in enumerate(columns):
        values = [(index, point.percents.get(column.label)) for index, point in enumerate(points)]
        values = [(index, value) for index, value in values if value is not None]
        if not any(value for _, value in values):
            continue
        coordinates = [(x_of(index), y_of(value), value, index) for index, value in values]
        series.append(
            ChartSeries(
                label=column.label,
                name=column.name,
                colour=CHART_COLOURS[position % len(CHART_COLOURS)],
                points=" ".join(f"{x:g},{y:g}" for x, y, _, _ in coordinates),
                dots=[
                    (x, y, f"{column.name} {value} % · {_point_caption(points[index])}")
                    for x, y, value, index in coordinates
                ],
            )
        )
    return TrendChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        series=series,
        x_labels=[(x_of(index), _point_caption(point)) for index, point in enumerate(points)],
        y_lines=[(y_of(percent), percent) for percent in (0, 25, 50, 75, 100)],
    )


def _point_caption(point: ResultPoint) -> str:
    suffix = "" if point.signature is not None else " (now)"
    return f"{timezone.localtime(point.when):%Y-%m-%d}{suffix}"
