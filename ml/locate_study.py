"""Would a learned verifier on each candidate box raise the locator's precision? (train/val only)

    python -m ml.locate_study --fields DIR --boxes CSV --splits DIR [--model DIR] [--json FILE]

Every stained region of at least MIN_CANDIDATE_AREA working pixels is a candidate: its box is
cropped as the classifier was trained and the model's pooled features (the ones `ml.domain`
scores) are taken. A candidate is a white cell when its box overlaps a BCCD WBC box at IoU >= 0.5.
A logistic regression on the standardised features (L2, classes weighted equally) is fitted
(1) on train and applied to val, and (2) in 5 folds over train+val, split by field. For each
score threshold the study counts the candidates kept on top of today's area rule
(`LocatorConfig.min_area`). The test list is never read here. docs/locating.md has the result.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.locate import LocatorConfig, cell_box, crop_for_classifier, iou, stained_regions
from ml.locate_eval import find_field, load_field, read_annotations, read_split
from ml.predict import Predictor

MIN_CANDIDATE_AREA = 30
THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)
FOLDS = 5
STUDY_SEED = 0


@dataclass(frozen=True)
class Candidates:
    """One row per candidate region: its field, stained area, pooled features and ground truth."""

    fields: list[str]
    areas: np.ndarray
    features: np.ndarray
    annotated: np.ndarray

    def __add__(self, other: Candidates) -> Candidates:
        return Candidates(
            self.fields + other.fields,
            np.concatenate([self.areas, other.areas]),
            np.concatenate([self.features, other.features]),
            np.concatenate([self.annotated, other.annotated]),
        )


def collect_candidates(
    fields_dir: Path, boxes_csv: Path, split_file: Path, predictor: Predictor
) -> Candidates:
    config = LocatorConfig()
    annotations = read_annotations(boxes_csv)
    fields, areas, features, annotated = [], [], [], []
    for field in read_split(split_file):
        image = load_field(find_field(fields_dir, field))
        regions = [r for r in stained_regions(image, config) if r.area >= MIN_CANDIDATE_AREA]
        boxes = [cell_box(region, image.width, image.height, config) for region in regions]
        crops = [
            crop_for_classifier(image, box, predictor.localisation, predictor.input_size) for box in boxes
        ]
        if not crops:
            continue
        _, pooled = predictor.outputs(np.stack([np.asarray(crop, np.float32) for crop in crops]))
        for region, box, row in zip(regions, boxes, pooled, strict=True):
            overlap = max(
                (iou(box, annotation.box) for annotation in annotations.get(field, [])), default=0.0
            )
            fields.append(field)
            areas.append(region.area)
            features.append(row)
            annotated.append(overlap >= 0.5)
    return Candidates(fields, np.array(areas), np.array(features, float), np.array(annotated, bool))


@dataclass(frozen=True)
class Logistic:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(((features - self.mean) / self.scale) @ self.weights + self.bias)))


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 0.1, steps: int = 3000) -> Logistic:
    """Gradient descent on the class-balanced log loss of standardised features."""
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    standard = (features - mean) / scale
    positive_share = labels.mean()
    sample_weights = np.where(labels, 0.5 / positive_share, 0.5 / (1 - positive_share))
    weights, bias = np.zeros(features.shape[1]), 0.0
    for _ in range(steps):
        predicted = 1 / (1 + np.exp(-(standard @ weights + bias)))
        gradient = sample_weights * (predicted - labels)
        weights -= 0.05 * (standard.T @ gradient + l2 * weights) / len(labels)
        bias -= 0.05 * float(gradient.mean())
    return Logistic(mean, scale, weights, bias)


def kept_counts(candidates: Candidates, scores: np.ndarray, min_area: int) -> dict:
    """White cells and other candidates kept by the area rule alone and with each score threshold."""
    by_area = candidates.areas >= min_area

    def count(kept: np.ndarray) -> dict:
        return {
            "white_cells": int((kept & candidates.annotated).sum()),
            "others": int((kept & ~candidates.annotated).sum()),
        }

    return {"area_rule": count(by_area)} | {
        f"area_rule_and_score_{threshold}": count(by_area & (scores >= threshold)) for threshold in THRESHOLDS
    }


def cross_validated_scores(candidates: Candidates) -> np.ndarray:
    """Each candidate scored by a regression fitted on the folds its field is not in."""
    names = sorted(set(candidates.fields))
    fold_of = dict(
        zip(names, np.random.default_rng(STUDY_SEED).integers(FOLDS, size=len(names)), strict=True)
    )
    folds = np.array([fold_of[field] for field in candidates.fields])
    scores = np.zeros(len(folds))
    for fold in range(FOLDS):
        held_out = folds == fold
        model = fit_logistic(candidates.features[~held_out], candidates.annotated[~held_out])
        scores[held_out] = model.scores(candidates.features[held_out])
    return scores


def verifier_study(train: Candidates, val: Candidates, min_area: int) -> dict:
    model = fit_logistic(train.features, train.annotated)
    both = train + val
    return {
        "candidates": {"train": len(train.fields), "val": len(val.fields)},
        "fit_on_train": {
            "train": kept_counts(train, model.scores(train.features), min_area),
            "val": kept_counts(val, model.scores(val.features), min_area),
        },
        "cross_validated_train_val": kept_counts(both, cross_validated_scores(both), min_area),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.locate_study", description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=Path, required=True)
    parser.add_argument("--boxes", type=Path, required=True)
    parser.add_argument("--splits", type=Path, required=True, help="folder with train.txt and val.txt")
    parser.add_argument("--model", type=Path, help="model directory (default: the default model)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    predictor = Predictor(args.model)
    train, val = (
        collect_candidates(args.fields, args.boxes, args.splits / f"{split}.txt", predictor)
        for split in ("train", "val")
    )
    result = {"model_version": predictor.version} | verifier_study(train, val, LocatorConfig().min_area)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
