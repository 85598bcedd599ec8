"""A slide becomes *ready for review* when the last of its classification jobs finishes, audited
as the worker's status change; a slide a pathologist already started, or one with a job still
running, keeps its status."""

import pytest

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from cases.services import slide_status_change
from classifier import services, tasks
from tests.factories import stained_cell_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", lambda *args: None)


@pytest.fixture
def submitted_job(slide_with_cells, lab_staff, model_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.slide_submit(actor=lab_staff, slide=slide_with_cells)


def _status_events() -> list[tuple[str, dict, dict]]:
    events = AuditEvent.objects.filter(action=AuditAction.SLIDE_STATUS_CHANGED).order_by("id")
    return [(event.actor_username, event.before, event.after) for event in events]


def test_the_finished_job_makes_the_slide_ready_for_review_audited_by_the_worker(submitted_job):
    services.inference_job_run(job_id=submitted_job.pk)

    slide = submitted_job.slide
    slide.refresh_from_db()
    assert slide.status == SlideStatus.READY_FOR_REVIEW
    assert _status_events()[-1] == (
        "inference-worker",
        {"status": "submitted"},
        {"status": "ready_for_review"},
    )


def test_a_slide_waits_for_its_last_job(
    submitted_job, add_cell_image, lab_staff, django_capture_on_commit_callbacks
):
    slide = submitted_job.slide
    add_cell_image(slide, stained_cell_bytes(91), name="late.png")
    with django_capture_on_commit_callbacks(execute=True):
        later = services.slide_new_images_classify(actor=lab_staff, slide=slide)

    services.inference_job_run(job_id=submitted_job.pk)
    slide.refresh_from_db()
    assert slide.status == SlideStatus.SUBMITTED
    services.inference_job_run(job_id=later.pk)
    slide.refresh_from_db()
    assert slide.status == SlideStatus.READY_FOR_REVIEW


def test_a_slide_already_in_review_stays_in_review(submitted_job, pathologist):
    slide_status_change(actor=pathologist, slide=submitted_job.slide, to_status=SlideStatus.IN_REVIEW)

    services.inference_job_run(job_id=submitted_job.pk)

    submitted_job.slide.refresh_from_db()
    assert submitted_job.slide.status == SlideStatus.IN_REVIEW
    assert [event[2] for event in _status_events()][-1] == {"status": "in_review"}


def test_new_images_of_a_ready_slide_are_classified(submitted_job, add_cell_image, lab_staff):
    services.inference_job_run(job_id=submitted_job.pk)
    add_cell_image(submitted_job.slide, stained_cell_bytes(92), name="later.png")

    job = services.slide_new_images_classify(actor=lab_staff, slide=submitted_job.slide)

    assert job is not None and job.total == 1
