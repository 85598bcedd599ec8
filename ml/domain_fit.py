"""Fit a model's domain statistics on its own served features, and add them to a model.

    python -m ml.domain add --model ml/models/wbc-mnv2-v1 --out ml/models/wbc-mnv2-v1.1 \\
        --version wbc-mnv2-v1.1

`add` writes a NEW model directory: the same Keras weights, a fast export that also returns the
domain features (`ml.model.with_features`), the domain statistics and a card naming its
`parent_version`. Finalising a freshly trained model fits the statistics the same way
(`fit_into_model`).

    python -m ml.domain review-thresholds --model ml/models/wbc-mnv2-v1.1 \\
        --out ml/models/wbc-mnv2-v1.2 --version wbc-mnv2-v1.2

`review-thresholds` writes a NEW model directory with every file of the parent unchanged but the
domain statistics, which gain one review threshold per source (`fit_review_thresholds`), and
re-reports the test sets with them.

Gaussians are fitted on the training split's cells, thresholds on validation only (Kaggle
validation groups and PBC validation cells), each source on its own: a real slide comes from one
lab, and the threshold must hold for every source, so it is the larger of the per-source values.
Test sets are never read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ml.calibration import BOUND_LEVEL, grouped_review_threshold
from ml.card import read_card, sha256_of, write_card
from ml.data import Sample, Splits, training_splits
from ml.domain import (
    DOMAIN_FILE,
    MIN_SLIDE_CELLS,
    DomainStatistics,
    DomainThresholds,
    fit_gaussians,
    is_confident,
    save_domain_statistics,
    source_distance,
)
from ml.evaluate import ServedOutputs, served_outputs
from ml.model import DOMAIN_LAYERS
from ml.paths import cache_dir
from ml.predict import Predictor, softmax

# At most this fraction of in-domain validation cells, and of validation pseudo-slides, is flagged.
FLAG_RATE = 0.01
SLIDE_DRAWS = 4000  # random validation slides per source: enough for a stable 99th percentile
FIT_SEED = 0
# What a derived model keeps of its parent: the weights and the record of how they were trained.
COPIED_FILES = ("model.keras", "training_curves.png")
# Augmented copies of one Kaggle original add little to a Gaussian beyond this many.
KAGGLE_COPIES_PER_GROUP = 8
# Among auto-accepted cells, at most this fraction may be wrong (bounded, not estimated).
MAX_ACCEPTED_ERROR = 0.01


def cached_outputs(predictor: Predictor, samples: list[Sample], name: str) -> ServedOutputs:
    """served_outputs, cached under the cache dir by serving file hash and sample list."""
    digest = hashlib.sha256(sha256_of(predictor.model_dir / predictor.serving_file).encode())
    for sample in samples:
        digest.update(str(sample.path).encode())
    path = cache_dir() / "domain" / f"{name}-{digest.hexdigest()[:20]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as arrays:
            return ServedOutputs(arrays["logits"], arrays["features"], arrays["kept"].tolist(), [])
    outputs = served_outputs(predictor, samples)
    if outputs.features is None:
        raise ValueError(f"{predictor.serving_file} does not return features; re-export it")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, logits=outputs.logits, features=outputs.features, kept=np.array(outputs.kept))
    print(f"  served features {name}: {len(outputs.kept)} images", file=sys.stderr, flush=True)
    return outputs


def per_group(samples: list[Sample], limit: int) -> list[Sample]:
    """The first `limit` images (in path order) of each group; PBC groups are single cells."""
    seen: dict[str, int] = {}
    kept = []
    for sample in sorted(samples, key=lambda s: str(s.path)):
        if seen.get(sample.group, 0) < limit:
            kept.append(sample)
            seen[sample.group] = seen.get(sample.group, 0) + 1
    return kept


def slide_medians(scores: np.ndarray, slide_size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Median score of `draws` random slides of distinct validation cells."""
    size = min(slide_size, len(scores))
    return np.array([np.median(rng.choice(scores, size=size, replace=False)) for _ in range(draws)])


def fit_thresholds(validation_scores: dict[str, np.ndarray]) -> tuple[DomainThresholds, dict]:
    """Cell and slide thresholds flagging at most FLAG_RATE of every validation source.

    Slides are drawn with MIN_SLIDE_CELLS cells, the fewest that get a full verdict: their
    medians vary most, so larger slides of in-domain cells are flagged even less often.
    """
    rng = np.random.default_rng(FIT_SEED)
    quantile = 1 - FLAG_RATE
    per_source = {}
    for source, scores in validation_scores.items():
        medians = slide_medians(scores, MIN_SLIDE_CELLS, SLIDE_DRAWS, rng)
        # "higher" picks an observed value at or above the quantile, so at most FLAG_RATE lie above.
        per_source[source] = {
            "cells": len(scores),
            "cell_quantile": float(np.quantile(scores, quantile, method="higher")),
            "slide_quantile": float(np.quantile(medians, quantile, method="higher")),
        }
    thresholds = DomainThresholds(
        cell=max(item["cell_quantile"] for item in per_source.values()),
        slide=max(item["slide_quantile"] for item in per_source.values()),
    )
    return thresholds, per_source


