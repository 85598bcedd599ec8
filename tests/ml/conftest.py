"""Fixtures for the ml tier: synthetic cell images and a tiny model directory (no database)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.testing import CLASSES, make_tiny_model_dir

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def synthetic_cell(centre: tuple[int, int], radius: int, size: tuple[int, int] = (120, 90)) -> Image.Image:
    """Pale pink field with one blue-violet disc standing in for a stained nucleus."""
    width, height = size
    ys, xs = np.mgrid[:height, :width]
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = (225, 195, 200)
    inside = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2
    pixels[inside] = (110, 60, 170)
    return Image.fromarray(pixels)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def class_folder_dataset(tmp_path) -> Path:
    """Two images per class (mixed-case folder names and formats) plus one corrupt file."""
    root = tmp_path / "cells"
    for index, name in enumerate(CLASSES):
        folder = root / (name.lower() if index % 2 else name)
        folder.mkdir(parents=True)
        synthetic_cell((40 + 10 * index, 45), 15).save(folder / "a.png")
        synthetic_cell((60, 30 + 5 * index), 12).save(folder / "b.jpg")
    (root / CLASSES[0] / "broken.jpeg").write_bytes(b"not a jpeg")
    return root


def requires_shared(*parts: str) -> pytest.MarkDecorator:
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available")
