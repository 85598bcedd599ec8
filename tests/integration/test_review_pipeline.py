"""Pathologist review with real parts: a worker classifies the slide and computes a Grad-CAM on
request (real model once committed), the pathologist verifies and signs, the FHIR report validates."""

import time
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from cases.models import SlideStatus
from cases.services import cell_image_create, patient_create, slide_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import GradCam, GradCamStatus, InferenceJob, Prediction
from classifier.services import slide_submit
from devtools.benchmark import shared_test_images
from review.services import prediction_review, slide_bulk_confirm, slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = 120


def _wait_until(condition: Callable[[], bool], seconds: float = SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached within {seconds}s")


def test_a_classified_slide_is_verified_explained_signed_and_reported(lab_staff, pathologist, make_worker):
    worker = make_worker()
    patient = patient_create(
        actor=lab_staff, mrn="INT-R-1", family_name="Review", given_name="Integration",
        date_of_birth=timezone.now().date().replace(year=1970), sex="unknown",
    )  # fmt: skip
    slide = slide_create(
        actor=lab_staff,
        patient=patient,
        accession_number="INT-R-S1",
        collected_at=timezone.now(),
        stain="wright",
    )
    for path in shared_test_images(8):
        image = image_validate(
            data=path.read_bytes(), original_filename=path.name, limits=UploadLimits.from_settings()
        )
        cell_image_create(actor=lab_staff, slide=slide, image=image)
    job = slide_submit(actor=lab_staff, slide=slide)
    _wait_until(lambda: InferenceJob.objects.get(pk=job.pk).is_finished)

    client = Client()
    client.force_login(pathologist)
    prediction = Prediction.objects.filter(cell_image__slide=slide).order_by("confidence").first()
    requested = client.post(reverse("review:prediction_gradcam_request", args=[prediction.pk]))
    assert requested.status_code == 202
    _wait_until(lambda: GradCam.objects.get(prediction=prediction).status != GradCamStatus.QUEUED)
    gradcam = GradCam.objects.get(prediction=prediction)
    assert gradcam.status == GradCamStatus.SUCCEEDED, f"{gradcam.error}\n{worker.log_tail()}"
    overlay = client.get(reverse("review:prediction_gradcam", args=[prediction.pk]))
    assert overlay["Content-Type"] == "image/png"
    assert b"".join(overlay.streaming_content).startswith(b"\x89PNG")

    summary = slide_bulk_confirm(actor=pathologist, slide=slide)
    for unreviewed in Prediction.objects.filter(cell_image__slide=slide, reviews__isnull=True):
        prediction_review(actor=pathologist, prediction=unreviewed, label=unreviewed.label)
    signature = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    slide.refresh_from_db()
    assert slide.status == SlideStatus.SIGNED
    assert summary.confirmed_total + summary.below_threshold == 8
    assert signature.differential["total"] == 8
    report = client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})
    bundle = Bundle.model_validate_json(report.content)
    assert sum(entry.resource.get_resource_type() == "Observation" for entry in bundle.entry) == 4
