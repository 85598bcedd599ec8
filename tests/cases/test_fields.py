"""Whole microscope fields on upload: the kind (auto from the size, or chosen), on the page and in
the API; the field stored and audited; the cells of a field stored once, with their boxes."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, CellSource, FieldImage, SlideStatus
from cases.services import FieldCellCrop, cell_images_upload, field_cell_add, field_cells_store
from cases.uploads import FIELD_MIN_SHORT_SIDE, image_kind_detect
from tests.factories import distinct_png, field_bytes, field_image_make, uploaded, zip_bytes

pytestmark = pytest.mark.django_db


def test_the_kind_is_detected_from_the_short_side():
    assert image_kind_detect(width=640, height=480) == "field"
    assert image_kind_detect(width=480, height=FIELD_MIN_SHORT_SIDE - 1) == "cell"
    assert image_kind_detect(width=360, height=363) == "cell"


def test_auto_stores_a_field_sized_image_as_a_field_and_a_small_one_as_a_cell(slide, lab_staff):
    files = [uploaded("field.png", field_bytes([(300, 200)])), uploaded("cell.png", distinct_png(1))]

    outcomes = cell_images_upload(actor=lab_staff, slide=slide, files=files)

    assert [outcome.kind for outcome in outcomes] == ["field", "cell"]
    field = FieldImage.objects.get()
    assert (field.width, field.height, field.original_filename) == (640, 480, "field.png")
    assert not field.is_located and field.located_count is None
    assert CellImage.objects.get().original_filename == "cell.png"
    event = AuditEvent.objects.get(action=AuditAction.FIELD_IMAGE_UPLOADED)
    assert event.object_id == str(field.pk) and event.after["width"] == 640


def test_the_chosen_kind_overrides_the_size_for_every_file(slide, lab_staff):
    archive = zip_bytes({"a.png": field_bytes([(300, 200)]), "b.png": distinct_png(2, size=(64, 48))})

    as_cells = cell_images_upload(
        actor=lab_staff, slide=slide, files=[uploaded("one.png", field_bytes([]))], kind="cell"
    )
    as_fields = cell_images_upload(
        actor=lab_staff, slide=slide, files=[uploaded("x.zip", archive)], kind="field"
    )

    assert [o.kind for o in as_cells] == ["cell"] and [o.kind for o in as_fields] == ["field", "field"]
    assert FieldImage.objects.count() == 2 and CellImage.objects.count() == 1


def test_a_field_over_the_pixel_limit_is_refused_and_nothing_is_stored(
    slide, lab_staff, settings, media_root
):
    settings.HEMATOVISION_UPLOAD_MAX_PIXELS = 640 * 480 - 1

    outcome = cell_images_upload(
        actor=lab_staff, slide=slide, files=[uploaded("big.png", field_bytes([]))], kind="field"
    )[0]

    assert not outcome.accepted and "the limit is 307,199" in outcome.reason
    assert not FieldImage.objects.exists()
    assert not any(path.is_file() for path in media_root.rglob("*"))


def test_the_same_field_twice_is_refused(slide, lab_staff):
    data = field_bytes([(300, 200)])
    cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("a.png", data)])

    second = cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("b.png", data)])[0]

    assert second.reason == "the same image is already on this slide"
    assert FieldImage.objects.count() == 1


def test_a_signed_slide_takes_no_field(slide, lab_staff):
    from django.core.exceptions import ValidationError

    slide.status = SlideStatus.SIGNED
    slide.save()
    with pytest.raises(ValidationError, match="signed"):
        cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("f.png", field_bytes([]))])
    assert not FieldImage.objects.exists()


def test_the_upload_page_offers_the_kind_and_stores_what_is_chosen(lab_client, slide):
    url = reverse("cases:cell_image_upload", args=[slide.pk])
    page = lab_client.get(url).content.decode()
    assert 'name="kind" id="kind-auto" value="auto" checked' in page and 'value="field"' in page

    response = lab_client.post(url, {"files": [uploaded("small.png", distinct_png(3))], "kind": "field"})

    assert response.status_code == 200 and "Microscope field, 24×18 PNG" in response.content.decode()
    assert FieldImage.objects.get().original_filename == "small.png"


def test_the_upload_page_refuses_an_unknown_kind_and_stores_nothing(lab_client, slide):
    url = reverse("cases:cell_image_upload", args=[slide.pk])
    response = lab_client.post(url, {"files": [uploaded("a.png", distinct_png(4))], "kind": "slide"})
    assert response.status_code == 400 and "Choose what the images are" in response.content.decode()
    assert not CellImage.objects.exists() and not FieldImage.objects.exists()


@pytest.fixture
def api(lab_staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(lab_staff)
    return client


def test_the_api_takes_a_field_and_lists_it(api, slide):
    url = reverse("api:slide-cell-images", args=[slide.pk])
    response = api.post(
        url,
        {"files": [uploaded("f.jpg", field_bytes([(300, 200)], image_format="JPEG"))]},
        format="multipart",
    )

    assert response.status_code == 201
    result = response.json()["results"][0]
    assert result["kind"] == "field" and result["cell_image"] is None
    assert result["field_image"]["width"] == 640 and result["field_image"]["located_count"] is None
    listed = api.get(reverse("api:slide-field-images", args=[slide.pk])).json()["results"]
    assert [field["original_filename"] for field in listed] == ["f.jpg"]
    detail = api.get(reverse("api:field-image-file", args=[listed[0]["id"]]))
    assert detail.status_code == 200 and detail["Content-Type"] == "image/jpeg"


def test_the_api_refuses_an_unknown_kind(api, slide):
    url = reverse("api:slide-cell-images", args=[slide.pk])
    response = api.post(
        url, {"files": [uploaded("a.png", distinct_png(5))], "kind": "whole"}, format="multipart"
    )
    assert response.status_code == 400 and "kind" in response.json()
    assert not CellImage.objects.exists()


def test_the_api_stores_a_cell_when_told_so_whatever_its_size(api, slide):
    url = reverse("api:slide-cell-images", args=[slide.pk])
    response = api.post(
        url, {"files": [uploaded("f.png", field_bytes([]))], "kind": "cell"}, format="multipart"
    )
    assert response.json()["results"][0]["kind"] == "cell"
    assert not FieldImage.objects.exists()


def _crop(x: int, index: int) -> FieldCellCrop:
    return FieldCellCrop(
        box_x=x,
        box_y=10,
        box_w=100,
        box_h=90,
        score=0.8,
        png=distinct_png(index, size=(32, 32)),
        crop_size=32,
    )


def test_located_cells_are_stored_once_with_their_boxes(slide, lab_staff):
    field = field_image_make(slide, lab_staff, field_bytes([]))

    cells, stored = field_cells_store(
        field_image=field, crops=[_crop(0, 1), _crop(300, 2)], locator={"a": 1}, actor_username="w"
    )
    again, stored_again = field_cells_store(
        field_image=field, crops=[_crop(0, 1)], locator={"a": 1}, actor_username="w"
    )

    assert stored and not stored_again and again == cells
    assert [(c.box, c.source, c.locator_score) for c in cells] == [
        ((0, 10, 100, 90), CellSource.LOCATED, 0.8),
        ((300, 10, 100, 90), CellSource.LOCATED, 0.8),
    ]
    field.refresh_from_db()
    assert field.located_count == 2 and field.locator == {"a": 1}
    assert AuditEvent.objects.filter(action=AuditAction.FIELD_IMAGE_LOCATED).count() == 1


def test_overlapping_boxes_with_the_same_crop_are_one_cell_and_apart_they_are_two(slide, lab_staff):
    field = field_image_make(slide, lab_staff, field_bytes([]))
    same_nucleus = FieldCellCrop(
        box_x=50, box_y=10, box_w=100, box_h=90, score=0.6, png=_crop(0, 1).png, crop_size=32
    )
    look_alike = FieldCellCrop(
        box_x=400, box_y=10, box_w=100, box_h=90, score=0.6, png=_crop(0, 1).png, crop_size=32
    )

    cells, _ = field_cells_store(
        field_image=field, crops=[_crop(0, 1), same_nucleus, look_alike], locator={}, actor_username="w"
    )

    assert [cell.box_x for cell in cells] == [0, 400]


def test_an_added_cell_with_a_box_already_on_the_field_is_refused(slide, lab_staff, pathologist):
    from cases.services import FieldBoxTaken

    field = field_image_make(slide, lab_staff, field_bytes([]))
    field_cells_store(field_image=field, crops=[_crop(0, 1)], locator={}, actor_username="w")

    added = field_cell_add(actor=pathologist, field_image=field, crop=_crop(200, 7), reason="missed")
    with pytest.raises(FieldBoxTaken):
        field_cell_add(actor=pathologist, field_image=field, crop=_crop(0, 8))

    assert (
        added.source == CellSource.ADDED and added.uploaded_by == pathologist and added.locator_score is None
    )
    assert CellImage.objects.filter(field_image=field).count() == 2
    event = AuditEvent.objects.get(action=AuditAction.FIELD_CELL_ADDED)
    assert (
        event.actor == pathologist and event.after["box"] == [200, 10, 100, 90] and event.reason == "missed"
    )


def test_the_database_refuses_a_field_cell_without_a_box(slide, lab_staff):
    from django.db import IntegrityError, transaction

    field = field_image_make(slide, lab_staff, field_bytes([]))
    cell = CellImage(
        slide=slide, field_image=field, source=CellSource.LOCATED, sha256="0" * 64, image_format="PNG",
        width=32, height=32, size_bytes=1, original_filename="x", uploaded_by=lab_staff, file="x.png",
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        cell.save()
