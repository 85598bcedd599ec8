"""Train a white-cell classifier: `python -m ml.train [--recipe default|seed] [--output DIR]`.

The default recipe crops the stained cell, mixes Kaggle TRAIN (grouped split) with PBC, renders
several stain/geometry-augmented views per image, caches the frozen lower MobileNetV2 blocks'
activations and fine-tunes the upper blocks (batch-norm frozen) with class/source-balanced
sampling and label smoothing. Early stopping and checkpointing follow a validation score that
blends grouped Kaggle validation and PBC validation. `--recipe seed` reproduces the reference
recipe (whole image, frozen backbone, GAP + Dense, Adam, 5 epochs, Kaggle only) on the same splits.
Kaggle TEST is never read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ml.augment import AugmentConfig
from ml.calibration import fit_temperature, review_threshold
from ml.card import write_card
from ml.cells import LocalisationConfig
from ml.data import (
    CLASSES,
    PBC_FRACTIONS,
    SPLIT_SEED,
    Sample,
    Splits,
    fingerprint,
    training_splits,
)
from ml.features import FeatureSet, extract
from ml.metrics import balanced_accuracy, confusion_matrix
from ml.model import (
    POOLED,
    build_full_model,
    build_head,
    lower_with_scaling,
    split_backbone,
)
from ml.paths import PROJECT_ROOT, cache_dir
from ml.predict import softmax


@dataclass(frozen=True)
class Recipe:
    name: str
    input_size: int = 160
    cut: str = "block_2_add"
    localise: bool = True
    train_sources: str = "kaggle+pbc"
    validate_on: str = "kaggle+pbc"  # validation sets averaged into the early-stopping score
    augment: bool = True
    stain_jitter: float = 0.0
    pbc_views: int = 6
    kaggle_views: int = 2
    kaggle_images_per_group: int = 24  # copies of one original add little beyond this
    balanced: bool = True
    kaggle_share: float = 0.5  # fraction of each batch drawn from Kaggle when balanced
    epochs: int = 40
    patience: int = 8
    samples_per_epoch: int = 6144
    batch_size: int = 64
    learning_rate: float = 3e-4
    label_smoothing: float = 0.1
    dropout: float = 0.2
    selection: str = "average"  # "average" of the best epochs' weights, "best" epoch, or "last" epoch
    average_top_epochs: int = 5
    seed: int = 42


RECIPES = {
    "default": Recipe(name="default"),
    "seed": Recipe(
        name="seed",
        input_size=224,
        cut=POOLED,
        localise=False,
        train_sources="kaggle",
        validate_on="kaggle",
        augment=False,
        pbc_views=1,
        kaggle_views=1,
        kaggle_images_per_group=0,
        balanced=False,
        epochs=5,
        patience=0,
        batch_size=32,
        learning_rate=1e-3,
        label_smoothing=0.0,
        dropout=0.0,
        selection="last",
    ),
}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """`--set field=value` for exploration; values are cast to the field's type."""
    changes = {}
    types = {field.name: type(getattr(recipe, field.name)) for field in dataclasses.fields(recipe)}
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown recipe field {key!r}; fields: {sorted(types)}")
        changes[key] = value.lower() in ("1", "true", "yes") if types[key] is bool else types[key](value)
    return dataclasses.replace(recipe, **changes)


def limit_per_group(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """Keep at most `limit` augmented copies of each Kaggle original (0 keeps all)."""
    if limit <= 0:
        return samples
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[Sample]] = {}
    for sample in samples:
        by_group.setdefault(sample.group, []).append(sample)
    kept = []
    for group in sorted(by_group):
        members = by_group[group]
        chosen = rng.choice(len(members), size=min(limit, len(members)), replace=False)
        kept.extend(members[i] for i in sorted(chosen))
    return kept


def sampling_weights(samples: list[Sample], train: FeatureSet, kaggle_share: float) -> np.ndarray:
    """Probability of drawing each view: sources split by kaggle_share, classes equal within a
    source, originals (groups) equal within a class, views equal within an original."""
    sources = np.array([samples[i].source for i in train.sample_index])
    groups = np.array([samples[i].group for i in train.sample_index])
    weights = np.zeros(len(train.labels))
    present = sorted(set(sources))
    for source in present:
        share = kaggle_share if source == "kaggle" else 1 - kaggle_share
        share = 1.0 if len(present) == 1 else share
        in_source = sources == source
        classes = np.unique(train.labels[in_source])
        for label in classes:
            members = in_source & (train.labels == label)
            member_groups, counts = np.unique(groups[members], return_counts=True)
            per_group = dict(zip(member_groups, counts, strict=True))
            weights[members] = (
                share / len(classes) / len(per_group) / np.array([per_group[g] for g in groups[members]])
            )
    return weights / weights.sum()


