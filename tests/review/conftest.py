"""Fixtures for pathologist review: a submitted slide whose cells already have predictions, inside
the model's validated domain (the slide has an in-domain verdict once it has a prediction).

Predictions are written directly (no model run), so these tests take milliseconds: ``model_version``
here is a row with no model behind it (tests/classifier's ``model_version`` is the tiny real model,
``tiny_model_version`` of tests/conftest.py, for the few review tests that run it).
"""

import datetime
from collections.abc import Callable

import pytest
from django.utils import timezone

from cases.models import CellImage, Patient, Slide, SlideStatus
from classifier.models import CellClass, ModelVersion, Prediction, SlideDomainAssessment
from tests.factories import (
    cell_image_make,
    distinct_png,
    model_version_make,
    patient_make,
    prediction_make,
    slide_domain_assessment_make,
    slide_make,
)

REVIEW_THRESHOLD = 0.9


@pytest.fixture
def patient(lab_staff) -> Patient:
    return patient_make(lab_staff, "MRN-5001")


@pytest.fixture
def model_version(db) -> ModelVersion:
    return model_version_make("review-test", review_threshold=REVIEW_THRESHOLD, is_active=True)


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
        if cell_image is None:
            index = next(counter) + slide.pk * 1000
            cell_image = cell_image_make(slide, lab_staff, distinct_png(index), name=f"cell-{index}.png")
        prediction = prediction_make(cell_image, version or model_version, label, confidence)
        if not SlideDomainAssessment.objects.filter(
            slide=slide, model_version=prediction.model_version
        ).exists():
            slide_domain_assessment_make(slide, prediction.job)
        return prediction

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


@pytest.fixture
def make_signed_slide(make_slide, add_prediction, pathologist) -> Callable[..., Slide]:
    """A slide of the patient whose cells (one per label, each confirmed as predicted) are signed
    by the pathologist, through the services."""
    from review.services import slide_sign
    from tests.conftest import PASSWORD
    from tests.factories import reauth_request, reviews_make

    def make(accession_number: str, labels: list[str], *, days_ago: int, comment: str = "") -> Slide:
        slide = make_slide(accession_number, timezone.now() - datetime.timedelta(days=days_ago))
        reviews_make([add_prediction(slide, label) for label in labels], pathologist)
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            comment=comment,
            count_acknowledged=True,
        )
        slide.refresh_from_db()
        return slide

    return make
