"""Seeded k-per-class split of a class-folder directory, to reproduce adaptation measurements.

    python -m ml.adapt_split --data DIR --per-class K --out-train DIR --out-test DIR [--seed 0]

Copies K images of each class (chosen with the seed) to --out-train/<CLASS>/ and every other
image to --out-test/<CLASS>/: adapt on the first, judge on the second, never the reverse.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from ml.data import CLASSES, DatasetError, class_folders, image_files


def split_per_class(data: Path, per_class: int, out_train: Path, out_test: Path, seed: int = 0) -> dict:
    """Copy the split; returns {class: [train count, test count]}."""
    for out in (out_train, out_test):
        if out.exists():
            raise FileExistsError(f"{out} already exists")
    rng = np.random.default_rng(seed)
    counts = {}
    for label, folder in class_folders(data, CLASSES).items():
        files = image_files(folder)
        chosen = set(rng.permutation(len(files))[:per_class].tolist())
        for index, path in enumerate(files):
            target = (out_train if index in chosen else out_test) / CLASSES[label]
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)
        counts[CLASSES[label]] = [min(per_class, len(files)), max(0, len(files) - per_class)]
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.adapt_split", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--per-class", type=int, required=True)
    parser.add_argument("--out-train", type=Path, required=True)
    parser.add_argument("--out-test", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = split_per_class(args.data, args.per_class, args.out_train, args.out_test, args.seed)
    except (DatasetError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, (train, test) in counts.items():
        print(f"{name:<12} train {train:>4}  test {test:>4}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
