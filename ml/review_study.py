"""Choose the rule for per-source review thresholds on validation data only.

    python -m ml.review_study [--model DIR] [--json FILE]

For each training source (its validation cells: Kaggle validation groups, PBC validation cells)
and each candidate rule, many times: fit the threshold on a random FIT_SHARE of the distinct
original cells, and count, on the other originals, how many images the threshold accepts and how
many of those are wrong. A rule keeps its promise if the held-out error among accepted images
stays at or below 1%, in the pooled count and in nearly every split. Splitting by original keeps
the augmented copies of one Kaggle cell on one side, as a new cell from the lab would be.
Test sets and cellavision-blog are never read here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ml.calibration import accuracy_threshold, error_bound_within, grouped_review_threshold
from ml.data import training_splits
from ml.domain import REVIEW_EVERYTHING
from ml.domain_fit import MAX_ACCEPTED_ERROR, cached_outputs
from ml.predict import Predictor, softmax

SPLITS = 200
FIT_SHARE = 0.8
STUDY_SEED = 0


def point_estimate(confidence: np.ndarray, correct: np.ndarray, groups: np.ndarray) -> float:
    """The cards' rule so far: images at or above it are >= 99% right (each image counted)."""
    return accuracy_threshold(confidence, correct, 1 - MAX_ACCEPTED_ERROR)


def bound_on_images(confidence: np.ndarray, correct: np.ndarray, groups: np.ndarray) -> float:
    """The same bound as the chosen rule, but every image counted as independent evidence."""
    return grouped_review_threshold(confidence, correct, np.arange(len(confidence)), MAX_ACCEPTED_ERROR)


def bound_on_originals(confidence: np.ndarray, correct: np.ndarray, groups: np.ndarray) -> float:
    """The chosen rule: the bound with each distinct original counted once."""
    return grouped_review_threshold(confidence, correct, groups, MAX_ACCEPTED_ERROR)


RULES = {
    "point_estimate_images": point_estimate,
    "bound_images": bound_on_images,
    "bound_originals": bound_on_originals,
}


def validation_sets(predictor: Predictor) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per source: (confidence, correct, original) of its validation images, served as in the app."""
    splits = training_splits()
    sets = {}
    for source, samples in {"kaggle": splits.val_kaggle, "pbc": splits.val_pbc}.items():
        outputs = cached_outputs(predictor, samples, f"val_{source}")
        probabilities = softmax(outputs.logits, predictor.temperature)
        truth = np.array([samples[i].label for i in outputs.kept])
        groups = np.array([samples[i].group for i in outputs.kept])
        sets[source] = (probabilities.max(axis=1), probabilities.argmax(axis=1) == truth, groups)
    return sets


def held_out(
    confidence: np.ndarray, correct: np.ndarray, groups: np.ndarray, rule, rng
) -> tuple[int, int, int]:
    """(held-out images, accepted, accepted wrong) for one random split by original."""
    originals = np.unique(groups)
    fitted = rng.choice(originals, size=round(len(originals) * FIT_SHARE), replace=False)
    fit = np.isin(groups, fitted)
    threshold = rule(confidence[fit], correct[fit], groups[fit])
    accepted = ~fit & (confidence >= threshold) & (threshold < REVIEW_EVERYTHING)  # is_confident
    return int((~fit).sum()), int(accepted.sum()), int((accepted & ~correct).sum())


def study_source(
    confidence: np.ndarray, correct: np.ndarray, groups: np.ndarray, splits: int = SPLITS
) -> dict:
    rng = np.random.default_rng(STUDY_SEED)
    results = {}
    for name, rule in RULES.items():
        counts = np.array([held_out(confidence, correct, groups, rule, rng) for _ in range(splits)])
        images, accepted, wrong = counts.sum(axis=0)
        rates = counts[:, 2] / np.maximum(counts[:, 1], 1)
        results[name] = {
            "threshold_on_all_validation": rule(confidence, correct, groups),
            "held_out_coverage": float(accepted / images),
            "held_out_accepted": int(accepted),
            "held_out_accepted_wrong": int(wrong),
            "held_out_wrong_rate": float(wrong / max(accepted, 1)),
            "splits_over_target": float((rates > MAX_ACCEPTED_ERROR).mean()),
        }
    return {
        "images": len(confidence),
        "distinct_cells": len(np.unique(groups)),
        "bound_met_with_no_error_needs_cells": min(
            n for n in range(1, 10000) if error_bound_within(0, n, MAX_ACCEPTED_ERROR)
        ),
        "rules": results,
    }


def study(predictor: Predictor) -> dict:
    return {
        "model_version": predictor.version,
        "splits": SPLITS,
        "fit_share_of_originals": FIT_SHARE,
        "target_wrong_among_accepted": MAX_ACCEPTED_ERROR,
        "sources": {source: study_source(*arrays) for source, arrays in validation_sets(predictor).items()},
    }


def format_study(result: dict) -> str:
    lines = [
        f"{'source':<8}{'rule':<24}{'thr (all val)':>14}{'coverage':>10}{'wrong/acc':>12}{'splits>1%':>11}"
    ]
    for source, item in result["sources"].items():
        for name, row in item["rules"].items():
            lines.append(
                f"{source:<8}{name:<24}{row['threshold_on_all_validation']:>14.4f}"
                f"{row['held_out_coverage']:>10.3f}{row['held_out_accepted_wrong']:>5d}/{row['held_out_accepted']:<6d}"
                f"{row['splits_over_target']:>11.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.review_study", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model directory (default: the committed default model)")
    parser.add_argument("--json", type=Path, help="write the full result here")
    args = parser.parse_args(argv)
    result = study(Predictor(args.model))
    print(format_study(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
