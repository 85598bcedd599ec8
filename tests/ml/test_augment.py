import numpy as np

from ml.augment import AugmentConfig, augmented_pixels, colour_view, jitter_stains
from ml.cells import LocalisationConfig
from tests.ml.conftest import synthetic_cell


def test_augmented_view_has_model_input_shape_and_pixel_range():
    rng = np.random.default_rng(0)
    view = augmented_pixels(synthetic_cell((60, 45), 15), LocalisationConfig(), 48, AugmentConfig(), rng)
    assert view.shape == (48, 48, 3)
    assert view.dtype == np.float32
    assert view.min() >= 0 and view.max() <= 255


def test_views_are_reproducible_per_seed_and_differ_across_draws():
    image = synthetic_cell((60, 45), 15)
    first = augmented_pixels(image, LocalisationConfig(), 32, AugmentConfig(), np.random.default_rng(1))
    again = augmented_pixels(image, LocalisationConfig(), 32, AugmentConfig(), np.random.default_rng(1))
    other = augmented_pixels(image, LocalisationConfig(), 32, AugmentConfig(), np.random.default_rng(2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_colour_view_keeps_grey_pixels_grey_when_only_hue_changes():
    config = AugmentConfig(saturation=0, brightness=0, contrast=0, channel_gain=0, grayscale_probability=0)
    grey = np.full((4, 4, 3), 128.0, np.float32)
    out = colour_view(grey, config, np.random.default_rng(0))
    assert np.allclose(out, 128.0, atol=0.5)


def test_stain_deconvolution_round_trip_is_identity_without_jitter():
    rgb = np.random.default_rng(0).uniform(0.05, 1.0, (8, 8, 3))
    assert np.allclose(jitter_stains(rgb, 0.0, np.random.default_rng(1)), rgb, atol=1e-6)


def test_stain_jitter_changes_stained_pixels():
    config = AugmentConfig(
        hue_shift=0,
        saturation=0,
        brightness=0,
        contrast=0,
        channel_gain=0,
        grayscale_probability=0,
        stain_jitter=0.3,
    )
    nucleus = np.full((4, 4, 3), (110.0, 60.0, 170.0), np.float32)
    assert not np.allclose(colour_view(nucleus, config, np.random.default_rng(0)), nucleus, atol=2)
