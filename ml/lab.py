"""One lab's verified cells for adaptation: read, check, fingerprint and hold out by slide.

A lab directory holds one folder per class (EOSINOPHIL/ LYMPHOCYTE/ MONOCYTE/ NEUTROPHIL/,
matched case-insensitively). Slides are known when the directory has a `slides.csv` manifest
(columns `file`, the path relative to the directory, and `slide`) or when file names start with
a slide prefix `<slide>__` (two underscores, e.g. `S-2024-113__cell_07.png`, how the app
exports them). Otherwise every cell is its own group and the hold-out is stratified by class.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.card import sha256_of
from ml.data import Sample, read_class_folders

MIN_CELLS_PER_CLASS = 5
HOLDOUT_FRACTION = 0.2
SLIDE_MANIFEST = "slides.csv"
SLIDE_SEPARATOR = "__"
LAB_SOURCE = "lab"


class LabDataError(ValueError):
    """The lab's cells cannot be used for adaptation; the message says why."""


@dataclass(frozen=True)
class LabCells:
    samples: list[Sample]  # readable cells; `group` is the slide (or the cell when slides are unknown)
    skipped: list[dict]  # unreadable files: path and error
    slides_known: bool


def readable(path: Path) -> str | None:
    """None if the image decodes completely, else the reason it does not."""
    try:
        with Image.open(path) as opened:
            opened.convert("RGB")
    except (OSError, ValueError, SyntaxError) as error:
        return str(error) or type(error).__name__
    return None


def slide_manifest(root: Path) -> dict[str, str]:
    manifest = root / SLIDE_MANIFEST
    if not manifest.is_file():
        return {}
    with manifest.open(newline="") as handle:
        return {str(Path(row["file"])): row["slide"] for row in csv.DictReader(handle)}


def slide_of(sample: Sample, root: Path, manifest: dict[str, str]) -> str | None:
    relative = str(sample.path.relative_to(root))
    if relative in manifest:
        return manifest[relative]
    prefix, separator, _ = sample.path.name.partition(SLIDE_SEPARATOR)
    return prefix if separator and prefix else None


def read_lab(root: Path, classes: list[str]) -> LabCells:
    """The lab's readable cells with their slides; corrupt files are listed, not used."""
    manifest = slide_manifest(root)
    samples, skipped = [], []
    listed = read_class_folders(root, classes, LAB_SOURCE)
    slides = [slide_of(sample, root, manifest) for sample in listed]
    slides_known = all(slide is not None for slide in slides)
    for sample, slide in zip(listed, slides, strict=True):
        error = readable(sample.path)
        if error is not None:
            skipped.append({"path": str(sample.path), "error": error})
            continue
        group = f"slide:{slide}" if slides_known else sample.group
        samples.append(Sample(sample.path, sample.label, LAB_SOURCE, group))
    return LabCells(samples, skipped, slides_known)


def class_counts(samples: list[Sample], classes: list[str]) -> dict[str, int]:
    counts = np.bincount([s.label for s in samples], minlength=len(classes))
    return {name: int(count) for name, count in zip(classes, counts, strict=True)}


def check_counts(counts: dict[str, int], minimum: int = MIN_CELLS_PER_CLASS) -> None:
    """Refuse a lab set with a class missing or below the minimum, naming each such class."""
    missing = [name for name, count in counts.items() if count == 0]
    few = {name: count for name, count in counts.items() if 0 < count < minimum}
    problems = []
    if missing:
        problems.append(f"no verified cells for {', '.join(missing)}")
    if few:
        listed = ", ".join(f"{name} {count}" for name, count in few.items())
        problems.append(f"fewer than {minimum} readable verified cells for {listed}")
    if problems:
        raise LabDataError(
            "cannot adapt: "
            + "; ".join(problems)
            + f" (each class needs at least {minimum}; counts {counts})"
        )


def fingerprint_lab(samples: list[Sample], classes: list[str]) -> str:
    """sha256 over the labelled file contents, independent of file names, paths and order."""
    lines = sorted(f"{classes[s.label]} {sha256_of(s.path)}\n" for s in samples)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def holdout_split(
    samples: list[Sample], fraction: float = HOLDOUT_FRACTION, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """(train, held out): ~fraction of each class held out, whole groups (slides) on one side.

    Every class keeps at least one training and one held-out cell when it has two or more. With
    slides, groups are taken in a seeded order while a class is below its share, so a slide
    holding several classes may push another class over it; no slide is ever split.
    """
    rng = np.random.default_rng(seed)
    groups = sorted({s.group for s in samples})
    order = [groups[i] for i in rng.permutation(len(groups))]
    labels = sorted({s.label for s in samples})
    totals = {label: sum(s.label == label for s in samples) for label in labels}
    wanted = {label: min(totals[label] - 1, max(1, round(totals[label] * fraction))) for label in labels}
    held: dict[int, int] = dict.fromkeys(labels, 0)
    held_groups = set()
    for group in order:
        members = Counter(s.label for s in samples if s.group == group)
        fills = any(held[label] < wanted[label] for label in members)
        keeps_training = all(held[label] + count < totals[label] for label, count in members.items())
        if fills and keeps_training:
            held_groups.add(group)
            for label, count in members.items():
                held[label] += count
    train = [s for s in samples if s.group not in held_groups]
    return train, [s for s in samples if s.group in held_groups]
