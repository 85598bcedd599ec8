"""Fast serving exports of a Keras classifier (TFLite, run with XNNPACK by the Predictor)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

EXPORT_MODES = ("float32", "float16", "int8")


def export_tflite(model, path: Path, mode: str = "float16", representative: np.ndarray | None = None) -> Path:
    """Convert `model` (float 0..255 pixels in, logits out) to a TFLite file at `path`.

    The file returns the named outputs "logits" and "features" (`ml.model.with_features`), so the
    Predictor can score each image's domain from the same run. int8 quantises weights and
    activations; it needs representative preprocessed inputs to pick activation ranges. Input and
    outputs stay float so the Predictor code path is unchanged.
    """
    import tensorflow as tf

    from ml.model import with_features

    if mode not in EXPORT_MODES:
        raise ValueError(f"unknown export mode {mode!r}; choose from {EXPORT_MODES}")
    converter = tf.lite.TFLiteConverter.from_keras_model(with_features(model))
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None:
            raise ValueError("int8 export needs representative inputs")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _samples(representative)
    path.write_bytes(converter.convert())
    return path


def _samples(pixels: np.ndarray) -> Iterator[list[np.ndarray]]:
    for row in pixels:
        yield [row[np.newaxis].astype(np.float32)]
