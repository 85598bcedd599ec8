"""Grad-CAM (Selvaraju et al., 2017): where in the cell the model looked for the class it chose.

Needs the model directory's Keras file (TFLite keeps no gradients). The heatmap is taken at the
last spatial feature map of the network, found by walking into nested sub-models (the served
model chains a frozen backbone part and a trained head), and drawn over the same cell crop the
model classified::

    explainer = GradCamExplainer(model_dir)
    png_bytes = explainer.overlay_png(image_bytes, class_name="NEUTROPHIL")
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ml.card import ModelDirectoryError, read_card, verify_file
from ml.cells import LocalisationConfig, crop_cell
from ml.predict import decode_image

KERAS_FILE = "model.keras"
OVERLAY_SIZE = 256
OVERLAY_OPACITY = 0.45

Stage = Callable[[object], object]

if TYPE_CHECKING:
    import keras


def _is_spatial(tensor: object) -> bool:
    return len(getattr(tensor, "shape", ())) == 4


def _layers(model: keras.Model) -> list[keras.Layer]:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _holds_feature_map(layer: keras.Layer) -> bool:
    import keras

    return isinstance(layer, keras.Model) and any(_is_spatial(inner.output) for inner in _layers(layer))


def split_at_last_feature_map(model: keras.Model) -> tuple[Stage, Stage]:
    """(to_features, to_logits): the model cut after its last layer with a spatial output.

    A nested model whose own output is flat but that holds spatial layers (a backbone ending in
    pooling, a head starting with convolutions) is cut inside, recursively. Around a nested model
    the outer model must be a plain chain of layers, as ours are.
    """
    layers = _layers(model)
    for index in reversed(range(len(layers))):
        layer = layers[index]
        if _holds_feature_map(layer) and not _is_spatial(layer.output):
            inner_features, inner_logits = split_at_last_feature_map(layer)
            return _chain([*layers[:index], inner_features]), _chain([inner_logits, *layers[index + 1 :]])
        if _is_spatial(layer.output):
            return _graph_cut(model, layers, index)
    raise ModelDirectoryError(f"model {model.name} has no spatial feature map to explain")


def _graph_cut(model: keras.Model, layers: list[keras.Layer], index: int) -> tuple[Stage, Stage]:
    """Cut a functional graph at one layer's output (residual connections allowed); a chain whose
    layers are sub-models has no such tensor of its own, and is cut by running its layers in turn."""
    import keras

    layer = layers[index]
    try:
        before = keras.Model(model.inputs, layer.output)
        after = _chain([]) if layer.output is model.outputs[0] else keras.Model(layer.output, model.outputs)
    except ValueError:
        return _chain(layers[: index + 1]), _chain(layers[index + 1 :])
    return before, after


def _chain(stages: list) -> Stage:
    def run(tensor: object) -> object:
        for stage in stages:
            tensor = stage(tensor)
        return tensor

    return run


def heatmap(features: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM from one feature map (h, w, c) and the class score's gradient: 0..1, (h, w)."""
    weights = gradients.mean(axis=(0, 1))
    cam = np.maximum((features * weights).sum(axis=-1), 0.0)
    peak = cam.max()
    return cam / peak if peak > 0 else cam


def colourise(cam: np.ndarray, size: int) -> Image.Image:
    """Blue (cold) → red (hot) RGBA, transparent where the model did not look."""
    resized = (
        np.asarray(
            Image.fromarray(np.uint8(cam * 255)).resize((size, size), Image.Resampling.BILINEAR),
            dtype=np.float32,
        )
        / 255.0
    )
    red = np.clip(2 * resized, 0, 1)
    blue = np.clip(2 * (1 - resized), 0, 1)
    green = 1 - np.abs(2 * resized - 1)
    alpha = OVERLAY_OPACITY * np.clip(resized * 1.5, 0, 1)
    rgba = np.stack([red, green, blue, alpha], axis=-1)
    return Image.fromarray(np.uint8(rgba * 255), mode="RGBA")


class GradCamExplainer:
    """A model directory's Keras model, loaded once, explaining one cell image at a time."""

    def __init__(self, model_dir: str | Path) -> None:
        import keras

        self.model_dir = Path(model_dir)
        self.card = read_card(self.model_dir)
        self.classes: list[str] = list(self.card["classes"])
        self.input_size = int(self.card["input_size"])
        self.localisation = LocalisationConfig(**self.card["preprocessing"]["cell_localisation"])
        model = keras.saving.load_model(verify_file(self.model_dir, self.card, KERAS_FILE), compile=False)
        self._to_features, self._to_logits = split_at_last_feature_map(model)
        self._lock = threading.Lock()

    def crop(self, image: bytes | Image.Image) -> Image.Image:
        """The region the classifier sees (same localisation and size as serving)."""
        return crop_cell(decode_image(image, 0), self.localisation, self.input_size)

    def cam(self, crop: Image.Image, class_name: str) -> np.ndarray:
        import tensorflow as tf

        pixels = tf.constant(np.asarray(crop, dtype=np.float32)[None])
        with self._lock, tf.GradientTape() as tape:
            features = self._to_features(pixels)
            tape.watch(features)
            score = self._to_logits(features)[:, self.classes.index(class_name)]
        gradients = tape.gradient(score, features)
        return heatmap(np.asarray(features)[0], np.asarray(gradients)[0])

    def overlay_png(self, image: bytes | Image.Image, *, class_name: str) -> bytes:
        """The cell crop, enlarged, with the class's heatmap blended over it, as PNG bytes."""
        crop = self.crop(image)
        base = crop.resize((OVERLAY_SIZE, OVERLAY_SIZE), Image.Resampling.BICUBIC).convert("RGBA")
        composite = Image.alpha_composite(base, colourise(self.cam(crop, class_name), OVERLAY_SIZE))
        buffer = io.BytesIO()
        composite.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()
