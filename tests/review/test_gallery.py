"""The cell gallery by class: grouping and counts, and its group actions (reclassify or confirm
many cells at once), all or nothing, with the review screen's rules on reasons, flagged cells and
cells reviewed meanwhile."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from classifier.models import CellClass, PredictionFailure
from review.gallery import EXCLUDED, UNCLASSIFIED, slide_gallery
from review.models import ExclusionCategory, Review, ReviewDecision
from review.selectors import correction_choices
from review.services import (
    FlaggedNotAcknowledgedError,
    ReviewError,
    SeenCell,
    StaleSelectionError,
    cell_image_exclude,
    prediction_review,
    predictions_review_group,
)
from tests.factories import cell_image_make, distinct_png, model_version_make

pytestmark = pytest.mark.django_db


def seen(*predictions) -> list[SeenCell]:
    """The cells as a gallery showing them now would send them."""
    return [
        SeenCell(p.pk, p.reviews.order_by("-id").values_list("pk", flat=True).first()) for p in predictions
    ]


def post(client: Client, slide, **body) -> tuple[int, dict]:
    response = client.post(
        reverse("review:slide_gallery_review", args=[slide.pk]),
        json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    return response.status_code, response.json() if response["Content-Type"] == "application/json" else {}


def cells_body(*predictions) -> list[dict]:
    return [{"prediction": cell.prediction_id, "review": cell.review_id} for cell in seen(*predictions)]


# --- Grouping ----------------------------------------------------------------------------------------------


def test_cells_are_grouped_under_their_current_class_with_counts(
    pathologist, lab_staff, slide, predictions, add_prediction
):
    neutrophil, _, lymphocyte, monocyte, eosinophil = predictions
    prediction_review(
        actor=pathologist, prediction=monocyte, label=CellClass.LYMPHOCYTE, reason="Round nucleus"
    )
    cell_image_exclude(
        actor=pathologist,
        cell_image=eosinophil.cell_image,
        category=ExclusionCategory.SMUDGE,
        reason="Smudged",
    )
    failed = cell_image_make(slide, lab_staff, distinct_png(900), name="unreadable.png")
    PredictionFailure.objects.create(
        cell_image=failed, model_version=neutrophil.model_version, job=neutrophil.job, reason="cannot decode"
    )

    gallery = slide_gallery(user=pathologist, slide=slide)

    counts = {group.value: group.count for group in gallery.groups if group.count}
    assert counts == {
        CellClass.LYMPHOCYTE: 2,  # the verified label wins over the predicted monocyte
        CellClass.NEUTROPHIL: 2,
        UNCLASSIFIED: 1,
        EXCLUDED: 1,
    }
    # Every class of the lab's list has its group, empty or not (a tile can be dragged into it).
    assert [group.value for group in gallery.classes] == [code for code, _ in correction_choices()]
    lymphocytes = next(group for group in gallery.groups if group.value == CellClass.LYMPHOCYTE)
    assert {tile.card.prediction.pk for tile in lymphocytes.tiles} == {lymphocyte.pk, monocyte.pk}
    assert gallery.cells == 6


def test_the_gallery_offers_every_class_the_review_accepts_in_its_order(pathologist, slide, predictions):
    gallery = slide_gallery(user=pathologist, slide=slide)

    assert [(group.value, group.name) for group in gallery.classes] == correction_choices()
    keys = {group.value: group.keys for group in gallery.classes}
    assert keys[CellClass.EOSINOPHIL] == ("1", "e") and keys[CellClass.NEUTROPHIL] == ("4", "n")


def test_the_slide_page_and_the_review_screen_show_the_gallery(
    pathologist_client, lab_client, slide, predictions
):
    for client, url in (
        (pathologist_client, reverse("cases:slide_detail", args=[slide.pk])),
        (pathologist_client, reverse("review:slide_review", args=[slide.pk]) + "?gallery=1"),
        (lab_client, reverse("cases:slide_detail", args=[slide.pk])),
    ):
        page = client.get(url).content.decode()
        assert 'id="gallery-cells" role="listbox"' in page
        assert page.count('class="gallery-tile ') == 5
        heading = 'id="gallery-group-NEUTROPHIL"><span data-name>Neutrophil</span> '
        assert heading + '<span class="badge text-bg-secondary" data-count>2</span>' in page
    lab_page = lab_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert "gallery-data" not in lab_page and 'draggable="true"' not in lab_page  # lab staff only look
    pathologist_page = pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert (
        f'data-open="{reverse("review:slide_review", args=[slide.pk])}?cell={predictions[0].pk}"'
        in pathologist_page
    )


def test_the_review_screen_offers_the_gallery_one_click_away(pathologist_client, slide, predictions):
    url = reverse("review:slide_review", args=[slide.pk])
    plain = pathologist_client.get(url).content.decode()
    assert 'id="gallery-show"' in plain and f'href="{url}?gallery=1"' in plain
    assert 'id="gallery-cells"' not in plain
    shown = pathologist_client.get(url + "?gallery=1").content.decode()
    assert 'id="gallery-cells"' in shown and 'id="gallery-hide"' in shown and 'id="gallery-show"' not in shown


# --- Group actions (service) -------------------------------------------------------------------------------


def test_moving_a_group_records_one_individual_audited_review_per_cell(pathologist, slide, predictions):
    neutrophils = predictions[:2]

    summary = predictions_review_group(
        actor=pathologist,
        slide=slide,
        cells=seen(*neutrophils),
        label=CellClass.EOSINOPHIL,
        reason="Granules",
    )

    reviews = Review.objects.filter(prediction__in=neutrophils).order_by("prediction_id")
    assert [(r.label, r.decision, r.reason, r.bulk, r.verification) for r in reviews] == [
        (CellClass.EOSINOPHIL, ReviewDecision.CORRECTED, "Granules", False, "individual")
    ] * 2
    assert summary.recorded == list(Review.objects.order_by("id")) and summary.unchanged == 0
    events = AuditEvent.objects.filter(action=AuditAction.REVIEW_RECORDED).order_by("id")
    assert [event.after["prediction_id"] for event in events] == [p.pk for p in neutrophils]
    assert {(event.after["via"], event.after["selected"], event.reason) for event in events} == {
        ("gallery", 2, "Granules")
    }
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW


def test_a_correction_of_a_group_needs_a_reason_and_records_nothing_without(pathologist, slide, predictions):
    with pytest.raises(ReviewError, match="a correction needs a reason"):
        predictions_review_group(
            actor=pathologist, slide=slide, cells=seen(*predictions[:3]), label=CellClass.MONOCYTE, reason=" "
        )

    assert not Review.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.REVIEW_RECORDED).exists()


def test_a_cell_reviewed_meanwhile_makes_the_whole_selection_stale(
    pathologist, make_user, slide, predictions
):
    shown = seen(*predictions[:3])
    colleague = make_user("colleague", Role.PATHOLOGIST)
    prediction_review(actor=colleague, prediction=predictions[1], label=CellClass.NEUTROPHIL)

    with pytest.raises(StaleSelectionError, match="reviewed meanwhile by colleague"):
        predictions_review_group(
            actor=pathologist, slide=slide, cells=shown, label=CellClass.MONOCYTE, reason="Folded nucleus"
        )

    assert Review.objects.count() == 1  # the colleague's only: the other two cells were not touched


def test_an_excluded_or_superseded_cell_makes_the_selection_stale(
    pathologist, slide, predictions, add_prediction
):
    cell_image_exclude(
        actor=pathologist,
        cell_image=predictions[0].cell_image,
        category=ExclusionCategory.ARTEFACT,
        reason="Dust",
    )
    with pytest.raises(StaleSelectionError, match="was excluded"):
        predictions_review_group(actor=pathologist, slide=slide, cells=seen(predictions[0]), label=None)

    newer_model = model_version_make("review-test-2", review_threshold=0.9)
    newer = add_prediction(
        slide, CellClass.MONOCYTE, 0.99, cell_image=predictions[1].cell_image, version=newer_model
    )
    with pytest.raises(StaleSelectionError, match="is not the newest"):
        predictions_review_group(
            actor=pathologist, slide=slide, cells=seen(predictions[1], newer), label=None
        )
    assert not Review.objects.exists()


def test_confirming_a_selection_with_flagged_cells_needs_them_acknowledged(pathologist, slide, predictions):
    confident, flagged = predictions[:3], predictions[3:]  # 0.55 and 0.72: below the 0.9 threshold

    with pytest.raises(FlaggedNotAcknowledgedError, match="2 selected cell"):
        predictions_review_group(actor=pathologist, slide=slide, cells=seen(*predictions), label=None)
    with pytest.raises(FlaggedNotAcknowledgedError, match="1 selected cell"):
        predictions_review_group(
            actor=pathologist,
            slide=slide,
            cells=seen(*predictions),
            label=None,
            flagged_acknowledged=frozenset({flagged[0].pk}),
        )
    assert not Review.objects.exists()

    summary = predictions_review_group(
        actor=pathologist,
        slide=slide,
        cells=seen(*predictions),
        label=None,
        flagged_acknowledged=frozenset(p.pk for p in flagged),
    )

    assert len(summary.recorded) == 5
    assert {(r.prediction_id, r.label, r.decision, r.bulk) for r in summary.recorded} == {
        (p.pk, p.label, ReviewDecision.CONFIRMED, False) for p in [*confident, *flagged]
    }


def test_moving_flagged_cells_away_from_the_models_class_needs_no_acknowledgement(
    pathologist, slide, predictions
):
    summary = predictions_review_group(
        actor=pathologist, slide=slide, cells=seen(predictions[3]), label=CellClass.LYMPHOCYTE, reason="Small"
    )

    assert [r.label for r in summary.recorded] == [CellClass.LYMPHOCYTE]


def test_cells_already_of_the_class_are_left_as_they_are(pathologist, slide, predictions):
    prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)

    summary = predictions_review_group(
        actor=pathologist, slide=slide, cells=seen(*predictions[:3]), label=None
    )

    assert (len(summary.recorded), summary.unchanged) == (2, 1)
    assert Review.objects.filter(prediction=predictions[0]).count() == 1


def test_group_actions_are_refused_on_a_signed_slide_and_for_an_unknown_class(
    pathologist, slide, predictions
):
    with pytest.raises(ReviewError, match="Unknown class"):
        predictions_review_group(
            actor=pathologist, slide=slide, cells=seen(predictions[0]), label="BASOPHILX"
        )
    type(slide).objects.filter(pk=slide.pk).update(status=SlideStatus.SIGNED)
    with pytest.raises(ValidationError, match="signed"):
        predictions_review_group(actor=pathologist, slide=slide, cells=seen(predictions[0]), label=None)


# --- The endpoint ------------------------------------------------------------------------------------------


def test_the_endpoint_reclassifies_a_selection_and_answers_the_progress(
    pathologist_client, slide, predictions
):
    status, answer = post(
        pathologist_client,
        slide,
        action="reclassify",
        label=CellClass.MONOCYTE,
        reason="Folded nucleus",
        cells=cells_body(*predictions[:2]),
    )

    assert status == 200
    assert answer["recorded"] == 2 and answer["message"] == "2 cells moved to Monocyte."
    assert answer["progress"]["reviewed"] == 2
    assert set(Review.objects.values_list("label", flat=True)) == {CellClass.MONOCYTE}


def test_the_endpoint_refuses_a_stale_selection_with_409_and_records_nothing(
    pathologist, pathologist_client, slide, predictions
):
    body = cells_body(*predictions[:3])
    prediction_review(actor=pathologist, prediction=predictions[2], label=CellClass.LYMPHOCYTE)

    status, answer = post(pathologist_client, slide, action="confirm", cells=body)

    assert status == 409 and "Reload the page" in answer["error"]
    assert Review.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"action": "reclassify", "label": CellClass.MONOCYTE, "reason": ""}, "needs a reason"),
        ({"action": "confirm"}, "flagged"),
        ({"action": "erase"}, "not a gallery action"),
        ({"action": "reclassify"}, "Choose the class"),
    ],
)
def test_the_endpoint_answers_400_with_the_reason_and_records_nothing(
    pathologist_client, slide, predictions, body, expected
):
    status, answer = post(pathologist_client, slide, cells=cells_body(*predictions), **body)

    assert status == 400 and expected in answer["error"]
    assert not Review.objects.exists()


def test_the_endpoint_refuses_malformed_bodies(pathologist_client, slide, predictions):
    url = reverse("review:slide_gallery_review", args=[slide.pk])
    for raw in (
        "not json",
        json.dumps({"action": "confirm", "cells": [{"prediction": "1", "review": None}]}),
    ):
        assert pathologist_client.post(url, raw, content_type="application/json").status_code == 400
    assert not Review.objects.exists()


def test_a_cell_of_another_slide_is_not_found(
    pathologist_client, make_slide, add_prediction, slide, predictions
):
    other = add_prediction(make_slide("S-OTHER"))

    status, _ = post(pathologist_client, slide, action="confirm", cells=cells_body(predictions[0], other))

    assert status == 404
    assert not Review.objects.exists()


@pytest.mark.parametrize("client_name", ["lab_client", "administrator_client"])
def test_roles_that_do_not_review_are_refused(request, client_name, slide, predictions):
    status, _ = post(
        request.getfixturevalue(client_name), slide, action="confirm", cells=cells_body(predictions[0])
    )

    assert status == 403
    assert not Review.objects.exists()


def test_anonymous_visitors_are_sent_to_the_login_page(slide, predictions):
    response = Client().post(
        reverse("review:slide_gallery_review", args=[slide.pk]), "{}", content_type="application/json"
    )

    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_the_gallery_costs_the_same_queries_with_more_cells(
    pathologist_client, slide, predictions, add_prediction
):
    url = reverse("review:slide_review", args=[slide.pk]) + "?gallery=1"
    with CaptureQueriesContext(connection) as few:
        pathologist_client.get(url)
    for _ in range(10):
        add_prediction(slide, CellClass.LYMPHOCYTE, 0.5)
    with CaptureQueriesContext(connection) as many:
        page = pathologist_client.get(url).content.decode()

    assert page.count('class="gallery-tile ') == 15
    assert len(many) == len(few)
