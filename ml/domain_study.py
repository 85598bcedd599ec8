"""How the domain check was chosen, and leave one source out: `python -m ml.domain_study [--json FILE]`.

Layer choice (validation only): which of the served model's own features tell one training lab
from the other. For each candidate (channel mean and std of one or more layers of wbc-mnv2-v1's weights),
Gaussians are fitted on ONE source's training cells and judged on validation cells: that source's
(in domain) against the other source's (out of domain), both ways. Reported: AUROC and the margin
(1st percentile of the other lab's scores / 99th percentile of the own lab's). The served
model's penultimate features (out_relu) barely separate the labs; early layers separate them
completely, and `ml.model.DOMAIN_LAYERS` keeps the early pair with the widest margins.

Leave one source out: a full retrain without one source is too slow on this CPU, so it uses a
cheaper, stated design: a frozen ImageNet MobileNetV2 (160 px, the served cell crop; it never saw
either source), a linear softmax head on its pooled features trained on ONE source's training
split, temperature and review threshold fitted on that source's validation, and domain statistics
exactly as served (channel statistics of the same layers, `ml.domain_fit.fit_domain`) fitted on
that source alone. It is judged on both test sets (PBC test split, Kaggle TEST) with the same
pseudo-slides and decision as `python -m ml.evaluate`; test sets are never used to choose.
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
from ml.domain import CellEvidence, DomainThresholds, decide_auto_accept, fit_gaussians, source_distance
from ml.domain_fit import KAGGLE_COPIES_PER_GROUP, fit_domain, per_group
from ml.evaluate import pseudo_slides
from ml.features import extract
from ml.paths import cache_dir, kaggle_dir
from ml.predict import softmax

INPUT_SIZE = 160
SLIDE_SIZE = 25
HEAD_EPOCHS = 60
HEAD_SEED = 0
LAYER_CANDIDATES = ("block_2_add", "block_5_add", "block_9_add", "block_12_add", "block_15_add", "out_relu")
LAYER_SETS = [(name,) for name in LAYER_CANDIDATES] + [
    ("block_2_add", "block_5_add"),
    ("block_2_add", "block_5_add", "block_9_add"),
    LAYER_CANDIDATES,
]
# The weights of wbc-mnv2-v1, kept byte-identical in wbc-mnv2-v1.1 and v1.2 (v1 itself is in git history).
PARENT_MODEL = "wbc-mnv2-v1.1"
# The layer study reads fewer cells (copies of one Kaggle original add little; every 3rd PBC
# training cell) to stay within minutes on a CPU.
STUDY_COPIES_PER_GROUP = 3
STUDY_PBC_TRAIN_STEP = 3


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


def cached_features(samples: list[Sample], extractor, name: str, extractor_id: str) -> np.ndarray:
    extracted = extract(
        samples,
        extractor,
        size=INPUT_SIZE,
        localisation=LocalisationConfig(),
        augment=None,
        views=1,
        seed=0,
        cache=cache_dir() / "domain_study",
        name=name,
        extractor_id=extractor_id,
    )
    return extracted.features.astype(np.float32)


def layer_widths(model, layers: tuple[str, ...]) -> list[int]:
    """Width of each tapped layer's statistics (mean and std per channel), in network order."""
    found = {}
    stack = [model]
    while stack:
        current = stack.pop()
        for layer in current.layers:
            if hasattr(layer, "layers"):
                stack.append(layer)
            if layer.name in layers:
                found[layer.name] = 2 * int(layer.output.shape[-1])
    return [found[name] for name in layers]


def split_columns(features: np.ndarray, names: tuple[str, ...], widths: list[int]) -> dict[str, np.ndarray]:
    edges = np.cumsum([0, *widths])
    return {name: features[:, edges[i] : edges[i + 1]] for i, name in enumerate(names)}


