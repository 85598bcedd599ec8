"""Datasets and honest splits.

The Kaggle blood-cells TRAIN/TEST images are augmented copies of ~350 original cells, so
validation is carved out of TRAIN by `group` (overlapping originals), never by image. PBC images
are all distinct cells and are split per class with a fixed seed. Kaggle TEST is only ever read
by evaluation, never by training or model selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.paths import kaggle_dir, pbc_dir

CLASSES = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


class DatasetError(RuntimeError):
    """A data directory is missing, empty or holds no known class folder."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    source: str
    group: str


def class_folders(root: Path, classes: list[str]) -> dict[int, Path]:
    """Class index -> sub-folder, matching folder names case-insensitively."""
    if not root.is_dir():
        raise DatasetError(f"data directory {root} does not exist")
    wanted = {name.lower(): index for index, name in enumerate(classes)}
    found = {
        wanted[p.name.lower()]: p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in wanted
    }
    if not found:
        raise DatasetError(f"{root} has no class folder named like any of {classes}")
    return found


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_class_folders(root: Path, classes: list[str] = CLASSES, source: str = "folder") -> list[Sample]:
    """Every image under root/<class>/; each image is its own group (no duplicates known)."""
    samples = [
        Sample(path, label, source, f"{source}:{path.name}")
        for label, folder in class_folders(root, classes).items()
        for path in image_files(folder)
    ]
    if not samples:
        raise DatasetError(f"{root} has class folders but no images ({sorted(IMAGE_SUFFIXES)})")
    return samples


def read_kaggle_groups(root: Path | None = None) -> pd.DataFrame:
    """groups.csv with absolute paths; one row per augmented Kaggle image."""
    root = root or kaggle_dir()
    table = pd.read_csv(root / "groups.csv")
    table["path"] = [root / relative for relative in table["path"]]
    table["shares_group_with_train"] = table["shares_group_with_train"].astype(str).str.lower() == "true"
    return table


def kaggle_samples(table: pd.DataFrame) -> list[Sample]:
    return [
        Sample(Path(row.path), CLASSES.index(row.label), "kaggle", str(row.group))
        for row in table.itertuples()
    ]


def grouped_split(table: pd.DataFrame, val_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows by group so no group is on both sides; each class keeps ~val_fraction of its groups.

    A group is assigned to the class most of its images carry, so rare classes (16 monocyte
    originals) still get validation groups.
    """
    rng = np.random.default_rng(seed)
    group_label = table.groupby("group")["label"].agg(lambda labels: labels.mode().iloc[0])
    validation_groups: set[str] = set()
    for label in sorted(group_label.unique()):
        groups = np.array(sorted(group_label[group_label == label].index))
        count = max(1, round(len(groups) * val_fraction))
        validation_groups.update(rng.choice(groups, size=count, replace=False))
    in_validation = table["group"].isin(validation_groups)
    return table[~in_validation], table[in_validation]


def stratified_split(
    samples: list[Sample], fractions: tuple[float, float, float], seed: int
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Seeded per-class train/val/test split of samples that are all distinct cells."""
    rng = np.random.default_rng(seed)
    parts: tuple[list[Sample], list[Sample], list[Sample]] = ([], [], [])
    for label in sorted({s.label for s in samples}):
        members = [s for s in samples if s.label == label]
        order = rng.permutation(len(members))
        train_end = round(len(members) * fractions[0])
        val_end = train_end + round(len(members) * fractions[1])
        for position, index in enumerate(order):
            part = 0 if position < train_end else 1 if position < val_end else 2
            parts[part].append(members[index])
    return parts


@dataclass(frozen=True)
class Splits:
    train: list[Sample]
    val_kaggle: list[Sample]
    val_pbc: list[Sample]
    test_pbc: list[Sample]


PBC_FRACTIONS = (0.7, 0.15, 0.15)
# Splits use their own fixed seed so every training seed and every evaluation sees the same
# PBC test cells and the same Kaggle validation groups.
SPLIT_SEED = 0


def pbc_splits(seed: int = SPLIT_SEED) -> tuple[list[Sample], list[Sample], list[Sample]]:
    return stratified_split(read_class_folders(pbc_dir(), CLASSES, "pbc"), PBC_FRACTIONS, seed)


def training_splits(seed: int = SPLIT_SEED, kaggle_val_fraction: float = 0.2) -> Splits:
    """Kaggle TRAIN split by group + PBC split per class. Kaggle TEST is not read here."""
    table = read_kaggle_groups()
    kaggle_train, kaggle_val = grouped_split(table[table["split"] == "TRAIN"], kaggle_val_fraction, seed)
    pbc_train, pbc_val, pbc_test = pbc_splits(seed)
    return Splits(kaggle_samples(kaggle_train) + pbc_train, kaggle_samples(kaggle_val), pbc_val, pbc_test)


def fingerprint(samples: list[Sample]) -> str:
    """Short hash of which files (by name, label and size) a model was trained on."""
    import hashlib

    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: str(s.path)):
        digest.update(
            f"{sample.source}/{sample.path.name}/{sample.label}/{sample.path.stat().st_size}\n".encode()
        )
    return digest.hexdigest()[:16]
