"""Whole fields in review: the field view (an SVG box and label per cell, each box a link), a box
marked *not a white cell*, a missed cell added by drawing a box (cropped here, classified by a
worker), the slide page's field list, and exports naming each cell's field and box."""

import re

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, CellSource, SlideStatus
from cases.services import FieldCellCrop, field_cells_store
from classifier import tasks
from classifier.models import CellClass, InferenceJob
from review.exports import COLUMNS, ExportScope, export_rows
from review.models import CellExclusion, ExclusionCategory
from review.selectors import slide_differential
from review.services import field_cell_add_and_classify, prediction_review
from tests.factories import distinct_png, field_bytes, field_image_make, prediction_make

pytestmark = pytest.mark.django_db

BOXES = ((110, 157, 140, 126), (390, 177, 140, 126))


@pytest.fixture
def field(slide, lab_staff):
    return field_image_make(slide, lab_staff, field_bytes([(180, 220), (460, 240)]), name="field-1.png")


def _locate(field, boxes=BOXES) -> list[CellImage]:  # noqa: ANN001
    crops = [
        FieldCellCrop(*box, score=0.9, png=distinct_png(900 + index, size=(32, 32)), crop_size=32)
        for index, box in enumerate(boxes)
    ]
    return field_cells_store(field_image=field, crops=crops, locator={}, actor_username="inference-worker")[0]


@pytest.fixture
def located(field, model_version) -> list[CellImage]:
    cells = _locate(field)
    prediction_make(cells[0], model_version, CellClass.NEUTROPHIL, 0.97)
    prediction_make(cells[1], model_version, CellClass.LYMPHOCYTE, 0.61)
    return cells


def _boxes(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" class="field-box[^"]*" id="box-\d+"', page)


def test_the_field_view_draws_a_linked_box_with_its_label_on_each_cell(pathologist_client, field, located):
    predictions = [cell.predictions.get() for cell in located]
    page = pathologist_client.get(reverse("review:field_detail", args=[field.pk])).content.decode()

    review = reverse("review:slide_review", args=[field.slide_id])
    assert _boxes(page) == [f"{review}?cell={p.pk}" for p in predictions]
    assert '<rect x="110" y="157" width="140" height="126">' in page
    assert "1 Neutrophil</text>" in page and "2 Lymphocyte</text>" in page
    assert 'aria-label="Box 2: Lymphocyte (predicted, 61' in page
    assert "2 white cells located" in page
    assert page.count("Not a white cell</button>") == 2 and 'id="field-add-form"' in page
    assert 'src="/static/review/field.js"' in page and "<script>" not in page


def test_lab_staff_see_the_boxes_linked_to_the_cell_images_and_no_review_actions(lab_client, field, located):
    page = lab_client.get(reverse("review:field_detail", args=[field.pk])).content.decode()

    assert _boxes(page) == [reverse("cases:cell_image_file", args=[cell.pk]) for cell in located]
    assert "Not a white cell</button>" not in page and "field-add-form" not in page


def test_a_verified_box_shows_the_verified_class(pathologist, pathologist_client, field, located):
    prediction = located[1].predictions.get()
    prediction_review(actor=pathologist, prediction=prediction, label="MONOCYTE", reason="Folded nucleus")

    page = pathologist_client.get(reverse("review:field_detail", args=[field.pk])).content.decode()

    assert "2 Monocyte</text>" in page and 'aria-label="Box 2: Monocyte (verified)' in page


def test_the_field_view_costs_the_same_queries_whatever_the_number_of_boxes(
    pathologist_client, field, located, django_assert_max_num_queries, slide, lab_staff, model_version
):
    url = reverse("review:field_detail", args=[field.pk])
    with django_assert_max_num_queries(13):  # 12 before the lab's class list (one query)
        pathologist_client.get(url)
    other = field_image_make(slide, lab_staff, field_bytes([(100, 100)]), name="many.png")
    for cell in _locate(other, [(x, 10, 60, 60) for x in range(0, 600, 60)]):
        prediction_make(cell, model_version)
    with django_assert_max_num_queries(13):  # 12 before the lab's class list (one query)
        pathologist_client.get(reverse("review:field_detail", args=[other.pk]))


def test_a_box_marked_not_a_white_cell_is_excluded_audited_and_leaves_the_differential(
    pathologist, pathologist_client, field, located, slide
):
    response = pathologist_client.post(
        reverse("review:cell_image_exclude", args=[located[1].pk]),
        {"category": ExclusionCategory.NOT_WHITE_CELL, "reason": "A platelet clump", "field": field.pk},
    )

    assert response["Location"] == reverse("review:field_detail", args=[field.pk])
    exclusion = CellExclusion.objects.get()
    assert exclusion.category == "not_white_cell" and exclusion.decided_by == pathologist
    event = AuditEvent.objects.get(action=AuditAction.CELL_EXCLUDED)
    assert event.after["category"] == "not_white_cell" and event.reason == "A platelet clump"
    differential = slide_differential(slide=slide)
    assert differential.excluded == 1 and differential.predicted_total == 1
    page = pathologist_client.get(reverse("review:field_detail", args=[field.pk])).content.decode()
    assert "2 Not a white cell</text>" in page and "field-box-excluded" in page and "Count again" in page


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", sent.append)
    return sent


@pytest.fixture
def field_for_real_model(slide, lab_staff, tiny_model_version):
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220)]), name="real.png")
    _locate(field, BOXES[:1])
    return field


