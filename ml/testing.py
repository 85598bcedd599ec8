"""Helpers for other apps' tests: a valid model directory built in a second, no training data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.card import write_card
from ml.cells import LocalisationConfig
from ml.domain import DOMAIN_FILE, DomainStatistics, DomainThresholds, save_domain_statistics

CLASSES = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]
TINY_FEATURES = 4  # width of the tiny classifier's penultimate layer


def build_tiny_classifier(input_size: int, classes: int, seed: int):
    """A few-KB Keras classifier with the same contract as the real one (0..255 in, logits out)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(TINY_FEATURES, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="tiny_classifier")


def make_tiny_model_dir(
    path: str | Path,
    *,
    serving: str = "tflite",
    classes: list[str] | None = None,
    version: str = "tiny-test",
    review_threshold: float = 0.9,
    input_size: int = 32,
    seed: int = 0,
    domain: DomainThresholds | None = None,
    source_review_threshold: float | None = None,
) -> Path:
    """Write an untrained tiny model directory that `ml.predict.Predictor` loads like the real one.

    serving="tflite" (default) exercises the same fast-export path as the default model;
    "keras" serves the .keras file. About a second either way (plus the TensorFlow import).
    Predictions are arbitrary but deterministic per seed.

    Without `domain` the model has no domain statistics (every slide "unknown"). With it, the
    statistics are one zero mean per class and identity whitening, so an image's domain score is
    the mean square of its 4 features (`Predictor.predict` shows it); pick thresholds around it
    to make cells and slides in or out of domain. `source_review_threshold` (with `domain`) gives
    its one source a review threshold of its own, which then applies to every cell.
    """
    from ml.export import export_tflite

    model_dir = Path(path)
    model_dir.mkdir(parents=True, exist_ok=True)
    classes = list(classes or CLASSES)
    model = build_tiny_classifier(input_size, len(classes), seed)
    model.save(model_dir / "model.keras")
    serving_file = "model.keras"
    if serving == "tflite":
        serving_file = export_tflite(model, model_dir / "model.tflite", "float32").name
    card = {
        "version": version,
        "classes": classes,
        "input_size": input_size,
        "preprocessing": {"cell_localisation": LocalisationConfig().to_dict()},
        "serving": {"format": serving, "file": serving_file},
        "temperature": 1.0,
        "review_threshold": review_threshold,
    }
    if domain is not None:
        statistics = DomainStatistics(
            sources=["tiny"],
            means=np.zeros((1, len(classes), TINY_FEATURES), np.float32),
            whitening=np.eye(TINY_FEATURES, dtype=np.float32)[np.newaxis],
            scales=np.ones(1, np.float32),
            thresholds=domain,
            review_thresholds=None
            if source_review_threshold is None
            else np.array([source_review_threshold]),
        )
        save_domain_statistics(model_dir, statistics)
        card["domain"] = {"file": DOMAIN_FILE, "cell_threshold": domain.cell, "slide_threshold": domain.slide}
        if source_review_threshold is not None:
            card["domain"]["review_thresholds"] = {"tiny": source_review_threshold}
    write_card(model_dir, card)
    return model_dir
