import numpy as np
from PIL import Image

from ml.cells import LocalisationConfig, crop_cell, locate_cell, otsu_threshold
from tests.ml.conftest import synthetic_cell


def test_it_finds_the_stained_nucleus_centre():
    image = synthetic_cell(centre=(80, 30), radius=10)
    centre_x, centre_y, side = locate_cell(np.asarray(image), LocalisationConfig())
    assert abs(centre_x * 120 - 80) <= 2
    assert abs(centre_y * 90 - 30) <= 2
    assert 0.3 <= side <= 1.0


def test_it_returns_none_without_stain():
    blank = np.full((60, 80, 3), (225, 195, 200), np.uint8)
    assert locate_cell(blank, LocalisationConfig()) is None


def test_crop_is_square_of_requested_size_and_centred_on_the_cell():
    crop = np.asarray(crop_cell(synthetic_cell(centre=(30, 60), radius=12), LocalisationConfig(), 64))
    assert crop.shape == (64, 64, 3)
    blue_minus_green = crop[..., 2].astype(int) - crop[..., 1]
    ys, xs = np.nonzero(blue_minus_green > 60)
    assert abs(xs.mean() - 32) < 4 and abs(ys.mean() - 32) < 4


def test_method_none_resizes_the_whole_image():
    image = Image.new("RGB", (100, 50), (10, 20, 30))
    assert crop_cell(image, LocalisationConfig(method="none"), 32).size == (32, 32)


def test_otsu_splits_two_clusters():
    values = np.concatenate([np.full(100, 10), np.full(100, 90)])
    assert 10 <= otsu_threshold(values) < 90
