"""Fixtures for the inference pipeline: a tiny real model, a slide with cell images."""

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from accounts.models import User
from cases.models import CellImage, Patient, Slide
from cases.services import cell_image_create
from cases.uploads import UploadLimits, image_validate
from classifier.adapter import predictor_cache_clear
from classifier.models import ModelVersion
from classifier.services import model_version_register
from ml.testing import make_tiny_model_dir
from tests.factories import patient_make, slide_make


@pytest.fixture(scope="session")
def tiny_model_source(tmp_path_factory) -> Path:
    """Built once per test session (TensorFlow import plus about a second)."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model-source") / "tiny-test")


@pytest.fixture
def models_root(settings, tmp_path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    settings.HEMATOVISION_MODELS_ROOT = root
    return root


@pytest.fixture
def tiny_model_dir(models_root, tiny_model_source) -> Path:
    """A private copy, so a test may damage its files."""
    return Path(shutil.copytree(tiny_model_source, models_root / "tiny-test"))


@pytest.fixture(autouse=True)
def _fresh_predictor_cache():
    predictor_cache_clear()
    yield
    predictor_cache_clear()


@pytest.fixture
def model_version(db, tiny_model_dir) -> ModelVersion:
    return model_version_register(directory=tiny_model_dir)


def image_bytes(seed: int, size: int = 48, image_format: str = "PNG") -> bytes:
    """A small distinct image: a purple blob on a pale background, shifted by the seed."""
    image = Image.new("RGB", (size, size), (235, 220, 225))
    for x in range(size // 4, 3 * size // 4):
        for y in range(size // 4, 3 * size // 4):
            image.putpixel((x, y), (120 + seed % 100, 40, 160))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture
def patient(lab_staff) -> Patient:
    return patient_make(lab_staff, "MRN-4001")


@pytest.fixture
def slide(patient, lab_staff) -> Slide:
    return slide_make(patient, lab_staff, "S-4001")


@pytest.fixture
def add_cell_image(lab_staff) -> Callable[..., CellImage]:
    def add(slide: Slide, data: bytes, name: str = "cell.png", actor: User | None = None) -> CellImage:
        image = image_validate(data=data, original_filename=name, limits=UploadLimits.from_settings())
        return cell_image_create(actor=actor or lab_staff, slide=slide, image=image)

    return add


@pytest.fixture
def slide_with_cells(slide, add_cell_image) -> Slide:
    for seed in range(5):
        add_cell_image(slide, image_bytes(seed), name=f"cell-{seed}.png")
    return slide
