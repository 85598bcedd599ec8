"""Fixtures for pathologist review: a submitted slide whose cells already have predictions.

Predictions are written directly (no model run), so these tests take milliseconds; the Grad-CAM
tests use the tiny real model from ``ml.testing``.
"""

import datetime
from collections.abc import Callable

import pytest
from django.utils import timezone

from cases.models import CellImage, Patient, Slide, SlideStatus
from cases.services import cell_image_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import (
    PROBABILITY_FIELDS,
    CellClass,
    InferenceJob,
    InferenceJobStatus,
    ModelVersion,
    Prediction,
)
from tests.factories import distinct_png, patient_make, slide_make

REVIEW_THRESHOLD = 0.9


@pytest.fixture
def patient(lab_staff) -> Patient:
    return patient_make(lab_staff, "MRN-5001")


@pytest.fixture
def model_version(db) -> ModelVersion:
    return ModelVersion.objects.create(
        name="review-test",
        directory="review-test",
        sha256="0" * 64,
        file_hashes={},
        review_threshold=REVIEW_THRESHOLD,
        is_active=True,
    )


@pytest.fixture
def make_slide(patient, lab_staff) -> Callable[..., Slide]:
    def make(accession_number: str = "S-5001", collected_at: datetime.datetime | None = None) -> Slide:
        return slide_make(
            patient,
            lab_staff,
            accession_number,
            collected_at=collected_at or timezone.now() - datetime.timedelta(hours=2),
            status=SlideStatus.SUBMITTED,
        )

    return make


@pytest.fixture
def slide(make_slide) -> Slide:
    return make_slide()


def probabilities_for(label: str, confidence: float) -> dict[str, float]:
    rest = (1.0 - confidence) / 3
    return {field: confidence if name == label else rest for name, field in PROBABILITY_FIELDS.items()}


@pytest.fixture
def add_prediction(lab_staff, model_version) -> Callable[..., Prediction]:
    """A new cell image on the slide and the model's prediction for it."""
    counter = iter(range(1, 10_000))

    def add(
        slide: Slide,
        label: str = CellClass.NEUTROPHIL,
        confidence: float = 0.95,
        *,
        version: ModelVersion | None = None,
        cell_image: CellImage | None = None,
    ) -> Prediction:
        version = version or model_version
        if cell_image is None:
            index = next(counter) + slide.pk * 1000
            image = image_validate(
                data=distinct_png(index),
                original_filename=f"cell-{index}.png",
                limits=UploadLimits.from_settings(),
            )
            cell_image = cell_image_create(actor=lab_staff, slide=slide, image=image)
        job = InferenceJob.objects.create(
            slide=slide,
            model_version=version,
            requested_by=lab_staff,
            status=InferenceJobStatus.SUCCEEDED,
            total=1,
            done=1,
        )
        return Prediction.objects.create(
            cell_image=cell_image,
            model_version=version,
            job=job,
            label=label,
            confidence=confidence,
            inference_ms=1.0,
            **probabilities_for(label, confidence),
        )

    return add


@pytest.fixture
def predictions(slide, add_prediction) -> list[Prediction]:
    """Five cells: three confident (two neutrophils, one lymphocyte), two below the threshold."""
    return [
        add_prediction(slide, CellClass.NEUTROPHIL, 0.97),
        add_prediction(slide, CellClass.NEUTROPHIL, 0.93),
        add_prediction(slide, CellClass.LYMPHOCYTE, 0.91),
        add_prediction(slide, CellClass.MONOCYTE, 0.55),
        add_prediction(slide, CellClass.EOSINOPHIL, 0.72),
    ]
