"""Find the white cells in a whole microscope field, crop each as the classifier was trained, classify.

A white cell's nucleus is the only large blue-violet object in a Wright-Giemsa field: red cells
are pale pink discs and platelets (or stain specks on red cells) are violet but small. So the
locator thresholds the same blue-minus-green stain score as `ml.cells`, on a small copy of the
field, joins the lobes of a nucleus with a dilation, keeps the connected regions with enough
stained area, and grows each nucleus box to the whole cell with a linear fit on the BCCD *train*
boxes (`ml.locate_eval.fit_cell_growth`). Plain numpy + Pillow: no TensorFlow, a few milliseconds
per field.

Interface used by the Django pipeline::

    boxes = locate_cells(field)                           # list[Box], field pixels, best first
    crop = crop_for_classifier(field, box, predictor.localisation)
    cells = classify_cells(predictor, field, boxes)       # list[LocatedCell]

Command line: `python -m ml.locate IMAGE...` prints each image's boxes and classes;
`python -m ml.locate --fields DIR --boxes CSV --split FILE --json OUT` evaluates against BCCD's
WBC boxes; `python -m ml.locate --bench DIR` prints the time per field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.cells import LocalisationConfig, box_sum, otsu_threshold, stain_score
from ml.predict import CellPrediction, Predictor, softmax


@dataclass(frozen=True)
class LocatorConfig:
    """Locator parameters; values chosen on the BCCD train/val fields (docs/locating.md)."""

    # Working copy: a nucleus is ~100 field pixels wide, so a quarter of the size keeps ~25.
    downscale: int = 4
    # Nucleus pixels: stain score above this (white-cell boxes: 95th percentile >= 78;
    # red-cell boxes: <= 54 in 99% of them).
    min_stain_score: float = 40.0
    # Dilation window (working pixels) that joins the lobes of one nucleus into one region.
    join_window: int = 5
    # Regions with fewer stained working pixels are platelets or specks, not white cells.
    # (Platelet clumps reach ~200 working pixels, white-cell nuclei 300 and more.)
    min_area: int = 230
    # A box's score rises from 0.5 at min_area to 1 at this area.
    full_score_area: int = 460
    # Cell box from nucleus box: side = scale * nucleus side + offset (field pixels), per axis;
    # least squares on the 151 train WBC boxes clear of the border (fit_cell_growth).
    width_scale: float = 0.854
    width_offset: float = 58.8
    height_scale: float = 0.940
    height_offset: float = 35.9
    # Boxes overlapping more than this (IoU) are one cell seen as two regions.
    nms_iou: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Box:
    """A located white cell in field pixels (x_max, y_max exclusive) with a score in [0, 1]."""

    x_min: int
    y_min: int
    x_max: int
    y_max: int
    score: float

    @property
    def width(self) -> int:
        return self.x_max - self.x_min

    @property
    def height(self) -> int:
        return self.y_max - self.y_min

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Region:
    """One stained region on the working copy: its nucleus box (field pixels) and stained area."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    area: int