def epoch_indices(recipe: Recipe, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not recipe.balanced:
        return rng.permutation(len(weights))
    return rng.choice(len(weights), size=recipe.samples_per_epoch, p=weights)


def validation_score(head, validation: dict[str, FeatureSet]) -> dict[str, float]:
    """Balanced accuracy per validation source and their mean (the early-stopping score)."""
    scores = {}
    for name, data in validation.items():
        predicted = head.predict(data.features, batch_size=256, verbose=0).argmax(axis=1)
        scores[name] = balanced_accuracy(confusion_matrix(data.labels, predicted, len(CLASSES)))
    scores["score"] = float(np.mean(list(scores.values())))
    return scores


def compile_head(recipe: Recipe, head, examples_per_epoch: int) -> None:
    import keras

    steps = recipe.epochs * -(-examples_per_epoch // recipe.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=max(1, steps))
    head.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )


def average_weights(snapshots: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Element-wise mean of weight snapshots; valid because batch-norm statistics are frozen."""
    return [np.mean(parts, axis=0) for parts in zip(*snapshots, strict=True)]


def fit(
    recipe: Recipe, head, train: FeatureSet, weights: np.ndarray, validation: dict, output: Path
) -> tuple[list[dict], dict]:
    """Epoch loop with best-validation checkpointing and early stopping.

    Kaggle validation holds few originals per class, so single-epoch scores are noisy; the weights
    of the `average_top_epochs` best epochs are averaged (see select_weights).
    """
    rng = np.random.default_rng(recipe.seed)
    compile_head(recipe, head, len(epoch_indices(recipe, weights, rng)))
    targets = np.eye(len(CLASSES), dtype=np.float32)[train.labels]
    history: list[dict] = []
    snapshots: list[tuple[float, int, list[np.ndarray]]] = []
    for epoch in range(1, recipe.epochs + 1):
        started = time.monotonic()
        chosen = epoch_indices(recipe, weights, rng)
        # The epoch's draws as arrays, shuffled by Keras: the committed model was trained this way
        # (a tf.data feed without that shuffle follows a different path; see README, Model).
        result = head.fit(train.features[chosen], targets[chosen], batch_size=recipe.batch_size, verbose=0)
        scores = validation_score(head, validation)
        improved = not snapshots or scores["score"] > max(item[0] for item in snapshots)
        snapshots.append((scores["score"], epoch, head.get_weights()))
        history.append({"epoch": epoch, "loss": result.history["loss"][0], **scores})
        if improved:
            head.save_weights(output / "checkpoint.weights.h5")
        log(
            f"epoch {epoch:2d}/{recipe.epochs} loss {history[-1]['loss']:.3f} "
            + " ".join(f"{k} {v:.3f}" for k, v in scores.items())
            + f" ({time.monotonic() - started:.0f}s){' *best' if improved else ''}"
        )
        best_epoch = max(snapshots, key=lambda item: item[0])[1]
        if recipe.patience and epoch - best_epoch >= recipe.patience:
            log(f"early stop: no improvement for {recipe.patience} epochs")
            break
    selection = select_weights(recipe, head, snapshots, validation)
    (output / "checkpoint.weights.h5").unlink(missing_ok=True)
    return history, selection


def select_weights(recipe: Recipe, head, snapshots: list, validation: dict) -> dict:
    """Load the final weights into `head`; return how they were chosen and their validation scores.

    The single best epoch's score is the maximum of noisy estimates (Kaggle validation has 3-4
    originals for some classes), so it overstates that epoch; averaging the best epochs' weights
    gives a steadier model. The seed recipe keeps its last epoch, as the original did.
    """
    if recipe.selection == "last":
        head.set_weights(snapshots[-1][2])
        return {"method": "last epoch", "epochs": [snapshots[-1][1]], **validation_score(head, validation)}
    ranked = sorted(snapshots, key=lambda item: item[0], reverse=True)
    head.set_weights(ranked[0][2])
    best = {"method": "best epoch", "epochs": [ranked[0][1]], **validation_score(head, validation)}
    if recipe.selection == "best":
        return best
    top = ranked[: recipe.average_top_epochs]
    head.set_weights(average_weights([item[2] for item in top]))
    averaged = {
        "method": f"weight average of the {len(top)} best epochs",
        "epochs": sorted(i[1] for i in top),
    }
    averaged.update(validation_score(head, validation))
    averaged["best_single_epoch_score"] = best["score"]
    log(f"{averaged['method']}: score {averaged['score']:.3f} (best single epoch {best['score']:.3f})")
    return averaged


def serving_model(recipe: Recipe, head):
    """Pixels-to-logits model built from fresh, never-compiled layers carrying the trained weights.

    Saving the trained (compiled) head would store Adam's state, tripling the file, and make
    every load rebuild an optimizer that serving never uses.
    """
    lower, upper, _ = split_backbone(recipe.input_size, recipe.cut)
    fresh_head = build_head(head.input.shape[1:], upper, len(CLASSES), recipe.dropout)
    fresh_head.set_weights(head.get_weights())
    return build_full_model(recipe.input_size, lower, fresh_head)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [row["loss"] for row in history], label="train loss")
    left.set_xlabel("epoch")
    left.legend()
    for key in [k for k in history[0] if k not in ("epoch", "loss")]:
        right.plot(epochs, [row[key] for row in history], label=key)
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy / balanced accuracy")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def localisation_for(recipe: Recipe) -> LocalisationConfig:
    return LocalisationConfig() if recipe.localise else LocalisationConfig(method="none")


def extract_all(recipe: Recipe, splits: Splits, extractor, extractor_id: str):
    """(training samples, training views, validation views per source) for the recipe's sources."""
    common = {
        "size": recipe.input_size,
        "localisation": localisation_for(recipe),
        "seed": recipe.seed,
        "cache": cache_dir() / "features",
        "extractor_id": extractor_id,
    }
    augment = augment_for(recipe)
    training = {
        "kaggle": limit_per_group(
            [s for s in splits.train if s.source == "kaggle"], recipe.kaggle_images_per_group, recipe.seed
        ),
        "pbc": [s for s in splits.train if s.source == "pbc"],
    }
    views = {"kaggle": recipe.kaggle_views, "pbc": recipe.pbc_views}
    samples: list[Sample] = []
    parts = []
    for source in recipe.train_sources.split("+"):
        part = extract(
            training[source],
            extractor,
            augment=augment,
            views=views[source],
            name=f"{source}-train",
            **common,
        )
        parts.append(FeatureSet(part.features, part.labels, part.sample_index + len(samples)))
        samples += training[source]
    train = FeatureSet(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("features", "labels", "sample_index"))
    )
    held_out = {"kaggle": splits.val_kaggle, "pbc": splits.val_pbc}
    validation = {
        f"val_{source}": extract(
            held_out[source], extractor, augment=None, views=1, name=f"{source}-val", **common
        )
        for source in recipe.validate_on.split("+")
    }
    return samples, train, validation


