"""Grad-CAM on the review screen: requested by a view, computed by the worker task, stored, served."""

import pytest
from django.urls import reverse

from cases.models import SlideStatus
from classifier.gradcam import gradcam_compute, gradcam_request
from classifier.models import CellClass, GradCam, GradCamStatus
from tests.factories import cell_image_make, distinct_png, prediction_make, slide_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def prediction(patient, lab_staff, model_version):
    """A prediction of the tiny real model, on a submitted slide a pathologist may review."""
    slide = slide_make(patient, lab_staff, "S-4002", status=SlideStatus.SUBMITTED)
    cell_image = cell_image_make(slide, lab_staff, distinct_png(1), name="cell-1.png")
    return prediction_make(cell_image, model_version, CellClass.NEUTROPHIL, 0.6)


@pytest.fixture
def queued_tasks(monkeypatch) -> list[int]:
    from classifier.tasks import gradcam_compute_task

    queued: list[int] = []
    monkeypatch.setattr(gradcam_compute_task, "delay", queued.append)
    return queued


def test_requesting_queues_one_computation_after_commit(
    prediction, queued_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = gradcam_request(prediction=prediction)
        second = gradcam_request(prediction=prediction)

    assert first == second and first.status == GradCamStatus.QUEUED
    assert queued_tasks == [first.pk]


def test_the_worker_stores_the_overlay_and_the_view_serves_it(
    pathologist_client, prediction, queued_tasks, django_capture_on_commit_callbacks
):
    url = reverse("review:prediction_gradcam", args=[prediction.pk])
    assert pathologist_client.get(url).json() == {"status": "absent", "error": ""}
    with django_capture_on_commit_callbacks(execute=True):
        requested = pathologist_client.post(
            reverse("review:prediction_gradcam_request", args=[prediction.pk])
        )
    assert requested.status_code == 202 and pathologist_client.get(url).json()["status"] == "queued"

    gradcam = gradcam_compute(gradcam_id=queued_tasks[0])
    again = gradcam_compute(gradcam_id=queued_tasks[0])

    assert gradcam.status == GradCamStatus.SUCCEEDED and again.image.name == gradcam.image.name
    response = pathologist_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_a_failed_computation_is_recorded_and_can_be_requested_again(
    prediction, queued_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        gradcam = gradcam_request(prediction=prediction)
    prediction.cell_image.file.storage.delete(prediction.cell_image.file.name)

    failed = gradcam_compute(gradcam_id=gradcam.pk)
    with django_capture_on_commit_callbacks(execute=True):
        retried = gradcam_request(prediction=prediction)

    assert failed.status == GradCamStatus.FAILED and "FileNotFoundError" in failed.error
    assert retried.status == GradCamStatus.QUEUED and queued_tasks == [gradcam.pk, gradcam.pk]
    assert GradCam.objects.count() == 1


def test_administrators_cannot_see_grad_cam(administrator_client, prediction):
    response = administrator_client.get(reverse("review:prediction_gradcam", args=[prediction.pk]))

    assert response.status_code == 403