def iou(first: Box | tuple, second: Box | tuple) -> float:
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes."""
    a = _corners(first)
    b = _corners(second)
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


def _corners(box: Box | tuple) -> tuple[float, float, float, float]:
    if isinstance(box, Box):
        return box.x_min, box.y_min, box.x_max, box.y_max
    return tuple(float(value) for value in box[:4])


def label_regions(mask: np.ndarray) -> np.ndarray:
    """Connected regions (4-neighbour) of a boolean mask: 0 outside, one id per region.

    Max-propagation with numpy: each pass spreads the largest id one pixel; it stops when
    nothing changes, after as many passes as the widest region is long (tens on a working copy).
    """
    labels = np.where(mask, np.arange(1, mask.size + 1).reshape(mask.shape), 0)
    while True:
        spread = labels.copy()
        np.maximum(spread[1:], labels[:-1], out=spread[1:])
        np.maximum(spread[:-1], labels[1:], out=spread[:-1])
        np.maximum(spread[:, 1:], labels[:, :-1], out=spread[:, 1:])
        np.maximum(spread[:, :-1], labels[:, 1:], out=spread[:, :-1])
        spread *= mask
        if np.array_equal(spread, labels):
            return labels
        labels = spread


def stained_regions(image: Image.Image, config: LocatorConfig) -> list[Region]:
    """Blue-violet regions of the field, each with its nucleus box scaled back to field pixels."""
    image = image.convert("RGB")
    small_size = (max(1, image.width // config.downscale), max(1, image.height // config.downscale))
    small = np.asarray(image.resize(small_size, Image.Resampling.BILINEAR))
    stained = stain_score(small) > config.min_stain_score
    joined = box_sum(stained, config.join_window) > 0
    labels = label_regions(joined)[stained]
    ys, xs = np.nonzero(stained)
    scale_x = image.width / small_size[0]
    scale_y = image.height / small_size[1]
    regions = []
    for region_id in np.unique(labels):
        inside = labels == region_id
        region_xs, region_ys = xs[inside], ys[inside]
        regions.append(
            Region(
                x_min=region_xs.min() * scale_x,
                y_min=region_ys.min() * scale_y,
                x_max=(region_xs.max() + 1) * scale_x,
                y_max=(region_ys.max() + 1) * scale_y,
                area=int(inside.sum()),
            )
        )
    return regions


def cell_box(region: Region, width: int, height: int, config: LocatorConfig) -> Box:
    """Grow a nucleus box to the whole cell (fitted on train boxes), clipped to the field."""
    centre_x = (region.x_min + region.x_max) / 2
    centre_y = (region.y_min + region.y_max) / 2
    half_width = (config.width_scale * (region.x_max - region.x_min) + config.width_offset) / 2
    half_height = (config.height_scale * (region.y_max - region.y_min) + config.height_offset) / 2
    span = max(1, config.full_score_area - config.min_area)
    score = 0.5 + 0.5 * float(np.clip((region.area - config.min_area) / span, 0.0, 1.0))
    return Box(
        x_min=max(0, round(centre_x - half_width)),
        y_min=max(0, round(centre_y - half_height)),
        x_max=min(width, round(centre_x + half_width)),
        y_max=min(height, round(centre_y + half_height)),
        score=round(score, 4),
    )


def suppress_overlaps(boxes: list[Box], max_iou: float) -> list[Box]:
    """Greedy non-maximum suppression: keep the best box, drop those overlapping it too much."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda candidate: candidate.score, reverse=True):
        if all(iou(box, other) <= max_iou for other in kept):
            kept.append(box)
    return kept


def locate_cells(image: Image.Image, config: LocatorConfig | None = None) -> list[Box]:
    """White cells of a field as boxes in its pixels, best score first; [] when there are none."""
    config = config or LocatorConfig()
    image = image.convert("RGB")
    candidates = [
        cell_box(region, image.width, image.height, config)
        for region in stained_regions(image, config)
        if region.area >= config.min_area
    ]
    return suppress_overlaps(candidates, config.nms_iou)


@dataclass(frozen=True)
class LocatedCell:
    box: Box
    prediction: CellPrediction


