"""Which domain score separates best, and leave one source out: `python -m ml.domain_study [--json FILE]`.

A full retrain without one source is too slow on this CPU, so leave-one-source-out uses a cheaper,
stated design: frozen ImageNet MobileNetV2 features (160 px, the served cell crop, global average
pooling; the backbone never saw either source), a linear softmax head trained on ONE source's
training split, temperature and review threshold fitted on that source's validation, and domain
statistics fitted exactly as for the served model (`ml.domain_fit`) on that source alone. It is
judged on the other source, which it has never seen.

Score choice uses validation only: in domain = the training source's validation cells, out of
domain = the other source's validation cells, both directions. Test sets (PBC test, Kaggle TEST)
are only judged, with the same pseudo-slides as `python -m ml.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.calibration import fit_temperature, review_threshold
from ml.cells import LocalisationConfig
from ml.data import CLASSES, Sample, read_class_folders, training_splits
from ml.domain import CellEvidence, DomainStatistics, DomainThresholds, decide_auto_accept, fit_gaussians
from ml.domain_fit import KAGGLE_COPIES_PER_GROUP, fit_thresholds, per_group
from ml.evaluate import pseudo_slides
from ml.features import extract
from ml.paths import cache_dir, kaggle_dir
from ml.predict import softmax

INPUT_SIZE = 160
SLIDE_SIZE = 25
HEAD_EPOCHS = 60
HEAD_SEED = 0


@dataclass(frozen=True)
class SourceData:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]


def source_data() -> dict[str, SourceData]:
    splits = training_splits()
    kaggle_test = read_class_folders(kaggle_dir() / "images" / "TEST", CLASSES, "kaggle_test")
    return {
        "kaggle": SourceData(
            per_group([s for s in splits.train if s.source == "kaggle"], KAGGLE_COPIES_PER_GROUP),
            per_group(splits.val_kaggle, KAGGLE_COPIES_PER_GROUP),
            kaggle_test,
        ),
        "pbc": SourceData([s for s in splits.train if s.source == "pbc"], splits.val_pbc, splits.test_pbc),
    }


def imagenet_features(samples: list[Sample], name: str) -> np.ndarray:
    from ml.model import POOLED, lower_with_scaling, split_backbone

    lower, _, source = split_backbone(INPUT_SIZE, POOLED)
    extracted = extract(
        samples,
        lower_with_scaling(INPUT_SIZE, lower),
        size=INPUT_SIZE,
        localisation=LocalisationConfig(),
        augment=None,
        views=1,
        seed=0,
        cache=cache_dir() / "domain_study",
        name=name,
        extractor_id=f"imagenet-pooled-{source}",
    )
    return extracted.features.astype(np.float32)


def train_head(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear softmax head (weights, bias) on frozen features."""
    import keras

    keras.utils.set_random_seed(HEAD_SEED)
    head = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Dense(len(CLASSES))])
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head.fit(features, labels, epochs=HEAD_EPOCHS, batch_size=64, verbose=0)
    weights, bias = head.layers[-1].get_weights()
    return weights, bias


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(out-of-domain score > in-domain score), ties counted half (Mann-Whitney)."""
    scores = np.concatenate([inside, outside])
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float(
        (ranks[len(inside) :].sum() - len(outside) * (len(outside) + 1) / 2) / (len(inside) * len(outside))
    )


def candidate_scores(logits: np.ndarray, features: np.ndarray, statistics: DomainStatistics) -> dict:
    """Each candidate's domain score (larger = farther from the training domain)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    energy = -(np.log(np.exp(shifted).sum(axis=1)) + logits.max(axis=1))
    return {
        "mahalanobis": statistics.score(features),
        "energy": energy,
        "max_softmax": 1 - softmax(logits).max(axis=1),
    }


def gate(
    probabilities: np.ndarray,
    truth: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    domain: DomainThresholds,
) -> dict:
    """The same counts as ml.evaluate's auto_accept, for these arrays."""
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == truth
    slides = out = accepted = wrong = 0
    for indices in pseudo_slides(len(truth), SLIDE_SIZE):
        evidence = [CellEvidence(float(confidence[i]), float(scores[i])) for i in indices]
        decision = decide_auto_accept(evidence, review_threshold=threshold, thresholds=domain)
        slides, out = slides + 1, out + (not decision.in_domain)
        for index, cell in zip(indices, decision.cells, strict=True):
            accepted += cell.auto_acceptable
            wrong += cell.auto_acceptable and not correct[index]
    return {
        "slides": slides,
        "slides_out_of_domain": out,
        "slides_flagged_rate": out / slides,
        "cells": int(len(truth)),
        "cells_flagged_rate": float((scores > domain.cell).mean()),
        "accepted": int(accepted),
        "accepted_wrong": int(wrong),
    }


def one_direction(seen: str, unseen: str, data: dict[str, SourceData], features: dict) -> dict:
    """Head + domain statistics from `seen` only; choose-on-validation AUROCs; judged on both tests."""
    train_features, train_labels = features[seen]["train"], labels_of(data[seen].train)
    weights, bias = train_head(train_features, train_labels)
    means, whitening = fit_gaussians(train_features, train_labels, len(CLASSES))
    statistics = DomainStatistics(means, whitening, DomainThresholds(np.inf, np.inf))
    val_logits = features[seen]["val"] @ weights + bias
    temperature = fit_temperature(val_logits, labels_of(data[seen].val))
    threshold = review_threshold(softmax(val_logits, temperature), labels_of(data[seen].val))
    thresholds, _ = fit_thresholds({seen: statistics.score(features[seen]["val"])})
    inside = candidate_scores(val_logits, features[seen]["val"], statistics)
    outside = candidate_scores(features[unseen]["val"] @ weights + bias, features[unseen]["val"], statistics)
    judged = {}
    for name in (seen, unseen):
        logits = features[name]["test"] @ weights + bias
        scores = statistics.score(features[name]["test"])
        probabilities = softmax(logits, temperature)
        truth = labels_of(data[name].test)
        judged[f"{name}_test"] = {
            "accuracy": float((probabilities.argmax(axis=1) == truth).mean()),
            **gate(probabilities, truth, scores, threshold, thresholds),
        }
    return {
        "trained_on": seen,
        "unseen": unseen,
        "validation_auroc": {name: auroc(inside[name], outside[name]) for name in inside},
        "temperature": temperature,
        "review_threshold": threshold,
        "cell_threshold": thresholds.cell,
        "slide_threshold": thresholds.slide,
        "judged": judged,
    }


def labels_of(samples: list[Sample]) -> np.ndarray:
    return np.array([sample.label for sample in samples])


def study() -> dict:
    data = source_data()
    features = {
        source: {
            part: imagenet_features(getattr(parts, part), f"{source}_{part}")
            for part in ("train", "val", "test")
        }
        for source, parts in data.items()
    }
    return {
        "design": __doc__.split("\n\n")[1].replace("\n", " "),
        "directions": [
            one_direction("kaggle", "pbc", data, features),
            one_direction("pbc", "kaggle", data, features),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.domain_study", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = study()
    text = json.dumps(result, indent=1)
    print(text, file=sys.stdout)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
