"""Grad-CAM: the heatmap formula, the cut at the last feature map of nested models, the overlay."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.card import ModelDirectoryError
from ml.gradcam import GradCamExplainer, colourise, heatmap, split_at_last_feature_map
from tests.ml.conftest import synthetic_cell


def test_heatmap_weights_each_channel_by_its_mean_gradient_and_keeps_positive_evidence():
    features = np.zeros((2, 2, 2), np.float32)
    features[0, 0] = (1.0, 0.0)  # channel 0 fires top-left
    features[1, 1] = (0.0, 1.0)  # channel 1 fires bottom-right
    gradients = np.stack([np.full((2, 2), 2.0), np.full((2, 2), -1.0)], axis=-1)

    cam = heatmap(features, gradients)

    assert cam[0, 0] == 1.0  # the channel that raises the class score
    assert cam[1, 1] == 0.0  # negative evidence is clipped
    assert cam.max() == 1.0 and cam.min() == 0.0


def test_heatmap_of_a_flat_map_is_all_zero_not_nan():
    cam = heatmap(np.zeros((3, 3, 4), np.float32), np.ones((3, 3, 4), np.float32))

    assert not np.isnan(cam).any() and cam.max() == 0.0


def test_colourise_makes_cold_regions_transparent():
    overlay = np.asarray(colourise(np.array([[0.0, 1.0]]), 4))

    assert overlay.shape == (4, 4, 4)
    assert overlay[0, 0, 3] == 0 and overlay[0, 3, 3] > 0
    assert overlay[0, 3, 0] > overlay[0, 3, 2]  # hot is red, not blue


def _nested_model(pooled_backbone: bool):
    """The served model's shape (scaling → lower → head), small: with the backbone cut inside
    (the head holds the upper convolutions) or whole (the backbone ends in pooling)."""
    import keras

    from ml.model import build_full_model, build_head

    inputs = keras.Input((16, 16, 3))
    first = keras.layers.Conv2D(4, 3, padding="same", name="first")(inputs)
    last = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="last")(first)
    if pooled_backbone:
        lower = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(last), name="lower")
        head = build_head((6,), None, 4, 0.0)
    else:
        lower = keras.Model(inputs, first, name="lower")
        upper = keras.Model(first, last, name="upper")
        head = build_head((16, 16, 4), upper, 4, 0.0)
    return build_full_model(16, lower, head)


@pytest.mark.parametrize("pooled_backbone", [False, True])
def test_the_cut_is_at_the_last_convolution_and_reproduces_the_logits(tmp_path, pooled_backbone):
    import keras

    _nested_model(pooled_backbone).save(tmp_path / "model.keras")
    model = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)

    to_features, to_logits = split_at_last_feature_map(model)
    features = to_features(pixels)

    assert tuple(features.shape) == (2, 16, 16, 6)  # the "last" convolution's output
    np.testing.assert_allclose(np.asarray(to_logits(features)), np.asarray(model(pixels)), atol=1e-4)


def test_a_model_without_a_spatial_layer_cannot_be_explained():
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))

    with pytest.raises(ModelDirectoryError, match="no spatial feature map"):
        split_at_last_feature_map(model)


def test_overlay_of_the_tiny_model_is_a_png_of_the_cell_crop(tiny_model_dir):
    explainer = GradCamExplainer(tiny_model_dir)
    buffer = io.BytesIO()
    synthetic_cell((60, 45), 18).save(buffer, format="PNG")

    png = explainer.overlay_png(buffer.getvalue(), class_name="NEUTROPHIL")
    cam = explainer.cam(explainer.crop(buffer.getvalue()), "EOSINOPHIL")

    assert Image.open(io.BytesIO(png)).size == (256, 256)
    assert cam.ndim == 2 and 0.0 <= cam.min() <= cam.max() <= 1.0
