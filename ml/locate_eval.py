"""Measure the field locator against BCCD's white-cell boxes, and time it.

`evaluate_fields` is what `python -m ml.locate --fields DIR --boxes CSV --split FILE --json OUT`
runs; `benchmark_fields` is `python -m ml.locate --bench DIR`. Located boxes are matched to the
annotated ones greedily, best score first, at IoU >= 0.5 (one annotation per box at most).
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.locate import Box, LocatorConfig, Region, classify_cells, iou, locate_cells, stained_regions
from ml.predict import Predictor

IOU_THRESHOLD = 0.5
SUBTYPE_FILE = "bccd_wbc_boxes_with_kaggle_category.csv"
COORDINATES = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class Annotation:
    """An annotated white cell: its box and, where the field's label says so unambiguously, its class."""

    box: tuple[int, int, int, int]
    subtype: str = ""


def read_split(path: Path) -> list[str]:
    """Field names (BloodImage_NNNNN), one a line; blank lines and extensions ignored."""
    return [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()]


def _box_of(row: dict) -> tuple[int, int, int, int]:
    return tuple(int(float(row[key])) for key in COORDINATES)


def read_white_cell_boxes(path: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    """WBC boxes per field from bccd_boxes.csv (label column) or the subtype CSV (all rows WBC)."""
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("label", "WBC") != "WBC" or not row.get("xmin"):
                continue
            boxes.setdefault(Path(row["image"]).stem, []).append(_box_of(row))
    return boxes


def read_subtypes(path: Path) -> dict[tuple[str, tuple[int, int, int, int]], str]:
    """Known class per (field, box): rows of the subtype CSV with status `unambiguous`."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {
            (Path(row["image"]).stem, _box_of(row)): row["subtype_label"]
            for row in csv.DictReader(handle)
            if row.get("status") == "unambiguous" and row.get("xmin") and row.get("subtype_label")
        }


def read_annotations(boxes_csv: Path, subtypes_csv: Path | None = None) -> dict[str, list[Annotation]]:
    """Annotations per field; subtypes from `subtypes_csv`, else the subtype CSV beside the boxes."""
    subtypes = read_subtypes(subtypes_csv or boxes_csv.with_name(SUBTYPE_FILE))
    subtypes.update(read_subtypes(boxes_csv))
    return {
        field: [Annotation(box=box, subtype=subtypes.get((field, box), "")) for box in boxes]
        for field, boxes in read_white_cell_boxes(boxes_csv).items()
    }


def match_boxes(located: list[Box], annotated: list[Annotation]) -> list[tuple[Box, Annotation | None]]:
    """Each located box (best first) with the unmatched annotation it overlaps most at >= 0.5, or None."""
    free = list(annotated)
    pairs: list[tuple[Box, Annotation | None]] = []
    for box in sorted(located, key=lambda candidate: candidate.score, reverse=True):
        overlaps = [(iou(box, annotation.box), index) for index, annotation in enumerate(free)]
        best_overlap, best_index = max(overlaps, default=(0.0, -1))
        pairs.append((box, free.pop(best_index) if best_overlap >= IOU_THRESHOLD else None))
    return pairs


def find_field(fields_dir: Path, name: str) -> Path:
    for suffix in (".jpg", ".jpeg", ".png"):
        if (fields_dir / f"{name}{suffix}").exists():
            return fields_dir / f"{name}{suffix}"
    raise FileNotFoundError(f"no image for field {name} in {fields_dir}")


def load_field(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@dataclass
class Tally:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    classified: int = 0
    classified_correct: int = 0

    def add(
        self, field: str, pairs: list, predictions: list[str], annotated: list[Annotation], errors: list
    ) -> None:
        matched = [annotation for _, annotation in pairs if annotation is not None]
        self.true_positives += len(matched)
        self.false_positives += len(pairs) - len(matched)
        self.false_negatives += len(annotated) - len(matched)
        for (box, annotation), label in zip(pairs, predictions, strict=True):
            if annotation is None:
                errors.append({"field": field, "kind": "false_positive", "box": box.to_dict()})
            elif annotation.subtype:
                self.classified += 1
                self.classified_correct += label == annotation.subtype
        for annotation in annotated:
            if annotation not in matched:
                errors.append({"field": field, "kind": "missed", "box": list(annotation.box)})


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 1.0


def evaluate_fields(
    fields_dir: Path,
    boxes_csv: Path,
    split_file: Path,
    *,
    predictor: Predictor | None = None,
    subtypes_csv: Path | None = None,
    config: LocatorConfig | None = None,
) -> dict:
    """Precision/recall of located white cells at IoU 0.5 and accuracy on the matched labelled ones."""
    config = config or LocatorConfig()
    predictor = predictor or Predictor()
    annotations = read_annotations(boxes_csv, subtypes_csv)
    fields = read_split(split_file)
    tally, errors, seconds = Tally(), [], []
    for field in fields:
        image = load_field(find_field(fields_dir, field))
        started = time.perf_counter()
        cells = classify_cells(predictor, image, locate_cells(image, config))
        seconds.append(time.perf_counter() - started)
        pairs = match_boxes([cell.box for cell in cells], annotations.get(field, []))
        labels = {cell.box: cell.prediction.label for cell in cells}
        tally.add(field, pairs, [labels[box] for box, _ in pairs], annotations.get(field, []), errors)
    return _summary(fields, tally, errors, seconds, predictor, config)


def _summary(fields: list[str], tally: Tally, errors: list, seconds: list, predictor, config) -> dict:
    precision = _ratio(tally.true_positives, tally.true_positives + tally.false_positives)
    recall = _ratio(tally.true_positives, tally.true_positives + tally.false_negatives)
    return {
        "fields": len(fields),
        "iou_threshold": IOU_THRESHOLD,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "true_positives": tally.true_positives,
        "false_positives": tally.false_positives,
        "false_negatives": tally.false_negatives,
        "classified": tally.classified,
        "classified_correct": tally.classified_correct,
        "classified_accuracy": _ratio(tally.classified_correct, tally.classified),
        "seconds_per_field_median": statistics.median(seconds) if seconds else 0.0,
        "model_version": predictor.version,
        "locator": config.to_dict(),
        "errors": errors,
    }


def benchmark_fields(paths: list[Path], *, predictor: Predictor | None = None, repeats: int = 3) -> dict:
    """Seconds per field for decode + locate + crop + classify, after one warm-up pass."""
    predictor = predictor or Predictor()
    encoded = [path.read_bytes() for path in paths]
    for data in encoded[:2]:
        _time_field(predictor, data)
    timings = [_time_field(predictor, data) for _ in range(repeats) for data in encoded]
    return {
        "fields": len(paths),
        "repeats": repeats,
        "seconds_per_field_median": statistics.median(timings),
        "seconds_per_field_mean": statistics.fmean(timings),
        "seconds_per_field_max": max(timings),
        "model_version": predictor.version,
    }


def _time_field(predictor: Predictor, data: bytes) -> float:
    started = time.perf_counter()
    with Image.open(io.BytesIO(data)) as image:
        field = image.convert("RGB")
    classify_cells(predictor, field, locate_cells(field))
    return time.perf_counter() - started


def fit_cell_growth(
    fields_dir: Path, boxes_csv: Path, split_file: Path, config: LocatorConfig | None = None
) -> dict:
    """Least-squares `side = scale * nucleus side + offset` per axis, from boxes clear of the border.

    Each annotated box is paired with the largest stained region centred inside it; border boxes
    are left out because the border, not the cell, sets their size.
    """
    config = config or LocatorConfig()
    annotations = read_annotations(boxes_csv)
    pairs = []
    for field in read_split(split_file):
        image = load_field(find_field(fields_dir, field))
        regions = [region for region in stained_regions(image, config) if region.area >= config.min_area]
        for annotation in annotations.get(field, []):
            region = _region_inside(regions, annotation.box, image.size)
            if region is not None:
                pairs.append((region, annotation.box))
    return _least_squares(pairs)


def _region_inside(
    regions: list[Region], box: tuple, size: tuple[int, int], margin: int = 3
) -> Region | None:
    x_min, y_min, x_max, y_max = box
    if x_min < margin or y_min < margin or x_max > size[0] - margin or y_max > size[1] - margin:
        return None
    inside = [
        region
        for region in regions
        if x_min <= (region.x_min + region.x_max) / 2 <= x_max
        and y_min <= (region.y_min + region.y_max) / 2 <= y_max
    ]
    return max(inside, key=lambda region: region.area, default=None)


def _least_squares(pairs: list[tuple[Region, tuple]]) -> dict:
    nucleus = np.array([(r.x_max - r.x_min, r.y_max - r.y_min) for r, _ in pairs], float)
    cell = np.array([(b[2] - b[0], b[3] - b[1]) for _, b in pairs], float)
    width_scale, width_offset = np.polyfit(nucleus[:, 0], cell[:, 0], 1)
    height_scale, height_offset = np.polyfit(nucleus[:, 1], cell[:, 1], 1)
    return {
        "boxes": len(pairs),
        "width_scale": float(width_scale),
        "width_offset": float(width_offset),
        "height_scale": float(height_scale),
        "height_offset": float(height_offset),
    }