def test_a_missed_cell_boxed_on_the_field_is_cropped_stored_audited_and_queued_not_classified(
    pathologist_client, pathologist, field_for_real_model, enqueued, django_capture_on_commit_callbacks
):
    url = reverse("review:field_cell_add", args=[field_for_real_model.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = pathologist_client.post(
            url, {"x": 400, "y": 160, "width": 150, "height": 140, "reason": "Missed"}
        )

    assert response["Location"] == reverse("review:field_detail", args=[field_for_real_model.pk])
    added = CellImage.objects.get(source=CellSource.ADDED)
    assert added.box == (400, 160, 150, 140) and added.field_image == field_for_real_model
    assert added.uploaded_by == pathologist and added.image_format == "PNG" and added.width == 32
    with added.file.open("rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not added.predictions.exists()
    job = InferenceJob.objects.get()
    assert job.cell_images.filter(pk=added.pk).exists() and enqueued == [job.pk]
    event = AuditEvent.objects.get(action=AuditAction.FIELD_CELL_ADDED)
    assert (
        event.actor == pathologist and event.after["box"] == [400, 160, 150, 140] and event.reason == "Missed"
    )


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((600, 400, 100, 100), "must lie inside the field"),
        ((10, 10, 8, 40), "at least 16 px"),
    ],
)
def test_a_box_outside_the_field_or_too_small_is_refused_and_nothing_is_stored(
    pathologist, field_for_real_model, box, message
):
    from review.services import ReviewError

    with pytest.raises(ReviewError, match=message):
        field_cell_add_and_classify(actor=pathologist, field_image=field_for_real_model, box=box)
    assert not CellImage.objects.filter(source=CellSource.ADDED).exists()


def test_a_box_on_a_signed_slide_or_a_field_not_located_yet_is_refused(
    pathologist, slide, lab_staff, tiny_model_version
):
    from review.services import ReviewError

    waiting = field_image_make(slide, lab_staff, field_bytes([(180, 220)]))
    with pytest.raises(ReviewError, match="not located yet"):
        field_cell_add_and_classify(actor=pathologist, field_image=waiting, box=(10, 10, 100, 100))
    _locate(waiting, BOXES[:1])
    waiting.refresh_from_db()
    slide.status = SlideStatus.SIGNED
    slide.save()
    with pytest.raises(Exception, match="signed"):
        field_cell_add_and_classify(actor=pathologist, field_image=waiting, box=(300, 10, 100, 100))
    assert not CellImage.objects.filter(source=CellSource.ADDED).exists()


def test_the_page_says_why_a_box_was_refused(pathologist_client, field_for_real_model):
    url = reverse("review:field_cell_add", args=[field_for_real_model.pk])
    page = pathologist_client.post(
        url, {"x": 0, "y": 0, "width": 5000, "height": 50}, follow=True
    ).content.decode()
    assert "must lie inside the field" in page
    bad = pathologist_client.post(
        url, {"x": "left", "y": 0, "width": 50, "height": 50}, follow=True
    ).content.decode()
    assert "whole numbers of field pixels" in bad


def test_lab_staff_cannot_add_a_cell(lab_client, field_for_real_model):
    url = reverse("review:field_cell_add", args=[field_for_real_model.pk])
    assert lab_client.post(url, {"x": 10, "y": 10, "width": 50, "height": 50}).status_code == 403
    assert not CellImage.objects.filter(source=CellSource.ADDED).exists()


def test_the_slide_page_lists_its_fields_and_says_which_has_no_white_cell(
    lab_client, slide, lab_staff, field, located
):
    empty = field_image_make(slide, lab_staff, field_bytes([]), name="empty.png")
    field_cells_store(field_image=empty, crops=[], locator={}, actor_username="inference-worker")
    field_image_make(slide, lab_staff, field_bytes([(100, 100)]), name="waiting.png")

    page = lab_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()

    assert 'href="{}">field-1.png</a>'.format(reverse("review:field_detail", args=[field.pk])) in page
    assert "2 cells" in page and "No white cell found" in page and "cells not located yet" in page


def test_exports_name_the_field_and_box_of_each_cell_and_leave_them_empty_for_uploads(
    lab_staff, slide, field, located, add_prediction
):
    add_prediction(slide)

    rows = {row["cell_image_id"]: row for row in export_rows(user=lab_staff, scope=ExportScope(slide=slide))}

    assert {"field_image_id", "box_x", "box_y", "box_w", "box_h", "cell_source"} <= set(COLUMNS)
    first = rows[located[0].pk]
    assert (first["field_image_id"], first["field_image_filename"], first["cell_source"]) == (
        field.pk,
        "field-1.png",
        "located",
    )
    assert (first["box_x"], first["box_y"], first["box_w"], first["box_h"], first["locator_score"]) == (
        110,
        157,
        140,
        126,
        0.9,
    )
    upload = next(row for pk, row in rows.items() if pk not in {cell.pk for cell in located})
    assert (
        upload["cell_source"] == "uploaded" and upload["field_image_id"] is None and upload["box_x"] is None
    )


def test_the_review_screen_links_a_field_cell_to_its_field(pathologist_client, field, located, slide):
    page = pathologist_client.get(reverse("review:slide_review", args=[slide.pk])).content.decode()
    assert (
        f'<a id="cell-field" href="{reverse("review:field_detail", args=[field.pk])}">on its field</a>'
        in page
    )