def parent_layer_features(data: dict[str, SourceData]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """source -> train/val -> layer -> channel statistics of the served model's weights."""
    import keras

    from ml.model import with_features
    from ml.paths import PROJECT_ROOT

    model = keras.saving.load_model(
        PROJECT_ROOT / "ml" / "models" / PARENT_MODEL / "model.keras", compile=False
    )
    tapped = with_features(model, LAYER_CANDIDATES)
    extractor = keras.Model(tapped.input, tapped.output["features"])
    widths = layer_widths(model, LAYER_CANDIDATES)
    result = {}
    for source, parts in data.items():
        train = per_group(parts.train, STUDY_COPIES_PER_GROUP)
        chosen = {"train": train if source == "kaggle" else train[::STUDY_PBC_TRAIN_STEP], "val": parts.val}
        result[source] = {
            part: (
                split_columns(
                    cached_features(samples, extractor, f"{source}_{part}_layers", f"{PARENT_MODEL}-layers"),
                    LAYER_CANDIDATES,
                    widths,
                ),
                labels_of(samples),
            )
            for part, samples in chosen.items()
        }
    return result


def layer_choice(data: dict[str, SourceData]) -> list[dict]:
    """AUROC and margin of each layer set, fitted on one source, judged on both validations."""
    layers = parent_layer_features(data)
    rows = []
    for layer_set in LAYER_SETS:
        row = {"layers": list(layer_set)}
        for seen, unseen in (("kaggle", "pbc"), ("pbc", "kaggle")):

            def columns(source, part, layer_set=layer_set):
                return np.concatenate([layers[source][part][0][name] for name in layer_set], axis=1)

            train_features, train_labels = columns(seen, "train"), layers[seen]["train"][1]
            means, whitening = fit_gaussians(train_features, train_labels, len(CLASSES))
            inside = source_distance(columns(seen, "val"), means, whitening)
            outside = source_distance(columns(unseen, "val"), means, whitening)
            row[f"{seen}_to_{unseen}"] = {
                "auroc": auroc(inside, outside),
                "margin": float(np.quantile(outside, 0.01) / np.quantile(inside, 0.99)),
            }
        rows.append(row)
    return rows


def imagenet_extractor():
    """Frozen ImageNet MobileNetV2: [pooled features | channel statistics of DOMAIN_LAYERS]."""
    import keras

    from ml.model import DOMAIN_LAYERS, channel_statistics
    from ml.pretrained import imagenet_mobilenet_v2

    base, source = imagenet_mobilenet_v2(INPUT_SIZE, include_top=False)
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    tapped = keras.Model(base.input, [base.output, *(base.get_layer(n).output for n in DOMAIN_LAYERS)])
    output, *activations = tapped(scaled)
    pooled = keras.layers.GlobalAveragePooling2D()(output)
    combined = keras.ops.concatenate([pooled, *(channel_statistics(a) for a in activations)], axis=-1)
    return keras.Model(inputs, combined), f"imagenet-{source}-pooled+domain", int(output.shape[-1])


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


def candidate_scores(logits: np.ndarray, domain: np.ndarray, pooled: np.ndarray, fitted: dict) -> dict:
    """Each candidate's domain score (larger = farther from the training domain)."""
    energy = -(np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)) + logits.max(axis=1))
    return {
        "domain_layers_mahalanobis": fitted["domain"].score(domain),
        "pooled_mahalanobis": fitted["pooled"].score(pooled),
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
    """Head + domain statistics from `seen` only; validation AUROCs; judged on both test sets."""
    pooled, domain = features["pooled"], features["domain"]
    train_labels, val_labels = labels_of(data[seen].train), labels_of(data[seen].val)
    weights, bias = train_head(pooled[seen]["train"], train_labels)
    val_logits = pooled[seen]["val"] @ weights + bias
    temperature = fit_temperature(val_logits, val_labels)
    threshold = review_threshold(softmax(val_logits, temperature), val_labels)
    fitted = {
        name: fit_domain(
            {seen: (table[seen]["train"], train_labels)}, {seen: table[seen]["val"]}, len(CLASSES)
        )[0]
        for name, table in features.items()
    }
    inside = candidate_scores(val_logits, domain[seen]["val"], pooled[seen]["val"], fitted)
    outside = candidate_scores(
        pooled[unseen]["val"] @ weights + bias, domain[unseen]["val"], pooled[unseen]["val"], fitted
    )
    judged = {}
    for name in (seen, unseen):
        probabilities = softmax(pooled[name]["test"] @ weights + bias, temperature)
        truth = labels_of(data[name].test)
        scores = fitted["domain"].score(domain[name]["test"])
        judged[f"{name}_test"] = {
            "accuracy": float((probabilities.argmax(axis=1) == truth).mean()),
            **gate(probabilities, truth, scores, threshold, fitted["domain"].thresholds),
        }
    return {
        "trained_on": seen,
        "unseen": unseen,
        "validation_auroc": {name: auroc(inside[name], outside[name]) for name in inside},
        "temperature": temperature,
        "review_threshold": threshold,
        "cell_threshold": fitted["domain"].thresholds.cell,
        "slide_threshold": fitted["domain"].thresholds.slide,
        "judged": judged,
    }


def labels_of(samples: list[Sample]) -> np.ndarray:
    return np.array([sample.label for sample in samples])


def study() -> dict:
    data = source_data()
    extractor, extractor_id, pooled_width = imagenet_extractor()
    features: dict[str, dict] = {"pooled": {}, "domain": {}}
    for source, parts in data.items():
        for part in ("train", "val", "test"):
            combined = cached_features(getattr(parts, part), extractor, f"{source}_{part}", extractor_id)
            features["pooled"].setdefault(source, {})[part] = combined[:, :pooled_width]
            features["domain"].setdefault(source, {})[part] = combined[:, pooled_width:]
    return {
        "layer_choice": layer_choice(data),
        "leave_one_source_out": [
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
