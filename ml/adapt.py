"""Adapt a model to one lab from its pathologists' verified cells.

    python -m ml.adapt --data DIR --out DIR [--base MODEL_DIR] [--version NAME]

`--data` is a class-folder directory of the lab's verified cells (`ml.lab` says how slides are
recognised); `--base` defaults to the default model. A share of the lab's cells is held out
(whole slides when slides are known) and never trained on: the card reports the parent and the
adapted model on them and on the source validation sets. The rest fine-tunes the base's upper
blocks (batch-norm frozen, lower blocks frozen as in training) for a fixed schedule: each batch
is half the lab's augmented cells, half a few hundred cells of the base's own training split
(Kaggle TRAIN groups outside validation and PBC train), so the sources are not forgotten.
Temperature, review threshold and the domain statistics are then re-fitted, the lab being a
source of its own (its held-out cells validate its threshold), and a complete model directory is
written under a temporary name and renamed into place, so no half-written directory is left.

The Django app calls `adapt(...)` with a progress callback and a cancellation check; the
command-line interface prints the same progress.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ml.augment import AugmentConfig
from ml.calibration import fit_temperature, review_threshold
from ml.card import ModelDirectoryError, read_card, write_card
from ml.data import DatasetError, Sample, training_splits
from ml.domain import DOMAIN_FILE, save_domain_statistics
from ml.domain_fit import cached_outputs, domain_card_entry, fit_domain, source_arrays
from ml.evaluate import SLIDE_SIZE, ServedOutputs, auto_accept, served_outputs, summarise
from ml.export import export_tflite
from ml.features import FeatureSet, extract
from ml.lab import (
    HOLDOUT_FRACTION,
    LAB_SOURCE,
    MIN_CELLS_PER_CLASS,
    LabDataError,
    check_counts,
    class_counts,
    fingerprint_lab,
    holdout_split,
    read_lab,
)
from ml.paths import cache_dir, default_model_dir
from ml.predict import Predictor, softmax

EXPORT_CANDIDATES = ("int8", "float16")  # fastest first
MAX_EXPORT_DROP = 0.005  # int8 is served only within half an accuracy point of Keras
REPRESENTATIVE_IMAGES = 200
GATE_SOURCE_STRIDE = 8  # every 8th source validation image joins the export check
REVIEW_TARGET_ACCURACY = 0.99


@dataclass(frozen=True)
class AdaptConfig:
    epochs: int = 10
    steps_per_epoch: int = 16
    batch_size: int = 32
    learning_rate: float = 1e-5
    label_smoothing: float = 0.1
    lab_views: int = 16  # per cell at most; view 0 is the plain crop, the others augmented
    lab_view_budget: int = 1600  # fewer views per cell for larger labs (rendering is the slow part)
    source_views: int = 2
    source_cells_per_class: int = 60  # per source; 0 trains on the lab alone (tests)
    lab_share: float = 0.5  # fraction of every batch drawn from the lab's cells
    holdout_fraction: float = HOLDOUT_FRACTION
    min_cells_per_class: int = MIN_CELLS_PER_CLASS
    min_lab_domain_cells: int = 40  # held-out lab cells needed before the lab's slides are in domain
    export: str = "tflite"  # "tflite": int8, else float16, checked against Keras; or "keras"
    seed: int = 0


@dataclass(frozen=True)
class Progress:
    stage: str  # read, features, train, export, calibrate, domain, evaluate, done
    message: str
    step: int | None = None
    total: int | None = None


ProgressCallback = Callable[[Progress], None]


class AdaptationCancelled(RuntimeError):
    """The caller's cancellation check returned True; nothing was written at --out."""


class AdaptationRefused(ValueError):
    """The request cannot be run: output exists, or the lab data is unusable (see LabDataError)."""


