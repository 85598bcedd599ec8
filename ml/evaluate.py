"""Evaluate a model on a class-folder directory.

    python -m ml.evaluate --data DIR [--model DIR] [--json FILE] [--png FILE] [--split all|train|val|test]
                          [--serving FILE]

Prints a table, writes JSON (n, accuracy, macro_f1, per_class, labels, confusion_matrix, ece,
coverage_accuracy, skipped files) and a confusion-matrix PNG. When DIR is inside the Kaggle
blood-cells layout (a groups.csv above it), TEST-clean (no `shares_group_with_train` rows) and
cell-level accuracy (majority vote per `source_image`) are added. `--split` applies the fixed
per-class PBC split to a folder of distinct cells (e.g. `--data ../shared/data/pbc --split test`).
Unreadable images are listed and skipped; a missing/empty directory or no class folder exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ml.card import ModelDirectoryError
from ml.data import PBC_FRACTIONS, SPLIT_SEED, DatasetError, Sample, read_class_folders, stratified_split
from ml.metrics import (
    confusion_matrix,
    coverage_accuracy,
    expected_calibration_error,
    macro_f1,
    per_class_scores,
)
from ml.paths import PROJECT_ROOT
from ml.predict import Predictor, softmax

CHUNK = 256


def select_split(samples: list[Sample], split: str) -> list[Sample]:
    if split == "all":
        return samples
    parts = dict(
        zip(("train", "val", "test"), stratified_split(samples, PBC_FRACTIONS, SPLIT_SEED), strict=True)
    )
    return parts[split]


def predict_samples(predictor: Predictor, samples: list[Sample]) -> tuple[np.ndarray, list[int], list[dict]]:
    """Calibrated probabilities of the readable samples, their indices, and the skipped files."""
    probabilities, kept, skipped = [], [], []
    for start in range(0, len(samples), CHUNK):
        chunk = samples[start : start + CHUNK]
        pixels = []
        for offset, sample in enumerate(chunk):
            try:
                with Image.open(sample.path) as opened:
                    image = opened.convert("RGB")
            except (OSError, ValueError, SyntaxError) as error:
                skipped.append({"path": str(sample.path), "error": str(error) or type(error).__name__})
                continue
            pixels.append(predictor.preprocess(image))
            kept.append(start + offset)
        if pixels:
            probabilities.append(softmax(predictor.logits(np.stack(pixels)), predictor.temperature))
    stacked = np.concatenate(probabilities) if probabilities else np.zeros((0, len(predictor.classes)))
    return stacked, kept, skipped


def summarise(probabilities: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict:
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(truth, predicted, len(classes))
    return {
        "n": int(len(truth)),
        "accuracy": float((predicted == truth).mean()),
        "macro_f1": macro_f1(matrix),
        "per_class": dict(zip(classes, per_class_scores(matrix), strict=True)),
        "labels": classes,
        "confusion_matrix": matrix.tolist(),
        "ece": expected_calibration_error(probabilities, truth),
        "coverage_accuracy": coverage_accuracy(probabilities, truth, 0.8),
    }


def find_groups_csv(directory: Path) -> Path | None:
    for parent in [directory, *directory.parents][:4]:
        if (parent / "groups.csv").is_file():
            return parent / "groups.csv"
    return None


def kaggle_extras(
    groups_csv: Path, paths: list[Path], probabilities: np.ndarray, truth: np.ndarray, classes: list[str]
) -> dict:
    """TEST-clean and cell-level (majority vote per original image) results for Kaggle folders."""
    table = pd.read_csv(groups_csv)
    table.index = [str((groups_csv.parent / p).resolve()) for p in table["path"]]
    rows = table.reindex([str(p.resolve()) for p in paths])
    if rows["source_image"].isna().all():
        return {}
    clean = ~rows["shares_group_with_train"].astype(str).str.lower().eq("true").to_numpy()
    extras = {
        "test_clean": {
            k: v
            for k, v in summarise(probabilities[clean], truth[clean], classes).items()
            if k in ("n", "accuracy", "macro_f1", "ece", "coverage_accuracy")
        }
    }
    votes = pd.DataFrame(
        {"cell": rows["source_image"].to_numpy(), "truth": truth, "vote": probabilities.argmax(1)}
    )
    cells = (
        votes.dropna()
        .groupby("cell")
        .agg(truth=("truth", "first"), vote=("vote", lambda v: np.bincount(v).argmax()))
    )
    extras["cell_level"] = {
        "n_cells": int(len(cells)),
        "accuracy": float((cells["truth"] == cells["vote"]).mean()),
        "rule": "majority vote of image-level predictions per source_image",
    }
    return extras


def evaluate(data: Path, predictor: Predictor, split: str = "all") -> dict:
    samples = select_split(read_class_folders(data, predictor.classes), split)
    probabilities, kept, skipped = predict_samples(predictor, samples)
    if not kept:
        raise DatasetError(f"no readable images in {data}")
    truth = np.array([samples[i].label for i in kept])
    result = {
        "data": str(data),
        "split": split,
        "model_version": predictor.version,
        **summarise(probabilities, truth, predictor.classes),
        "skipped": skipped,
    }
    groups_csv = find_groups_csv(data)
    if groups_csv is not None:
        result.update(
            kaggle_extras(
                groups_csv, [samples[i].path for i in kept], probabilities, truth, predictor.classes
            )
        )
    return result


def plot_confusion(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(result["confusion_matrix"])
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=colour)
    axis.set_xticks(range(len(result["labels"])), [n[:4] for n in result["labels"]])
    axis.set_yticks(range(len(result["labels"])), [n[:4] for n in result["labels"]])
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{Path(result['data']).name} ({result['split']}): acc {result['accuracy']:.3f}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def format_table(result: dict) -> str:
    lines = [f"{'class':<12}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, row in result["per_class"].items():
        lines.append(
            f"{name:<12}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}{row['support']:>9d}"
        )
    lines.append(
        f"n {result['n']}  accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
        f"ECE {result['ece']:.4f}  coverage-80% accuracy {result['coverage_accuracy']:.4f}"
    )
    if "test_clean" in result:
        clean = result["test_clean"]
        lines.append(
            f"TEST-clean n {clean['n']}  accuracy {clean['accuracy']:.4f}  macro-F1 {clean['macro_f1']:.4f}"
        )
        cells = result["cell_level"]
        lines.append(f"cell-level {cells['n_cells']} cells  accuracy {cells['accuracy']:.4f}")
    lines.extend(f"skipped {item['path']}: {item['error']}" for item in result["skipped"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of class sub-folders")
    parser.add_argument("--model", type=Path, help="model directory (default: the committed default model)")
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument(
        "--png", type=Path, help="confusion-matrix PNG (default: next to --json, else var/evaluation/)"
    )
    parser.add_argument("--serving", help="serve from this file of the model directory (e.g. model.keras)")
    parser.add_argument("--split", choices=("all", "train", "val", "test"), default="all")
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(args.model, serving_file=args.serving)
        result = evaluate(args.data, predictor, args.split)
    except (DatasetError, ModelDirectoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    png = args.png or (
        args.json.with_suffix(".png")
        if args.json
        else PROJECT_ROOT / "var" / "evaluation" / f"{predictor.version}-{args.data.name}-{args.split}.png"
    )
    plot_confusion(result, png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