def augment_for(recipe: Recipe) -> AugmentConfig | None:
    if not recipe.augment:
        return None
    return AugmentConfig(stain_jitter=recipe.stain_jitter)


def calibrate(head, validation: dict[str, FeatureSet]) -> tuple[float, float, dict]:
    """Temperature and 99%-accuracy review threshold fitted on all validation views."""
    logits = np.concatenate(
        [head.predict(v.features, batch_size=256, verbose=0) for v in validation.values()]
    )
    truth = np.concatenate([v.labels for v in validation.values()])
    temperature = fit_temperature(logits, truth)
    probabilities = softmax(logits, temperature)
    threshold = review_threshold(probabilities, truth, 0.99)
    covered = probabilities.max(axis=1) >= threshold
    summary = {
        "n": len(truth),
        "accuracy": float((probabilities.argmax(1) == truth).mean()),
        "review_fraction_at_threshold": float(1 - covered.mean()),
    }
    return temperature, threshold, summary


def run(recipe: Recipe, output: Path, version: str) -> Path:
    import keras

    keras.utils.set_random_seed(recipe.seed)
    output.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"recipe {recipe}")
    splits = training_splits(SPLIT_SEED)
    lower, upper, weights_source = split_backbone(recipe.input_size, recipe.cut)
    log(f"backbone: MobileNetV2 {recipe.input_size}px, weights {weights_source}, trainable from {recipe.cut}")
    extractor = lower_with_scaling(recipe.input_size, lower)
    extractor_id = f"mnv2-{recipe.input_size}-{recipe.cut}-{weights_source}"
    samples, train, validation = extract_all(recipe, splits, extractor, extractor_id)
    log(
        f"features: train {train.features.shape}, "
        + ", ".join(f"{k} {len(v.labels)}" for k, v in validation.items())
    )
    head = build_head(train.features.shape[1:], upper, len(CLASSES), recipe.dropout)
    weights = sampling_weights(samples, train, recipe.kaggle_share)
    history, selection = fit(recipe, head, train, weights, validation, output)
    temperature, threshold, calibration = calibrate(head, validation)
    log(f"temperature {temperature:.3f}, review threshold {threshold:.3f} ({calibration})")
    model = serving_model(recipe, head)
    model.save(output / "model.keras")
    plot_curves(history, output / "training_curves.png")
    facts = {
        "samples": samples,
        "train_views": len(train.labels),
        "validation_images": {k: len(v.labels) for k, v in validation.items()},
        "history": history,
        "selection": selection,
        "weights_source": weights_source,
        "temperature": temperature,
        "threshold": threshold,
        "calibration": calibration,
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    card = model_card(recipe, output, version, facts)
    write_card(output, card)
    log(f"wrote {output} in {time.monotonic() - started:.0f}s")
    return output


def model_card(recipe: Recipe, output: Path, version: str, facts: dict) -> dict:
    """Everything needed to serve, audit and reproduce the model (file hashes added on write)."""
    history = facts["history"]
    return {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "classes": CLASSES,
        "input_size": recipe.input_size,
        "preprocessing": {
            "cell_localisation": localisation_for(recipe).to_dict(),
            "resize": "bilinear, to input_size x input_size",
            "model_input": "RGB float32 0..255; the model scales to [-1, 1] itself",
        },
        "architecture": (
            f"MobileNetV2 (alpha 1.0) at {recipe.input_size}px; frozen up to {recipe.cut}, blocks above "
            "fine-tuned with batch-norm frozen; global average pooling, dropout, Dense(4) logits"
        ),
        "weights_source": facts["weights_source"],
        "training": {
            "recipe": dataclasses.asdict(recipe),
            "augmentation": recipe.augment and augment_for(recipe).to_dict(),
            "command": f"python -m ml.train --recipe {recipe.name} --output {output_for_card(output)}",
            "epochs_run": len(history),
            "selected": facts["selection"]["method"],
            "selected_epochs": facts["selection"]["epochs"],
            "history": history,
            "wall_time_s": facts["wall_time_s"],
        },
        "data": {
            "split_seed": SPLIT_SEED,
            "kaggle": "blood-cells TRAIN split by groups.csv `group`, 20% of groups per class for "
            "validation; TEST never used for training or selection",
            "pbc": f"per-class seeded split {PBC_FRACTIONS} (train/val/test)",
            "train_sources": recipe.train_sources,
            "train_images": len(facts["samples"]),
            "train_views": facts["train_views"],
            "validation_images": facts["validation_images"],
            "fingerprint_sha256_16": fingerprint(facts["samples"]),
        },
        "temperature": facts["temperature"],
        "review_threshold": facts["threshold"],
        "review_threshold_rule": "lowest calibrated confidence at which the validation accuracy of "
        "predictions at or above it is >= 99%",
        "metrics": {
            "validation": {
                **{k: v for k, v in facts["selection"].items() if k.startswith("val") or k == "score"},
                "balanced_accuracy_note": "val_* are balanced accuracies; score is their mean",
                "calibrated": facts["calibration"],
            }
        },
        "serving": {"format": "keras", "file": "model.keras"},
    }


def output_for_card(output: Path) -> str:
    try:
        return str(output.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="default")
    parser.add_argument("--output", type=Path, help="model directory to write (default ml/runs/<recipe>)")
    parser.add_argument("--version", help="model version recorded in the card (default: directory name)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a recipe field"
    )
    parser.add_argument("--no-finalise", action="store_true", help="skip test evaluation and fast export")
    args = parser.parse_args(argv)
    recipe = apply_overrides(RECIPES[args.recipe], args.set)
    output = args.output or PROJECT_ROOT / "ml" / "runs" / recipe.name
    run(recipe, output, args.version or output.name)
    if not args.no_finalise:
        from ml.finalise import finalise

        log(json.dumps(finalise(output), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
