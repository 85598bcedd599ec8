"""Evaluate a model on a class-folder directory.

    python -m ml.evaluate --data DIR [--model DIR] [--json FILE] [--png FILE] [--split all|train|val|test]
                          [--serving FILE] [--slide-size N]

Prints a table, writes JSON (n, accuracy, macro_f1, per_class, labels, confusion_matrix, ece,
coverage_accuracy, auto_accept, cells_flagged_rate, skipped files) and a confusion-matrix PNG.
`auto_accept` applies `ml.domain.decide_auto_accept` to pseudo-slides: the images shuffled with
a fixed seed and cut into groups of `--slide-size` (default 25). When DIR is inside the Kaggle
blood-cells layout (a groups.csv above it), TEST-clean (no `shares_group_with_train` rows) and
cell-level accuracy (majority vote per `source_image`) are added. `--split` applies the fixed
per-class PBC split to a folder of distinct cells (e.g. `--data ../shared/data/pbc --split test`).
Unreadable images are listed and skipped; a missing/empty directory or no class folder exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ml.card import ModelDirectoryError
from ml.data import PBC_FRACTIONS, SPLIT_SEED, DatasetError, Sample, read_class_folders, stratified_split
from ml.domain import MIN_SLIDE_CELLS, CellEvidence, decide_auto_accept
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
SLIDE_SIZE = 25
SLIDE_SEED = 0  # one fixed shuffle, so every model is judged on the same pseudo-slides


def select_split(samples: list[Sample], split: str) -> list[Sample]:
    if split == "all":
        return samples
    parts = dict(
        zip(("train", "val", "test"), stratified_split(samples, PBC_FRACTIONS, SPLIT_SEED), strict=True)
    )
    return parts[split]


@dataclass(frozen=True)
class ServedOutputs:
    """What the served model returns for the readable samples of a list, and what it skipped."""

    logits: np.ndarray
    features: np.ndarray | None  # None for a serving file exported without features
    kept: list[int]  # index into the samples of each row
    skipped: list[dict]


def read_pixels(predictor: Predictor, samples: list[Sample], skipped: list[dict]) -> tuple[list, list[int]]:
    """Preprocessed pixels of the readable samples and their positions; unreadable ones go to skipped."""
    pixels, kept = [], []
    for position, sample in enumerate(samples):
        try:
            with Image.open(sample.path) as opened:
                image = opened.convert("RGB")
        except (OSError, ValueError, SyntaxError) as error:
            skipped.append({"path": str(sample.path), "error": str(error) or type(error).__name__})
            continue
        pixels.append(predictor.preprocess(image))
        kept.append(position)
    return pixels, kept


def served_outputs(predictor: Predictor, samples: list[Sample]) -> ServedOutputs:
    """Logits and features of every readable sample, CHUNK images at a time (bounded memory)."""
    logits, features, kept, skipped = [], [], [], []
    for start in range(0, len(samples), CHUNK):
        pixels, positions = read_pixels(predictor, samples[start : start + CHUNK], skipped)
        if pixels:
            chunk_logits, chunk_features = predictor.outputs(np.stack(pixels))
            logits.append(chunk_logits)
            features.append(chunk_features)
            kept.extend(start + position for position in positions)
    if not logits:
        return ServedOutputs(np.zeros((0, len(predictor.classes))), None, [], skipped)
    stacked = None if features[0] is None else np.concatenate(features)
    return ServedOutputs(np.concatenate(logits), stacked, kept, skipped)


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


def pseudo_slides(count: int, slide_size: int, seed: int = SLIDE_SEED) -> list[np.ndarray]:
    """Indices of `count` images shuffled with a fixed seed (classes mixed), cut into slides.

    Consecutive groups of slide_size; a last group smaller than MIN_SLIDE_CELLS joins the one
    before, so only a data set smaller than that makes a slide with few cells.
    """
    order = np.random.default_rng(seed).permutation(count)
    slides = [order[start : start + slide_size] for start in range(0, count, slide_size)]
    if len(slides) > 1 and len(slides[-1]) < MIN_SLIDE_CELLS:
        slides[-2:] = [np.concatenate(slides[-2:])]
    return slides


def auto_accept(
    probabilities: np.ndarray,
    truth: np.ndarray,
    domain_scores: np.ndarray | None,
    predictor: Predictor,
    slide_size: int,
    review_thresholds: np.ndarray | None = None,
) -> dict:
    """What `decide_auto_accept` lets through on pseudo-slides of these images.

    `review_thresholds` are the images' own (nearest source's); None: the card's for all.
    slides_out_of_domain counts every slide not in domain, including "unknown" (no statistics).
    """
    thresholds = predictor.domain.thresholds if predictor.domain is not None else None
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    slides, accepted, wrong, cells_flagged = 0, 0, 0, 0
    out_of_domain = 0
    for indices in pseudo_slides(len(truth), slide_size):
        evidence = [
            CellEvidence(
                float(confidence[i]),
                None if domain_scores is None else float(domain_scores[i]),
                None if review_thresholds is None else float(review_thresholds[i]),
            )
            for i in indices
        ]
        decision = decide_auto_accept(
            evidence, review_threshold=predictor.review_threshold, thresholds=thresholds
        )
        slides += 1
        out_of_domain += not decision.in_domain
        cells_flagged += sum(cell.in_domain is False for cell in decision.cells)
        for index, cell in zip(indices, decision.cells, strict=True):
            accepted += cell.auto_acceptable
            wrong += cell.auto_acceptable and not correct[index]
    return {
        "auto_accept": {
            "slide_size": slide_size,
            "slides": slides,
            "slides_out_of_domain": out_of_domain,
            "cells": int(len(truth)),
            "accepted": int(accepted),
            "accepted_wrong": int(wrong),
        },
        "cells_flagged_rate": None if thresholds is None else cells_flagged / max(1, len(truth)),
    }


def evaluate(data: Path, predictor: Predictor, split: str = "all", slide_size: int = SLIDE_SIZE) -> dict:
    samples = select_split(read_class_folders(data, predictor.classes), split)
    outputs = served_outputs(predictor, samples)
    if not outputs.kept:
        raise DatasetError(f"no readable images in {data}")
    probabilities = softmax(outputs.logits, predictor.temperature)
    truth = np.array([samples[i].label for i in outputs.kept])
    gate = auto_accept(
        probabilities,
        truth,
        predictor.domain_scores(outputs.features),
        predictor,
        slide_size,
        predictor.review_thresholds(outputs.features, len(truth)),
    )
    result = {
        "data": str(data),
        "split": split,
        "model_version": predictor.version,
        **summarise(probabilities, truth, predictor.classes),
        **gate,
        "skipped": outputs.skipped,
    }
    groups_csv = find_groups_csv(data)
    if groups_csv is not None:
        result.update(
            kaggle_extras(
                groups_csv, [samples[i].path for i in outputs.kept], probabilities, truth, predictor.classes
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
    lines.append(format_auto_accept(result))
    lines.extend(f"skipped {item['path']}: {item['error']}" for item in result["skipped"])
    return "\n".join(lines)


def format_auto_accept(result: dict) -> str:
    gate = result["auto_accept"]
    flagged = result["cells_flagged_rate"]
    flagged_text = "domain unknown (no statistics)" if flagged is None else f"cells flagged {flagged:.4f}"
    wrong_rate = gate["accepted_wrong"] / gate["accepted"] if gate["accepted"] else 0.0
    return (
        f"auto-accept: {gate['slides']} slides of {gate['slide_size']}, "
        f"{gate['slides_out_of_domain']} out of domain; {gate['accepted']}/{gate['cells']} cells "
        f"accepted, {gate['accepted_wrong']} wrong ({wrong_rate:.4f}); {flagged_text}"
    )


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
    parser.add_argument("--slide-size", type=int, default=SLIDE_SIZE, help="cells per pseudo-slide")
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(args.model, serving_file=args.serving)
        result = evaluate(args.data, predictor, args.split, args.slide_size)
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
