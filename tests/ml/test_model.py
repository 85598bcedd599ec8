import numpy as np

from ml.model import DOMAIN_LAYERS, build_full_model, build_head, with_features
from ml.testing import TINY_FEATURES, build_tiny_classifier


def pixels(count: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def test_features_of_a_model_without_domain_layers_are_the_input_of_its_final_dense():
    model = build_tiny_classifier(32, 4, seed=0)
    outputs = with_features(model)(pixels(3, 32))
    penultimate = model.layers[-1].input
    import keras

    expected = keras.Model(model.input, penultimate)(pixels(3, 32))
    assert outputs["features"].shape == (3, TINY_FEATURES)
    np.testing.assert_allclose(outputs["features"], expected, rtol=1e-6)
    np.testing.assert_allclose(outputs["logits"], model(pixels(3, 32)), rtol=1e-6)


def test_the_serving_model_gives_channel_statistics_of_its_domain_layers_and_the_same_logits():
    import keras

    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None)
    lower = keras.Model(base.input, base.get_layer("block_2_add").output, name="lower")
    upper = keras.Model(base.get_layer("block_2_add").output, base.output, name="upper")
    head = build_head(tuple(lower.output.shape[1:]), upper, classes=4, dropout=0.2)
    model = build_full_model(32, lower, head)
    outputs = with_features(model)(pixels(2, 32))
    widths = [2 * base.get_layer(name).output.shape[-1] for name in DOMAIN_LAYERS]
    assert outputs["features"].shape == (2, sum(widths))
    np.testing.assert_allclose(outputs["logits"], model(pixels(2, 32)), rtol=1e-5, atol=1e-6)
    activations = keras.Model(base.input, base.get_layer("block_2_add").output)(pixels(2, 32) / 127.5 - 1)
    np.testing.assert_allclose(outputs["features"][:, :24], np.mean(activations, axis=(1, 2)), atol=1e-5)
