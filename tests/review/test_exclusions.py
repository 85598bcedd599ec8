"""Cells that do not count: exclusions from the differential, cells the model could not classify,
classification retries, and what sign-off says while such cells are unresolved."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Slide, SlideStatus
from cases.services import SlideLockedError
from classifier.models import CellClass, InferenceJobStatus, PredictionFailure
from review.exports import ExportScope, export_rows
from review.models import CellExclusion, Review
from review.selectors import slide_differential, slide_review_progress
from review.services import (
    ReviewError,
    cell_image_exclude,
    cell_image_include,
    prediction_review,
    slide_bulk_confirm,
    slide_classification_retry,
    slide_sign,
)
from tests.conftest import PASSWORD
from tests.factories import cell_image_make, distinct_png, inference_job_make, reauth_request, reviews_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_cell(lab_staff, slide, model_version) -> CellImage:
    """A cell whose classification failed (e.g. its file could not be decoded after upload)."""
    cell_image = cell_image_make(slide, lab_staff, distinct_png(777), name="smeared.png")
    job = inference_job_make(
        slide,
        model_version,
        lab_staff,
        cell_images=[cell_image],
        status=InferenceJobStatus.PARTIALLY_FAILED,
        total=1,
        failed=1,
    )
    PredictionFailure.objects.create(
        cell_image=cell_image,
        model_version=model_version,
        job=job,
        reason="image could not be decoded: truncated",
    )
    return cell_image


@pytest.fixture
def all_reviewed(pathologist, predictions):
    reviews_make(predictions, pathologist)
    return predictions


def exclude(
    pathologist, cell_image: CellImage, reason: str = "Smudge cell, nucleus not intact"
) -> CellExclusion:
    return cell_image_exclude(actor=pathologist, cell_image=cell_image, category="smudge", reason=reason)


# --- Services ---------------------------------------------------------------------------------------------


def test_a_failed_cell_blocks_sign_off_until_it_is_excluded(pathologist, slide, all_reviewed, failed_cell):
    with pytest.raises(ReviewError, match="1 of 6 cells was unreadable for the model; retry"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )

    exclusion = cell_image_exclude(
        actor=pathologist, cell_image=failed_cell, category="unreadable", reason="Image truncated at upload"
    )
    signature = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    assert (exclusion.excluded, exclusion.category, exclusion.decided_by) == (True, "unreadable", pathologist)
    [event] = AuditEvent.objects.filter(action=AuditAction.CELL_EXCLUDED)
    assert (event.actor, event.object_id, event.reason, event.before) == (
        pathologist,
        str(exclusion.pk),
        "Image truncated at upload",
        None,
    )
    assert event.after == {
        "slide_id": slide.pk,
        "cell_image_id": failed_cell.pk,
        "excluded": True,
        "category": "unreadable",
    }
    assert signature.differential["total"] == 5 and signature.differential["excluded"] == 1


@pytest.mark.parametrize(
    ("category", "reason", "message"), [("smudge", "   ", "needs a reason"), ("dust", "x", "Unknown")]
)
def test_an_exclusion_needs_a_known_category_and_a_reason(
    pathologist, failed_cell, category, reason, message
):
    with pytest.raises(ReviewError, match=message):
        cell_image_exclude(actor=pathologist, cell_image=failed_cell, category=category, reason=reason)

    assert not CellExclusion.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CELL_EXCLUDED).exists()


def test_lab_staff_cannot_exclude_or_retry(lab_staff, slide, failed_cell):
    with pytest.raises(PermissionDenied):
        exclude(lab_staff, failed_cell)
    with pytest.raises(PermissionDenied):
        slide_classification_retry(actor=lab_staff, slide=slide)
    assert not CellExclusion.objects.exists()


def test_exclusions_cannot_be_changed_or_deleted(pathologist, failed_cell):
    exclusion = exclude(pathologist, failed_cell)

    with pytest.raises(PermissionError):
        exclusion.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        CellExclusion.objects.filter(pk=exclusion.pk).update(reason="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        CellExclusion.objects.filter(pk=exclusion.pk).delete()
    assert CellExclusion.objects.get().reason == "Smudge cell, nucleus not intact"


def test_an_excluded_classified_cell_counts_nowhere_and_takes_no_review(pathologist, slide, predictions):
    smudge = predictions[3]  # the monocyte at 0.55
    exclude(pathologist, smudge.cell_image)

    with pytest.raises(ReviewError, match="excluded"):
        prediction_review(actor=pathologist, prediction=smudge, label=CellClass.LYMPHOCYTE, reason="x")
    summary = slide_bulk_confirm(actor=pathologist, slide=slide)
    differential = slide_differential(slide=slide)

    assert summary.below_threshold == 1, "only the eosinophil at 0.72 is left for one-by-one review"
    assert not Review.objects.filter(prediction=smudge).exists()
    assert (differential.predicted_total, differential.verified_total, differential.excluded) == (4, 3, 1)
    monocytes = next(row for row in differential.rows if row.label == CellClass.MONOCYTE)
    assert monocytes.predicted_count == 0


def test_withdrawing_an_exclusion_supersedes_it_and_the_cell_needs_its_review_again(
    pathologist, slide, all_reviewed
):
    cell_image = all_reviewed[0].cell_image
    first = exclude(pathologist, cell_image)
    assert slide_review_progress(slide=slide).excluded == 1

    with pytest.raises(ReviewError, match="already excluded"):
        exclude(pathologist, cell_image)
    second = cell_image_include(
        actor=pathologist, cell_image=cell_image, reason="Intact after all on the raw image"
    )

    assert (second.excluded, second.supersedes) == (False, first)
    progress = slide_review_progress(slide=slide)
    assert (progress.excluded, progress.reviewed, progress.complete) == (0, 5, True)
    [event] = AuditEvent.objects.filter(action=AuditAction.CELL_INCLUDED)
    assert event.before == {"excluded": True, "category": "smudge", "exclusion_id": first.pk}
    with pytest.raises(ReviewError, match="not excluded"):
        cell_image_include(actor=pathologist, cell_image=cell_image, reason="again")


def test_a_signed_slide_takes_no_exclusion(pathologist, slide, all_reviewed):
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    with pytest.raises(SlideLockedError):
        exclude(pathologist, all_reviewed[0].cell_image)
    assert not CellExclusion.objects.exists()


def test_the_first_exclusion_starts_the_review_of_a_submitted_slide(pathologist, slide, failed_cell):
    exclude(pathologist, failed_cell)

    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW


def test_a_slide_whose_every_cell_is_excluded_cannot_be_signed(pathologist, slide, failed_cell):
    exclude(pathologist, failed_cell)

    with pytest.raises(ReviewError, match="Every cell is excluded"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )


def test_progress_names_each_kind_of_unresolved_cell(
    pathologist, lab_staff, slide, model_version, all_reviewed, failed_cell
):
    queued = cell_image_make(slide, lab_staff, distinct_png(778), name="q.png")
    inference_job_make(slide, model_version, lab_staff, cell_images=[queued], total=1)
    cell_image_make(slide, lab_staff, distinct_png(779), name="n.png")

    progress = slide_review_progress(slide=slide)

    assert (
        progress.cells,
        progress.reviewed,
        progress.classifying,
        progress.failed,
        progress.unclassified,
    ) == (
        8,
        5,
        1,
        1,
        1,
    )
    assert progress.blockers() == [
        "1 of 8 cells is still being classified; wait for the job.",
        "1 of 8 cells was unreadable for the model; retry the classification or exclude them from the "
        "differential with a reason.",
        "1 of 8 cells has no classification (its job failed or no model was active); retry the "
        "classification or exclude them.",
    ]


def test_a_retry_queues_only_unresolved_cells_that_are_not_excluded(
    pathologist, slide, all_reviewed, failed_cell, django_capture_on_commit_callbacks, monkeypatch
):
    from classifier import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        job = slide_classification_retry(actor=pathologist, slide=slide)

    assert list(job.cell_images.all()) == [failed_cell] and sent == [job.pk]
    assert slide_review_progress(slide=slide).classifying == 1
    with pytest.raises(ReviewError, match="No cell"):
        slide_classification_retry(actor=pathologist, slide=slide)


# --- Pages, API, exports ----------------------------------------------------------------------------------


def test_the_review_screen_lists_the_failed_cell_and_the_exclude_form_resolves_it(
    pathologist_client, slide, all_reviewed, failed_cell
):
    page = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))
    response = pathologist_client.post(
        reverse("review:cell_image_exclude", args=[failed_cell.pk]),
        {"category": "unreadable", "reason": "Truncated file"},
    )
    after = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))

    assert f'id="unresolved-{failed_cell.pk}"' in page.content.decode()
    assert "image could not be decoded: truncated" in page.content.decode()
    assert "Retry classification of 1 cell" in page.content.decode()
    assert response.status_code == 302 and response["Location"].endswith("#unresolved")
    assert CellExclusion.objects.get().reason == "Truncated file"
    assert "Excluded: Unreadable image" in after.content.decode()
    assert "5 of 5 cells reviewed · 1 excluded" in after.content.decode()


def test_the_exclude_form_without_a_reason_changes_nothing(pathologist_client, slide, failed_cell):
    response = pathologist_client.post(
        reverse("review:cell_image_exclude", args=[failed_cell.pk]), {"category": "unreadable", "reason": ""}
    )

    assert response.status_code == 302
    assert not CellExclusion.objects.exists()


def test_the_sign_page_says_why_it_is_refused(pathologist_client, slide, all_reviewed, failed_cell):
    response = pathologist_client.post(
        reverse("review:slide_sign", args=[slide.pk]), {"password": PASSWORD, "acknowledge_count": "on"}
    )

    assert response.status_code == 400
    assert "unreadable for the model" in response.content.decode()
    assert Slide.objects.get(pk=slide.pk).status == SlideStatus.IN_REVIEW


def test_the_api_excludes_and_includes_again(pathologist, lab_staff, failed_cell):
    client = APIClient()
    client.force_authenticate(pathologist)
    url = reverse("api:cell-image-exclusion", args=[failed_cell.pk])

    no_category = client.post(url, {"reason": "x"}, format="json")
    excluded = client.post(url, {"category": "artefact", "reason": "Stain precipitate"}, format="json")
    included = client.post(url, {"excluded": False, "reason": "Re-scanned"}, format="json")
    client.force_authenticate(lab_staff)
    refused = client.post(url, {"category": "artefact", "reason": "x"}, format="json")

    assert no_category.status_code == 400
    assert excluded.status_code == 201 and excluded.json()["excluded"] is True
    assert included.status_code == 201 and included.json()["supersedes"] == excluded.json()["id"]
    assert refused.status_code == 403
    assert list(CellExclusion.objects.order_by("id").values_list("excluded", flat=True)) == [True, False]


def test_exports_show_failures_and_exclusions(pathologist, slide, predictions, failed_cell):
    exclude(pathologist, predictions[0].cell_image)

    rows = {
        row["cell_image_id"]: row for row in export_rows(user=pathologist, scope=ExportScope(slide=slide))
    }

    excluded = rows[predictions[0].cell_image_id]
    assert (excluded["excluded"], excluded["exclusion_category"], excluded["excluded_by"]) == (
        True,
        "smudge",
        "patho",
    )
    assert excluded["predicted_label"] == CellClass.NEUTROPHIL, "the prediction stays visible"
    failed = rows[failed_cell.pk]
    assert (failed["predicted_label"], failed["excluded"]) == (None, False)
    assert failed["classification_failure"] == "image could not be decoded: truncated"
    assert rows[predictions[1].cell_image_id]["classification_failure"] is None


def test_the_review_screen_data_carries_the_exclusion(pathologist, pathologist_client, slide, predictions):
    exclude(pathologist, predictions[3].cell_image)

    page = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))

    data = json.loads(json.dumps(page.context["review_data"]))  # as the page's script receives it
    cell = next(cell for cell in data["cells"] if cell["id"] == predictions[3].pk)
    assert cell["excluded"] is True and cell["exclusions"][0]["category_name"] == "Smudge cell"
    assert data["progress"]["summary"] == "0 of 4 cells reviewed · 1 excluded"
    assert data["cells"][data["start"]]["excluded"] is False, "the screen starts on a cell that needs review"