def adapt(
    data_dir: Path,
    out_dir: Path,
    base_dir: Path | None = None,
    version: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
    config: AdaptConfig | None = None,
) -> dict:
    """Write the adapted model directory `out_dir`; return its card.

    Raises LabDataError (too few cells, a class missing), AdaptationRefused (out_dir exists)
    and AdaptationCancelled; in every failure no directory is left at out_dir.
    """
    config = config or AdaptConfig()
    run = _Run(Path(data_dir), Path(out_dir), Path(base_dir or default_model_dir()), progress, cancelled)
    if run.out_dir.exists():
        raise AdaptationRefused(f"{run.out_dir} already exists; a model version is never overwritten")
    partial = run.out_dir.with_name(f".{run.out_dir.name}.partial-{os.getpid()}")
    try:
        card = _adapt_into(run, partial, version, config)
        os.replace(partial, run.out_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    run.report("done", f"wrote {run.out_dir} in {time.monotonic() - run.started:.0f}s")
    return card


def inspect_lab(data_dir: Path, classes: list[str], minimum: int = MIN_CELLS_PER_CLASS) -> dict:
    """What `adapt` would train on, without training: per-class counts, skipped files, slides.

    Raises LabDataError with the reason when adaptation would be refused.
    """
    lab = read_lab(Path(data_dir), classes)
    counts = class_counts(lab.samples, classes)
    check_counts(counts, minimum)
    return {"class_counts": counts, "skipped": lab.skipped, "slides_known": lab.slides_known}


@dataclass
class _Run:
    data_dir: Path
    out_dir: Path
    base_dir: Path
    progress: ProgressCallback | None
    cancelled: Callable[[], bool] | None
    started: float = dataclasses.field(default_factory=time.monotonic)

    def report(self, stage: str, message: str, step: int | None = None, total: int | None = None) -> None:
        if self.cancelled is not None and self.cancelled():
            raise AdaptationCancelled(f"adaptation cancelled during {stage}")
        if self.progress is not None:
            self.progress(Progress(stage, message, step, total))


def _adapt_into(run: _Run, target: Path, version: str | None, config: AdaptConfig) -> dict:
    import keras

    keras.utils.set_random_seed(config.seed)
    parent = Predictor(run.base_dir)
    lab = read_lab(run.data_dir, parent.classes)
    for item in lab.skipped:
        run.report("read", f"skipped unreadable image {item['path']}: {item['error']}")
    counts = class_counts(lab.samples, parent.classes)
    check_counts(counts, config.min_cells_per_class)
    lab_train, lab_held = holdout_split(lab.samples, config.holdout_fraction, config.seed)
    run.report("read", f"lab cells {counts}; training on {len(lab_train)}, holding out {len(lab_held)}")
    sources = source_samples(config)
    model = keras.saving.load_model(run.base_dir / "model.keras", compile=False)
    history = fine_tune(run, model, parent, lab_train, sources, config)
    target.mkdir(parents=True)
    model.save(target / "model.keras")
    fingerprint = fingerprint_lab(lab.samples, parent.classes)
    card = provisional_card(parent.card, version or f"{parent.version}-lab-{fingerprint[:8]}")
    write_card(target, card)
    served = choose_serving(run, target, model, parent, lab_train, lab_held, sources, config)
    card["serving"] = served["serving"]
    write_card(target, card)
    judged = judged_outputs(run, Predictor(target), lab_train, lab_held, sources)
    card.update(calibration(judged))
    write_card(target, card)
    domain = fit_lab_domain(run, target, Predictor(target), judged, bool(sources["train"]), config)
    if domain is not None:
        card["domain"] = domain
        write_card(target, card)
    results = validation_results(run, Predictor(target), parent, judged)
    facts = {
        "lab": lab,
        "counts": counts,
        "fingerprint": fingerprint,
        "train": lab_train,
        "held": lab_held,
        "sources": sources,
        "history": history,
        "export": served,
        "config": config,
        "wall_time_s": round(time.monotonic() - run.started, 1),
    }
    card.update(final_sections(parent.card, facts, results))
    (target / "evaluation.json").write_text(
        json.dumps({"results": results, "export": served}, indent=1) + "\n"
    )
    write_card(target, card)
    return read_card(target)


# --- Data -----------------------------------------------------------------------------------------


def source_samples(config: AdaptConfig) -> dict[str, list[Sample]]:
    """Cells of the base's own training split mixed in, and its validation sets to judge forgetting."""
    if config.source_cells_per_class <= 0:
        return {"train": [], "val_kaggle": [], "val_pbc": []}
    splits = training_splits()
    rng = np.random.default_rng(config.seed)
    mixed = []
    for source in ("kaggle", "pbc"):
        for label in sorted({s.label for s in splits.train}):
            members = [s for s in splits.train if s.source == source and s.label == label]
            mixed += spread_over_groups(members, config.source_cells_per_class, rng)
    return {"train": mixed, "val_kaggle": splits.val_kaggle, "val_pbc": splits.val_pbc}


def spread_over_groups(members: list[Sample], count: int, rng: np.random.Generator) -> list[Sample]:
    """`count` samples taken one per group in turn (a Kaggle original's copies add little)."""
    shuffled = [members[i] for i in rng.permutation(len(members))]
    rank: dict[str, int] = {}
    ranked = []
    for sample in shuffled:
        ranked.append((rank.get(sample.group, 0), len(ranked), sample))
        rank[sample.group] = rank.get(sample.group, 0) + 1
    return [sample for *_, sample in sorted(ranked, key=lambda item: item[:2])[:count]]


# --- Fine-tuning ----------------------------------------------------------------------------------


def trainable_parts(model, input_size: int):
    """(extractor from pixels to the trainable part's input, extractor id, trainable part).

    A model trained by `ml.train` chains `lower` (frozen) and `head`; any other model (the tiny
    test model) is trained whole, from its pixels.
    """
    import keras

    from ml.model import lower_with_scaling

    names = {layer.name for layer in model.layers}
    if {"lower", "head"} <= names:
        lower = model.get_layer("lower")
        return lower_with_scaling(input_size, lower), f"lower-of-{id_of(model)}", model.get_layer("head")
    pixels = keras.Input((input_size, input_size, 3))
    return keras.Model(pixels, pixels), "pixels", model


def id_of(model) -> str:
    """A short identity of the frozen lower blocks' weights, for the feature cache key."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_layer("lower").get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def leaf_layers(model) -> list:
    import keras

    leaves = []
    for layer in model.layers:
        leaves += leaf_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return leaves


def trainable_copy(part):
    """A compiled-able clone with the part's weights; batch-norm frozen (small batches ruin it)."""
    import keras

    copy = keras.models.clone_model(part)
    for source, target in zip(leaf_layers(part), leaf_layers(copy), strict=True):
        target.set_weights(source.get_weights())
        target.trainable = not isinstance(target, keras.layers.BatchNormalization)
    return copy


def extract_views(run: _Run, extractor, extractor_id: str, parent: Predictor, lab_train, sources, config):
    common = {
        "size": parent.input_size,
        "localisation": parent.localisation,
        "augment": AugmentConfig(),
        "seed": config.seed,
        "extractor_id": extractor_id,
    }
    views = lab_views_per_cell(len(lab_train), config)
    run.report("features", f"rendering {views} views of {len(lab_train)} lab cells")
    # Lab cells are a hospital's data: never written to the shared feature cache.
    lab = extract(lab_train, extractor, views=views, cache=None, name="lab-train", **common)
    if not sources["train"]:
        return lab, [LAB_SOURCE] * len(lab.labels)
    run.report("features", f"rendering {config.source_views} views of {len(sources['train'])} source cells")
    mixed = extract(
        sources["train"],
        extractor,
        views=config.source_views,
        cache=cache_dir() / "features",
        name="adapt-sources",
        **common,
    )
    features = FeatureSet(
        np.concatenate([lab.features, mixed.features]),
        np.concatenate([lab.labels, mixed.labels]),
        np.concatenate([lab.sample_index, mixed.sample_index + len(lab_train)]),
    )
    origin = [LAB_SOURCE] * len(lab.labels) + [sources["train"][i].source for i in mixed.sample_index]
    return features, origin


def lab_views_per_cell(cells: int, config: AdaptConfig) -> int:
    return int(np.clip(config.lab_view_budget // max(1, cells), 2, config.lab_views))


def draw_weights(labels: np.ndarray, origin: list[str], owners: np.ndarray, lab_share: float) -> np.ndarray:
    """Probability of each view: lab_share to the lab, the rest split over sources; classes equal
    within a source, cells equal within a class."""
    origin_array = np.array(origin)
    present = sorted(set(origin))
    others = [name for name in present if name != LAB_SOURCE]
    weights = np.zeros(len(labels))
    for source in present:
        share = lab_share if source == LAB_SOURCE else (1 - lab_share) / len(others)
        share = 1.0 if len(present) == 1 else share
        in_source = origin_array == source
        for label in np.unique(labels[in_source]):
            members = in_source & (labels == label)
            cells, views = np.unique(owners[members], return_counts=True)
            per_cell = dict(zip(cells, views, strict=True))
            weights[members] = share / len(np.unique(labels[in_source])) / len(cells)
            weights[members] /= np.array([per_cell[o] for o in owners[members]])
    return weights / weights.sum()


def fine_tune(run: _Run, model, parent: Predictor, lab_train, sources, config: AdaptConfig) -> list[dict]:
    """Fixed-schedule fine-tuning of the trainable part; its weights are written back into model."""
    import keras

    extractor, extractor_id, part = trainable_parts(model, parent.input_size)
    views, origin = extract_views(run, extractor, extractor_id, parent, lab_train, sources, config)
    weights = draw_weights(views.labels, origin, views.sample_index, config.lab_share)
    copy = trainable_copy(part)
    steps = config.epochs * config.steps_per_epoch
    copy.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    targets = np.eye(len(parent.classes), dtype=np.float32)[views.labels]
    rng = np.random.default_rng(config.seed)
    history = []
    for epoch in range(1, config.epochs + 1):
        started = time.monotonic()
        chosen = rng.choice(len(weights), size=config.steps_per_epoch * config.batch_size, p=weights)
        result = copy.fit(
            views.features[chosen],
            targets[chosen],
            batch_size=config.batch_size,
            verbose=0,
            callbacks=[step_reporter(run, epoch, config)],
        )
        row = {key: float(values[0]) for key, values in result.history.items()}
        history.append({"epoch": epoch, **row, "seconds": round(time.monotonic() - started, 1)})
        run.report(
            "train",
            f"epoch {epoch}/{config.epochs} loss {row['loss']:.3f} accuracy {row['accuracy']:.3f} "
            f"({history[-1]['seconds']:.0f}s)",
            epoch,
            config.epochs,
        )
    for trained, served in zip(leaf_layers(copy), leaf_layers(part), strict=True):
        served.set_weights(trained.get_weights())
    return history


def step_reporter(run: _Run, epoch: int, config: AdaptConfig):
    import keras

    class StepReporter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = (epoch - 1) * config.steps_per_epoch + batch + 1
            total = config.epochs * config.steps_per_epoch
            run.report("train", f"step {step}/{total} loss {(logs or {}).get('loss', 0.0):.3f}", step, total)

    return StepReporter()


# --- Serving file, calibration, domain ---------------------------------------------------------------


def provisional_card(parent_card: dict, version: str) -> dict:
    kept = ("classes", "input_size", "preprocessing", "architecture", "weights_source")
    return {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{key: parent_card[key] for key in kept if key in parent_card},
        "parent_version": parent_card["version"],
        "serving": {"format": "keras", "file": "model.keras"},
        "temperature": 1.0,
        "review_threshold": 1.0,
    }


def preprocessed(predictor: Predictor, samples: list[Sample]) -> np.ndarray:
    from PIL import Image

    pixels = []
    for sample in samples:
        with Image.open(sample.path) as opened:
            pixels.append(predictor.preprocess(opened.convert("RGB")))
    return np.stack(pixels)


def choose_serving(run: _Run, target: Path, model, parent, lab_train, lab_held, sources, config) -> dict:
    """The fastest export (int8, then float16) as accurate as Keras on held-out cells, else Keras."""
    keras_file = {"serving": {"format": "keras", "file": "model.keras"}}
    if config.export != "tflite":
        return keras_file
    pool = lab_train + sources["train"]
    representative = [pool[i] for i in np.linspace(0, len(pool) - 1, REPRESENTATIVE_IMAGES).astype(int)]
    pixels = preprocessed(parent, representative)
    gate = lab_held + (sources["val_kaggle"] + sources["val_pbc"])[::GATE_SOURCE_STRIDE]
    accuracy = {"model.keras": gate_accuracy(Predictor(target, serving_file="model.keras"), gate)}
    for mode in EXPORT_CANDIDATES:
        run.report("export", f"{mode} export")
        path = export_tflite(model, target / f"model_{mode}.tflite", mode, pixels)
        accuracy[path.name] = gate_accuracy(Predictor(target, serving_file=path.name), gate)
        run.report("export", f"export check on {len(gate)} held-out cells: {accuracy}")
        if accuracy["model.keras"] - accuracy[path.name] <= MAX_EXPORT_DROP:
            return {
                "serving": {"format": "tflite", "file": path.name},
                "check_cells": len(gate),
                "accuracy": accuracy,
            }
        path.unlink()
    return {**keras_file, "check_cells": len(gate), "accuracy": accuracy}


def gate_accuracy(predictor: Predictor, gate: list[Sample]) -> float:
    outputs = served_outputs(predictor, gate)
    return float((outputs.logits.argmax(axis=1) == truth_of(outputs, gate)).mean())


def outputs_of(predictor: Predictor, samples: list[Sample], cache_name: str | None) -> ServedOutputs:
    """Served outputs; source sets go through the domain cache, lab cells never do."""
    if cache_name is None:
        return served_outputs(predictor, samples)
    return cached_outputs(predictor, samples, cache_name)


Judged = dict[str, tuple[ServedOutputs, list[Sample]]]  # set name -> (served outputs, its samples)


def judged_outputs(run: _Run, predictor: Predictor, lab_train, lab_held, sources) -> Judged:
    run.report("calibrate", "served outputs of the lab cells and the source validation sets")
    sets = {"lab_train": lab_train, "lab_holdout": lab_held}
    sets.update({name: sources[name] for name in ("val_kaggle", "val_pbc") if sources[name]})
    return {
        name: (outputs_of(predictor, samples, None if name.startswith("lab") else name), samples)
        for name, samples in sets.items()
    }


def truth_of(outputs: ServedOutputs, samples: list[Sample]) -> np.ndarray:
    return np.array([samples[i].label for i in outputs.kept], dtype=int)


def calibration(judged: Judged) -> dict:
    """Temperature on all validation cells; review threshold the strictest of the sets' own.

    Each set's threshold is the lowest confidence at which its own predictions at or above it are
    99% accurate; a slide comes from one lab, so the threshold must hold for each.
    """
    validation = {name: item for name, item in judged.items() if name != "lab_train"}
    logits = {name: outputs.logits for name, (outputs, _) in validation.items()}
    truths = {name: truth_of(*item) for name, item in validation.items()}
    temperature = fit_temperature(
        np.concatenate(list(logits.values())), np.concatenate(list(truths.values()))
    )
    per_set = {
        name: review_threshold(softmax(logits[name], temperature), truths[name], REVIEW_TARGET_ACCURACY)
        for name in validation
    }
    return {
        "temperature": temperature,
        "review_threshold": max(per_set.values()),
        "review_threshold_rule": "largest over the validation sets (held-out lab cells, source validation "
        "sets) of the lowest calibrated confidence at which that set's predictions at or above it are "
        f">= {REVIEW_TARGET_ACCURACY:.0%} accurate",
        "review_threshold_per_set": per_set,
    }


def fit_lab_domain(
    run: _Run, target: Path, predictor: Predictor, judged: Judged, with_sources: bool, config: AdaptConfig
) -> dict | None:
    """Domain statistics with the lab as a source: Gaussians on its training cells, scale and
    thresholds on its held-out cells; the sources' as in `ml.domain_fit`.

    The lab joins the domain (its slides may then be auto-accepted) only when enough of its
    cells were held out to check it: a handful of held-out cells cannot show that confident
    predictions on that lab are 99% right. Below that its slides stay out of domain (reviewed).
    Returns the card's `domain` entry, or None when there is no source at all (domain unknown).
    """
    lab_outputs, lab_train = judged["lab_train"]
    held_features = judged["lab_holdout"][0].features
    lab_joins = len(held_features) >= config.min_lab_domain_cells
    run.report("domain", f"fitting domain statistics (sources{' and this lab' if lab_joins else ''})")
    train, validation = source_arrays(predictor, training_splits()) if with_sources else ({}, {})
    if lab_joins:
        train[LAB_SOURCE] = (lab_outputs.features, truth_of(lab_outputs, lab_train))
        validation[LAB_SOURCE] = held_features
    if not train:
        return None
    statistics, report = fit_domain(train, validation, len(predictor.classes))
    save_domain_statistics(target, statistics)
    entry = domain_card_entry(statistics, report)
    entry["lab_in_domain"] = lab_joins
    entry["lab_rule"] = (
        f"the lab is a domain source (Gaussians on its training cells, validated on its held-out cells) "
        f"only with at least {config.min_lab_domain_cells} held-out lab cells; it had {len(held_features)}"
    )
    return {**entry, "file": DOMAIN_FILE}


# --- Figures and card -------------------------------------------------------------------------------


def figures(predictor: Predictor, outputs: ServedOutputs, samples: list[Sample]) -> dict:
    """Accuracy, macro-F1, per class and what `decide_auto_accept` lets through (ml.evaluate)."""
    probabilities = softmax(outputs.logits, predictor.temperature)
    truth = truth_of(outputs, samples)
    scores = predictor.domain_scores(outputs.features)
    result = summarise(probabilities, truth, predictor.classes)
    thresholds = predictor.review_thresholds(outputs.features, len(truth))
    return {**result, **auto_accept(probabilities, truth, scores, predictor, SLIDE_SIZE, thresholds)}


def validation_results(run: _Run, adapted: Predictor, parent: Predictor, judged: Judged) -> dict:
    """Parent and adapted model on every validation set (the lab's training cells excluded)."""
    run.report("evaluate", "validation figures: parent and adapted")
    results = {}
    for name, (outputs, samples) in judged.items():
        if name == "lab_train":
            continue
        parent_outputs = outputs_of(parent, samples, None if name.startswith("lab") else name)
        results[name] = {
            "adapted": figures(adapted, outputs, samples),
            "parent": figures(parent, parent_outputs, samples),
        }
    return results


HEADLINE = ("n", "accuracy", "macro_f1", "per_class", "ece", "auto_accept", "cells_flagged_rate")


def headline(result: dict) -> dict:
    return {key: result[key] for key in HEADLINE if key in result}


def final_sections(parent_card: dict, facts: dict, results: dict) -> dict:
    config: AdaptConfig = facts["config"]
    lab_train, lab_held = facts["train"], facts["held"]
    parent_sources = str(parent_card.get("data", {}).get("train_sources", ""))
    return {
        "derivation": f"adapted from {parent_card['version']} by python -m ml.adapt on one lab's "
        f"verified cells ({len(lab_train)} trained on, {len(lab_held)} held out)",
        "lineage": [*parent_card.get("lineage", []), parent_card["version"]],
        "adaptation": {
            "lab_fingerprint_sha256": facts["fingerprint"],
            "fingerprint_rule": "sha256 over the sorted lines '<class> <sha256 of file contents>' of "
            "every readable lab image",
            "class_counts": facts["counts"],
            "train_counts": class_counts(lab_train, parent_card["classes"]),
            "holdout_counts": class_counts(lab_held, parent_card["classes"]),
            "holdout": "whole slides"
            if facts["lab"].slides_known
            else "stratified by class (slides unknown)",
            "holdout_fraction": config.holdout_fraction,
            "skipped": facts["lab"].skipped,
            "source_cells_mixed": len(facts["sources"]["train"]),
            "config": dataclasses.asdict(config),
            "history": facts["history"],
            "export": facts["export"],
            "wall_time_s": facts["wall_time_s"],
        },
        "data": {
            **parent_card.get("data", {}),
            "train_sources": "+".join(name for name in (parent_sources, LAB_SOURCE) if name),
            "validation_images": {
                **parent_card.get("data", {}).get("validation_images", {}),
                f"val_{LAB_SOURCE}": len(lab_held),
            },
        },
        "metrics": {
            "validation": {
                name: {"adapted": headline(pair["adapted"]), "parent": headline(pair["parent"])}
                for name, pair in results.items()
            },
            "validation_note": "lab_holdout: the lab's held-out cells (never trained on); val_kaggle, "
            "val_pbc: the base's own validation sets (forgetting)",
        },
    }


def print_progress(event: Progress) -> None:
    if event.stage == "train" and event.message.startswith("step") and event.step % 8:
        return
    print(f"[{datetime.now(UTC):%H:%M:%S}] {event.stage}: {event.message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.adapt", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="class folders of the lab's verified cells")
    parser.add_argument("--out", type=Path, required=True, help="new model directory (must not exist)")
    parser.add_argument("--base", type=Path, help="model to adapt (default: the default model)")
    parser.add_argument("--version", help="version of the new model (default: <base>-lab-<fingerprint>)")
    args = parser.parse_args(argv)
    try:
        card = adapt(args.data, args.out, args.base, args.version, progress=print_progress)
    except (LabDataError, AdaptationRefused, DatasetError, ModelDirectoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {"version": card["version"], "out": str(args.out), **card["metrics"]["validation"]}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