def nucleus_square(small: np.ndarray, box: tuple, config: LocalisationConfig) -> tuple[float, float, float]:
    """`ml.cells.locate_cell` on a field's working copy, blind to stain outside `box`.

    The threshold is still taken over the whole field, as in training, where each Kaggle image
    was a whole field; only the choice of nucleus is confined to the located cell. Returns
    (centre_x, centre_y, side) in working pixels.
    """
    height, width = small.shape[:2]
    short = min(height, width)
    x_min, y_min, x_max, y_max = box
    score = stain_score(small)
    valid = small.sum(axis=-1) > 30
    threshold = max(otsu_threshold(score[valid]), config.min_stain_score) if valid.sum() >= 16 else 0.0
    ys, xs = np.mgrid[:height, :width]
    inside = (xs >= int(x_min)) & (xs < np.ceil(x_max)) & (ys >= int(y_min)) & (ys < np.ceil(y_max))
    mask = (score > threshold) & valid & inside
    if mask.sum() < 4:
        return (x_min + x_max) / 2, (y_min + y_max) / 2, max(x_max - x_min, y_max - y_min)
    density = box_sum(mask, max(3, int(short * config.density_window)))
    peak_y, peak_x = np.unravel_index(int(np.argmax(density)), density.shape)
    ys, xs = np.nonzero(mask)
    near = (ys - peak_y) ** 2 + (xs - peak_x) ** 2 <= (config.cell_radius * short) ** 2
    ys, xs = ys[near], xs[near]
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    side = float(np.clip(extent * config.context, config.min_side * short, config.max_side * short))
    return (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2, side


def crop_for_classifier(
    image: Image.Image, box: Box, localisation: LocalisationConfig, output_size: int = 160
) -> Image.Image:
    """The square the classifier saw in training for this cell, resized to output_size.

    Training fed whole fields through `ml.cells.crop_cell`; this repeats it with the nucleus
    search confined to the box, so a field with one white cell gives exactly the training crop
    and a field with two gives each cell its own. Method "none" (the seed recipe) resized the
    whole image, so the box's own region is resized instead.
    """
    image = image.convert("RGB")
    if localisation.method == "none":
        region = image.crop((box.x_min, box.y_min, box.x_max, box.y_max))
        return region.resize((output_size, output_size), Image.Resampling.BILINEAR)
    small = image.copy()
    small.thumbnail((localisation.work_size, localisation.work_size), Image.Resampling.BILINEAR)
    scale_x = small.width / image.width
    scale_y = small.height / image.height
    small_box = (box.x_min * scale_x, box.y_min * scale_y, box.x_max * scale_x, box.y_max * scale_y)
    centre_x, centre_y, side = nucleus_square(np.asarray(small), small_box, localisation)
    half = side / min(small.size) * min(image.size) / 2
    left = round(centre_x / small.width * image.width - half)
    top = round(centre_y / small.height * image.height - half)
    side_pixels = max(1, round(2 * half))
    square = image.crop((left, top, left + side_pixels, top + side_pixels))
    return square.resize((output_size, output_size), Image.Resampling.BILINEAR)


def classify_cells(predictor: Predictor, image: Image.Image, boxes: list[Box]) -> list[LocatedCell]:
    """Classify each located cell from its training-style crop, in one batch."""
    crops = [crop_for_classifier(image, box, predictor.localisation, predictor.input_size) for box in boxes]
    predictions = classify_crops(predictor, crops)
    return [LocatedCell(box=box, prediction=p) for box, p in zip(boxes, predictions, strict=True)]


def classify_crops(predictor: Predictor, crops: list[Image.Image]) -> list[CellPrediction]:
    """Classify crops that are already what the classifier sees (``crop_for_classifier``), in one
    batch: no second cell localisation. A crop of another size is resized to the model's input, so
    crops stored for one model version can be classified by another."""
    if not crops:
        return []
    size = (predictor.input_size, predictor.input_size)
    pixels = [
        np.asarray(
            crop.convert("RGB")
            if crop.size == size
            else crop.convert("RGB").resize(size, Image.Resampling.BILINEAR),
            np.float32,
        )
        for crop in crops
    ]
    logits, features = predictor.outputs(np.stack(pixels))
    probabilities = softmax(logits, predictor.temperature)
    scores = predictor.domain_scores(features)
    return [
        _prediction(predictor, row, None if scores is None else float(scores[index]))
        for index, row in enumerate(probabilities)
    ]


def _prediction(predictor: Predictor, row: np.ndarray, domain_score: float | None) -> CellPrediction:
    best = int(np.argmax(row))
    return CellPrediction(
        label=predictor.classes[best],
        probabilities={name: float(p) for name, p in zip(predictor.classes, row, strict=True)},
        confidence=float(row[best]),
        domain_score=domain_score,
        in_domain=None if domain_score is None else predictor.domain.cell_in_domain(domain_score),
    )


def describe(name: str, cells: list[LocatedCell]) -> str:
    """One line per located cell: box, locator score, class and its probability."""
    lines = [f"{name}: {len(cells)} white cell{'s' if len(cells) != 1 else ''}"]
    for cell in cells:
        box, prediction = cell.box, cell.prediction
        lines.append(
            f"  ({box.x_min},{box.y_min})-({box.x_max},{box.y_max}) score {box.score:.2f} "
            f"{prediction.label} {prediction.confidence:.2f}"
        )
    return "\n".join(lines)


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ml.locate", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="*", type=Path, help="field images to locate and classify")
    parser.add_argument("--fields", type=Path, help="folder of field images (BloodImage_NNNNN.jpg)")
    parser.add_argument("--boxes", type=Path, help="CSV of WBC boxes (bccd_boxes.csv)")
    parser.add_argument("--split", type=Path, help="fields to evaluate, one name a line")
    parser.add_argument("--subtypes", type=Path, help="subtype CSV (default: beside --boxes)")
    parser.add_argument("--json", type=Path, help="write the evaluation or benchmark here")
    parser.add_argument("--bench", type=Path, help="folder of fields to time (with --split: those)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="model directory (default: the default model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    import json

    from ml import locate_eval

    parser = _parser()
    args = parser.parse_args(argv)
    predictor = Predictor(args.model)
    if args.bench:
        names = locate_eval.read_split(args.split) if args.split else None
        paths = (
            sorted(args.bench.glob("*.jp*g"))
            if names is None
            else [locate_eval.find_field(args.bench, name) for name in names]
        )
        result = locate_eval.benchmark_fields(paths, predictor=predictor, repeats=args.repeats)
    elif args.fields:
        if not (args.boxes and args.split):
            parser.error("--fields needs --boxes and --split")
        result = locate_eval.evaluate_fields(
            args.fields, args.boxes, args.split, predictor=predictor, subtypes_csv=args.subtypes
        )
    elif args.images:
        for path in args.images:
            image = locate_eval.load_field(path)
            print(describe(path.name, classify_cells(predictor, image, locate_cells(image))))
        return 0
    else:
        parser.error("give IMAGE..., --fields DIR --boxes CSV --split FILE, or --bench DIR")
    summary = {key: value for key, value in result.items() if key not in ("errors", "locator")}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
