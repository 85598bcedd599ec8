"""Fixtures for the inference pipeline: a tiny real model, a slide with cell images.

``model_version`` here is the tiny real model, registered (``tiny_model_version`` of
tests/conftest.py); tests/review's ``model_version`` is a row with no model behind it.
"""

from collections.abc import Callable

import pytest

from accounts.models import User
from cases.models import CellImage, Patient, Slide
from classifier.adapter import explainer_cache_clear, predictor_cache_clear
from classifier.models import ModelVersion
from tests.factories import cell_image_make, patient_make, slide_make, stained_cell_bytes


@pytest.fixture(autouse=True)
def _fresh_model_caches():
    predictor_cache_clear()
    explainer_cache_clear()
    yield
    predictor_cache_clear()
    explainer_cache_clear()


@pytest.fixture
def model_version(tiny_model_version) -> ModelVersion:
    return tiny_model_version


@pytest.fixture
def patient(lab_staff) -> Patient:
    return patient_make(lab_staff, "MRN-4001")


@pytest.fixture
def slide(patient, lab_staff) -> Slide:
    return slide_make(patient, lab_staff, "S-4001")


@pytest.fixture
def add_cell_image(lab_staff) -> Callable[..., CellImage]:
    def add(slide: Slide, data: bytes, name: str = "cell.png", actor: User | None = None) -> CellImage:
        return cell_image_make(slide, actor or lab_staff, data, name)

    return add


@pytest.fixture
def slide_with_cells(slide, add_cell_image) -> Slide:
    for seed in range(5):
        add_cell_image(slide, stained_cell_bytes(seed), name=f"cell-{seed}.png")
    return slide
