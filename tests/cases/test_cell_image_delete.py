"""Deleting a wrongly uploaded image: with a reason, audited with what the image was, its file
removed from storage, and only before the slide is submitted for classification."""

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, SlideStatus
from cases.services import CellImageDeleteRefused, cell_image_delete
from tests.factories import cell_image_make, distinct_png, model_version_make, prediction_make, uploaded

pytestmark = pytest.mark.django_db


@pytest.fixture
def cell_image(slide, lab_staff) -> CellImage:
    return cell_image_make(slide, lab_staff, distinct_png(7), name="wrong-slide.png")


def stored(cell_image: CellImage, media_root: Path) -> Path:
    return media_root / cell_image.file.name


def test_deleting_removes_the_row_and_the_file_and_audits_what_it_was(
    lab_staff, cell_image, media_root, django_capture_on_commit_callbacks
):
    path = stored(cell_image, media_root)
    assert path.exists()

    with django_capture_on_commit_callbacks(execute=True):
        cell_image_delete(actor=lab_staff, cell_image=cell_image, reason=" Uploaded to the wrong slide ")

    assert not CellImage.objects.filter(pk=cell_image.pk).exists()
    assert not path.exists()
    event = AuditEvent.objects.get(action=AuditAction.CELL_IMAGE_DELETED)
    assert (event.object_type, event.object_id, event.actor, event.reason) == (
        "cases.cellimage",
        str(cell_image.pk),
        lab_staff,
        "Uploaded to the wrong slide",
    )
    assert event.before | {"uploaded_at": None} == {
        "slide_id": cell_image.slide_id,
        "sha256": cell_image.sha256,
        "original_filename": "wrong-slide.png",
        "format": cell_image.image_format,
        "width": cell_image.width,
        "height": cell_image.height,
        "size_bytes": cell_image.size_bytes,
        "uploaded_by": "lab",
        "uploaded_at": None,
    }


def test_a_deletion_needs_a_reason(lab_staff, cell_image, media_root):
    with pytest.raises(ValidationError, match="needs a reason"):
        cell_image_delete(actor=lab_staff, cell_image=cell_image, reason="  ")

    assert CellImage.objects.filter(pk=cell_image.pk).exists() and stored(cell_image, media_root).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CELL_IMAGE_DELETED).exists()


@pytest.mark.parametrize("status", [SlideStatus.SUBMITTED, SlideStatus.IN_REVIEW, SlideStatus.SIGNED])
def test_it_is_refused_once_the_slide_was_submitted(lab_staff, slide, cell_image, media_root, status):
    type(slide).objects.filter(pk=slide.pk).update(status=status)

    with pytest.raises(CellImageDeleteRefused, match="submitted for classification"):
        cell_image_delete(actor=lab_staff, cell_image=cell_image, reason="Wrong slide")

    assert CellImage.objects.filter(pk=cell_image.pk).exists() and stored(cell_image, media_root).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CELL_IMAGE_DELETED).exists()


def test_an_image_with_a_prediction_is_never_deleted(lab_staff, cell_image, media_root):
    prediction_make(cell_image, model_version_make("m-del"))  # the slide is still a draft

    with pytest.raises(CellImageDeleteRefused, match="classification result"):
        cell_image_delete(actor=lab_staff, cell_image=cell_image, reason="Wrong slide")

    assert CellImage.objects.filter(pk=cell_image.pk).exists() and stored(cell_image, media_root).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CELL_IMAGE_DELETED).exists()


def test_a_pathologist_may_not_delete_images(pathologist, cell_image):
    with pytest.raises(PermissionDenied):
        cell_image_delete(actor=pathologist, cell_image=cell_image, reason="Wrong slide")


# --- The page ---------------------------------------------------------------------------------------------


def test_the_page_confirms_and_deletes_then_returns_to_the_upload_page(
    lab_client, cell_image, media_root, django_capture_on_commit_callbacks
):
    url = reverse("cases:cell_image_delete", args=[cell_image.pk])
    page = lab_client.get(url + "?return_to=upload").content.decode()
    assert cell_image.sha256 in page and 'name="return_to" value="upload"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = lab_client.post(url, {"reason": "Not a white blood cell", "return_to": "upload"})

    assert response.status_code == 302
    assert response["Location"] == reverse("cases:cell_image_upload", args=[cell_image.slide_id])
    assert not CellImage.objects.exists() and not stored(cell_image, media_root).exists()


def test_the_page_refuses_a_post_without_a_reason(lab_client, cell_image):
    response = lab_client.post(reverse("cases:cell_image_delete", args=[cell_image.pk]), {"reason": ""})

    assert response.status_code == 400
    assert CellImage.objects.filter(pk=cell_image.pk).exists()


def test_the_page_of_a_submitted_slide_says_why_and_refuses_the_post(lab_client, slide, cell_image):
    type(slide).objects.filter(pk=slide.pk).update(status=SlideStatus.SUBMITTED)
    url = reverse("cases:cell_image_delete", args=[cell_image.pk])

    page = lab_client.get(url)
    response = lab_client.post(url, {"reason": "Wrong slide"})

    assert (
        page.status_code == 200
        and b'id="delete-refusal"' in page.content
        and b'name="reason"' not in page.content
    )
    assert response.status_code == 409
    assert CellImage.objects.filter(pk=cell_image.pk).exists()


def test_the_pages_offer_delete_only_for_a_draft_slide(lab_client, pathologist_client, slide, cell_image):
    link = reverse("cases:cell_image_delete", args=[cell_image.pk])
    assert link in lab_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert link not in pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    type(slide).objects.filter(pk=slide.pk).update(status=SlideStatus.SUBMITTED)
    assert link not in lab_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()


def test_the_upload_results_offer_to_delete_each_accepted_image(lab_client, slide):
    response = lab_client.post(
        reverse("cases:cell_image_upload", args=[slide.pk]),
        {"files": [uploaded("a.png", distinct_png(1)), uploaded("b.png", distinct_png(2))]},
    )

    page = response.content.decode()
    for cell_image in CellImage.objects.all():
        assert f"{reverse('cases:cell_image_delete', args=[cell_image.pk])}?return_to=upload" in page