def fit_domain(
    train: dict[str, tuple[np.ndarray, np.ndarray]], validation: dict[str, np.ndarray], classes: int
) -> tuple[DomainStatistics, dict]:
    """Statistics from per-source training (features, labels); scales and thresholds from validation."""
    sources = sorted(train)
    fitted = [fit_gaussians(*train[source], classes) for source in sources]
    means = np.stack([source_means for source_means, _ in fitted])
    whitening = np.stack([source_whitening for _, source_whitening in fitted])
    scales = np.array(
        [
            np.median(source_distance(validation[source], means[index], whitening[index]))
            for index, source in enumerate(sources)
        ],
        np.float32,
    )
    # A degenerate source (all validation cells on a class mean) must not divide by zero.
    scales = np.maximum(scales, np.float32(1e-6))
    unthresholded = DomainStatistics(sources, means, whitening, scales, DomainThresholds(np.inf, np.inf))
    thresholds, per_source = fit_thresholds({s: unthresholded.score(validation[s]) for s in sources})
    report = {
        "sources": sources,
        "fit_cells": {s: len(train[s][1]) for s in sources},
        "validation": per_source,
    }
    return DomainStatistics(sources, means, whitening, scales, thresholds), report


def fit_statistics(predictor: Predictor, splits: Splits) -> tuple[DomainStatistics, dict]:
    """Per-source Gaussians on the training split's served features, thresholds on validation."""
    train_arrays, validation_features = source_arrays(predictor, splits)
    return fit_domain(train_arrays, validation_features, len(predictor.classes))


def source_arrays(
    predictor: Predictor, splits: Splits
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Per source: training (features, labels) and validation features of the served model."""
    train = {
        source: [s for s in splits.train if s.source == source]
        for source in sorted({s.source for s in splits.train})
    }
    train["kaggle"] = per_group(train["kaggle"], KAGGLE_COPIES_PER_GROUP)
    validation = {"kaggle": splits.val_kaggle, "pbc": splits.val_pbc}
    train_arrays = {}
    for source, samples in train.items():
        outputs = cached_outputs(predictor, samples, f"train_{source}")
        train_arrays[source] = (outputs.features, np.array([samples[i].label for i in outputs.kept]))
    validation_features = {
        source: cached_outputs(predictor, samples, f"val_{source}").features
        for source, samples in validation.items()
    }
    return train_arrays, validation_features


def domain_card_entry(statistics: DomainStatistics, report: dict) -> dict:
    return {
        "file": DOMAIN_FILE,
        "method": "per training source, class-conditional Gaussians with a shared Ledoit-Wolf-shrunk "
        "covariance on the served model's domain features (channel mean and std of "
        f"{', '.join(DOMAIN_LAYERS)}); "
        "score = distance to the nearest source (squared Mahalanobis distance to its nearest class "
        "mean per feature dimension, divided by the median of its own validation cells)",
        "feature_dimension": int(statistics.means.shape[2]),
        "cell_threshold": statistics.thresholds.cell,
        "slide_threshold": statistics.thresholds.slide,
        "slide_statistic": "median of the slide's cell scores",
        "threshold_rule": f"larger over validation sources (Kaggle validation groups, PBC validation) "
        f"of the {1 - FLAG_RATE:.0%} quantile of cell scores, and of the medians of {SLIDE_DRAWS} random "
        f"{MIN_SLIDE_CELLS}-cell validation slides per source",
        "fit_data": "training split (Kaggle TRAIN groups outside validation, at most "
        f"{KAGGLE_COPIES_PER_GROUP} copies per original; PBC train)",
        **report,
    }


def fit_into_model(model_dir: Path) -> dict:
    """Fit the served model's domain statistics and per-source review thresholds and save them;
    returns the card's `domain` entry.

    The caller writes the card, which records the new file's sha256.
    """
    predictor = Predictor(model_dir)
    splits = training_splits()
    statistics, report = fit_statistics(predictor, splits)
    review_thresholds, review_report = fit_review_thresholds(predictor, statistics, splits)
    statistics = dataclasses.replace(statistics, review_thresholds=review_thresholds)
    save_domain_statistics(model_dir, statistics)
    return {**domain_card_entry(statistics, report), **review_entry(review_report)}


def add_domain(parent: Path, out: Path, version: str) -> dict:
    """New model directory `out`: the parent's weights and card, finalised with domain statistics.

    Finalising re-exports the fast serving file (now with the features output; its logits are
    those of the parent's export), fits the statistics on it and re-reports every test set.
    """
    from ml.finalise import finalise  # finalise imports this module

    if out.exists():
        raise FileExistsError(f"{out} already exists; a model version is never overwritten")
    parent_card = read_card(parent)
    out.mkdir(parents=True)
    for name in COPIED_FILES:
        shutil.copyfile(parent / name, out / name)
    card = {key: value for key, value in parent_card.items() if key not in ("files", "domain", "serving")}
    card.update(
        version=version,
        parent_version=parent_card["version"],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        derivation=f"weights of {parent_card['version']} unchanged (model.keras byte-identical); fast "
        "export re-made with a features output; domain statistics added by python -m ml.domain add",
        serving={"format": "keras", "file": "model.keras"},
    )
    write_card(out, card)
    return finalise(out)


def fit_review_thresholds(
    predictor: Predictor, statistics: DomainStatistics, splits: Splits
) -> tuple[np.ndarray, dict]:
    """One review threshold per source, fitted on the validation cells nearest that source.

    `ml.calibration.grouped_review_threshold`: the lowest confidence at which the accepted cells'
    error rate is at most MAX_ACCEPTED_ERROR with BOUND_LEVEL confidence, each distinct original
    counted once (Kaggle's augmented copies of one cell are one piece of evidence).
    """
    confidence, correct, groups, features = [], [], [], []
    for source, samples in {"kaggle": splits.val_kaggle, "pbc": splits.val_pbc}.items():
        outputs = cached_outputs(predictor, samples, f"val_{source}")
        probabilities = softmax(outputs.logits, predictor.temperature)
        confidence.append(probabilities.max(axis=1))
        correct.append(probabilities.argmax(axis=1) == np.array([samples[i].label for i in outputs.kept]))
        groups.append(np.array([samples[i].group for i in outputs.kept]))
        features.append(outputs.features)
    confidence, correct, groups = (np.concatenate(part) for part in (confidence, correct, groups))
    nearest = statistics.nearest_source(np.concatenate(features))
    thresholds, report = [], {}
    for index, source in enumerate(statistics.sources):
        members = nearest == index
        threshold = grouped_review_threshold(
            confidence[members], correct[members], groups[members], MAX_ACCEPTED_ERROR
        )
        accepted = np.array([is_confident(c, threshold) for c in confidence[members]], dtype=bool)
        thresholds.append(threshold)
        report[source] = {
            "review_threshold": threshold,
            "cells": int(members.sum()),
            "distinct_cells": len(set(groups[members])),
            "accepted": int(accepted.sum()),
            "accepted_wrong": int((accepted & ~correct[members]).sum()),
        }
    return np.array(thresholds, np.float64), report


def review_entry(report: dict) -> dict:
    return {
        "review_thresholds": {source: item["review_threshold"] for source, item in report.items()},
        "review_threshold_rule": "per training source, on the validation cells nearest it: the lowest "
        f"calibrated confidence at which the one-sided {BOUND_LEVEL:.0%} Clopper-Pearson upper bound on "
        f"the error rate of the cells at or above it is at most {MAX_ACCEPTED_ERROR:.0%}, each distinct "
        "original cell counted once (augmented copies weigh 1/copies); 1.0 when no threshold qualifies "
        "(every cell nearest that source is reviewed). A cell is held to its nearest source's threshold.",
        "review_validation": report,
    }


def add_review_thresholds(parent: Path, out: Path, version: str) -> dict:
    """New model directory `out`: the parent's files unchanged but per-source review thresholds
    in its domain statistics, and its test sets re-reported."""
    from ml.finalise import write_reports  # finalise imports this module

    if out.exists():
        raise FileExistsError(f"{out} already exists; a model version is never overwritten")
    parent_card = read_card(parent)
    predictor = Predictor(parent)
    if predictor.domain is None:
        raise ValueError(f"{parent} has no domain statistics; run python -m ml.domain add first")
    thresholds, report = fit_review_thresholds(predictor, predictor.domain, training_splits())
    out.mkdir(parents=True)
    kept = set(parent_card["files"]) - {"evaluation.json", DOMAIN_FILE}
    for name in sorted(kept - {n for n in kept if n.startswith("confusion_")}):
        shutil.copyfile(parent / name, out / name)
    save_domain_statistics(out, dataclasses.replace(predictor.domain, review_thresholds=thresholds))
    card = {key: value for key, value in parent_card.items() if key not in ("files", "metrics")}
    card.update(
        version=version,
        parent_version=parent_card["version"],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        derivation=f"every file of {parent_card['version']} unchanged (model.keras and "
        f"{parent_card['serving']['file']} byte-identical) but {DOMAIN_FILE}, which adds one review "
        "threshold per training source; by python -m ml.domain review-thresholds",
        domain={**parent_card["domain"], **review_entry(report)},
    )
    write_card(out, card)
    parent_evaluation = json.loads((parent / "evaluation.json").read_text())
    inherited = {
        key: parent_evaluation[key]
        for key in ("export_comparison", "export_rule")
        if key in parent_evaluation
    }
    return write_reports(out, card, inherited)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.domain", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="write a new model directory = MODEL + domain statistics")
    review = commands.add_parser(
        "review-thresholds", help="write a new model directory = MODEL + one review threshold per source"
    )
    for command in (add, review):
        command.add_argument("--model", type=Path, required=True, help="existing model directory")
        command.add_argument("--out", type=Path, required=True, help="new model directory (must not exist)")
        command.add_argument("--version", required=True, help="version name of the new model")
    args = parser.parse_args(argv)
    derive = add_domain if args.command == "add" else add_review_thresholds
    print(json.dumps(derive(args.model, args.out, args.version), indent=1))
    return 0
