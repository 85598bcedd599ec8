"""Review pages: queue order and filters, JSON reviews from the review screen, bulk confirm,
sign-off and amendment pages, differential."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from classifier.models import CellClass
from review.models import DifferentialClass, ExclusionCategory, Review, SlideSignature
from review.selectors import slide_differential
from review.services import cell_image_exclude, prediction_review, slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request, reviews_make

pytestmark = pytest.mark.django_db


def queue_ids(response) -> list[int]:
    return [prediction.pk for prediction in response.context["page"]]


def test_queue_lists_least_confident_first(pathologist_client, predictions):
    response = pathologist_client.get(reverse("review:queue"))

    assert queue_ids(response) == [p.pk for p in sorted(predictions, key=lambda p: p.confidence)]


@pytest.mark.parametrize(
    ("params", "expected_indexes"),
    [
        ({"label": "NEUTROPHIL"}, [1, 0]),
        ({"band": "flagged"}, [3, 4]),
        ({"band": "low"}, [3]),
        ({"band": "medium"}, [4]),
        ({"band": "high"}, [2, 1, 0]),
        ({"reviewed": "yes"}, [3]),
        ({"reviewed": "no"}, [4, 2, 1, 0]),
    ],
)
def test_queue_filters(pathologist, pathologist_client, predictions, params, expected_indexes):
    prediction_review(actor=pathologist, prediction=predictions[3], label=CellClass.MONOCYTE)

    response = pathologist_client.get(reverse("review:queue"), params)

    assert queue_ids(response) == [predictions[index].pk for index in expected_indexes]


def test_queue_by_slide_includes_a_signed_slide_and_the_default_queue_does_not(
    pathologist, pathologist_client, slide, predictions
):
    reviews_make(predictions, pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    assert queue_ids(pathologist_client.get(reverse("review:queue"))) == []
    assert len(queue_ids(pathologist_client.get(reverse("review:queue"), {"slide": slide.pk}))) == 5


def test_queue_page_costs_the_same_queries_for_few_or_many_cells(
    pathologist, pathologist_client, slide, predictions, add_prediction
):
    prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)
    with CaptureQueriesContext(connection) as few:
        pathologist_client.get(reverse("review:queue"))
    for _ in range(20):
        add_prediction(slide, CellClass.MONOCYTE, 0.5)
    with CaptureQueriesContext(connection) as many:
        response = pathologist_client.get(reverse("review:queue"))

    assert len(response.context["page"]) == 25
    assert len(many) == len(few)


def test_review_screen_carries_every_cell_for_the_keyboard_script(
    pathologist, pathologist_client, slide, predictions
):
    prediction_review(
        actor=pathologist, prediction=predictions[3], label=CellClass.LYMPHOCYTE, reason="Small"
    )
    with CaptureQueriesContext(connection) as queries:
        response = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))

    data = response.context["review_data"]
    assert [cell["id"] for cell in data["cells"]] == [
        p.pk for p in sorted(predictions, key=lambda p: p.confidence)
    ]
    reviewed = next(cell for cell in data["cells"] if cell["id"] == predictions[3].pk)
    assert reviewed["review"]["decision"] == "corrected" and reviewed["review"]["reason"] == "Small"
    assert data["start"] == 1  # the first cell without a review
    assert b'id="review-data"' in response.content
    assert len(queries) < 35  # the gallery below the cell adds a fixed number, whatever the cells


def test_review_screen_opens_at_the_requested_cell(pathologist_client, slide, predictions):
    response = pathologist_client.get(
        reverse("review:slide_review", args=[slide.pk]), {"cell": predictions[0].pk}
    )

    assert response.context["current"]["id"] == predictions[0].pk


def test_posting_a_review_as_json_answers_the_review_and_progress(pathologist_client, predictions):
    response = pathologist_client.post(
        reverse("review:prediction_review", args=[predictions[3].pk]),
        {"label": "LYMPHOCYTE", "reason": "Round nucleus"},
        HTTP_ACCEPT="application/json",
    )

    body = response.json()
    assert response.status_code == 200
    assert body["review"]["decision"] == "corrected" and body["review"]["label"] == "LYMPHOCYTE"
    assert body["progress"]["reviewed"] == 1 and body["progress"]["cells"] == 5
    assert Review.objects.get().reason == "Round nucleus"


def test_a_correction_without_reason_answers_400_and_records_nothing(pathologist_client, predictions):
    response = pathologist_client.post(
        reverse("review:prediction_review", args=[predictions[3].pk]),
        {"label": "LYMPHOCYTE"},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 400
    assert "reason" in response.json()["error"]
    assert not Review.objects.exists()


def test_lab_staff_are_refused_the_review_endpoints(lab_client, slide, predictions):
    review = lab_client.post(
        reverse("review:prediction_review", args=[predictions[0].pk]), {"label": "NEUTROPHIL"}
    )
    bulk = lab_client.post(reverse("review:slide_bulk_confirm", args=[slide.pk]))
    sign = lab_client.post(
        reverse("review:slide_sign", args=[slide.pk]), {"password": PASSWORD, "acknowledge_count": "on"}
    )

    assert (review.status_code, bulk.status_code, sign.status_code) == (403, 403, 403)
    assert not Review.objects.exists() and not SlideSignature.objects.exists()


def test_bulk_confirm_page_reports_the_summary(pathologist_client, slide, predictions):
    response = pathologist_client.post(reverse("review:slide_bulk_confirm", args=[slide.pk]), follow=True)

    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith(
        "Confirmed 3 cells at or above the review threshold (1 lymphocyte, 2 neutrophil)"
    )
    assert "2 below it still need review" in message
    assert Review.objects.filter(bulk=True).count() == 3


def test_sign_page_with_a_wrong_password_answers_400_and_is_audited(
    pathologist, pathologist_client, slide, predictions
):
    reviews_make(predictions, pathologist)

    response = pathologist_client.post(
        reverse("review:slide_sign", args=[slide.pk]), {"password": "wrong", "acknowledge_count": "on"}
    )

    assert response.status_code == 400
    assert b"password is not correct" in response.content
    assert AuditEvent.objects.filter(action=AuditAction.SLIDE_SIGN_REFUSED).count() == 1
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW


def test_the_sign_page_locks_out_after_the_login_failure_limit(
    pathologist, pathologist_client, slide, predictions, settings
):
    for prediction in predictions:
        prediction_review(actor=pathologist, prediction=prediction, label=prediction.label)
    url = reverse("review:slide_sign", args=[slide.pk])

    answers = [
        pathologist_client.post(url, {"password": "wrong", "acknowledge_count": "on"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT + 1)
    ]
    right = pathologist_client.post(url, {"password": PASSWORD, "acknowledge_count": "on"})

    assert answers == [400] * (settings.AXES_FAILURE_LIMIT - 1) + [429, 429]
    assert right.status_code == 429
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW


def test_signing_shows_the_signature_on_the_slide_page(
    pathologist, pathologist_client, lab_client, slide, predictions
):
    reviews_make(predictions, pathologist)

    response = pathologist_client.post(
        reverse("review:slide_sign", args=[slide.pk]), {"password": PASSWORD, "acknowledge_count": "on"}
    )
    page = lab_client.get(reverse("cases:slide_detail", args=[slide.pk]))

    assert response.status_code == 302
    assert b"reviewed and approved</strong> by <strong>Paul Patho</strong>" in page.content
    assert b"Upload images" not in page.content
    assert reverse("review:slide_export", args=[slide.pk]).encode() + b"?as=fhir" in page.content


def test_amend_page_reopens_the_slide(pathologist, pathologist_client, slide, predictions):
    reviews_make(predictions, pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    url = reverse("review:slide_amend", args=[slide.pk])
    empty = pathologist_client.post(url, {"reason": "", "password": PASSWORD})
    no_password = pathologist_client.post(url, {"reason": "Recount"})
    wrong = pathologist_client.post(url, {"reason": "Recount", "password": "wrong"})
    response = pathologist_client.post(url, {"reason": "Recount", "password": PASSWORD})

    assert (empty.status_code, no_password.status_code, wrong.status_code) == (200, 200, 400)
    assert b"password is not correct" in wrong.content
    assert response.status_code == 302
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    assert slide.amendments.get().reason == "Recount"


def test_differential_page_shows_counts_percentages_and_flags(pathologist, lab_client, slide, predictions):
    reviews_make(predictions, pathologist)

    response = lab_client.get(reverse("review:slide_differential", args=[slide.pk]))

    rows = {row.label: row for row in response.context["differential"].rows}
    assert (rows["NEUTROPHIL"].verified_count, rows["NEUTROPHIL"].verified_percent) == (2, 40.0)
    assert rows["EOSINOPHIL"].verified_percent == 20.0 and rows["EOSINOPHIL"].flag == "high"
    assert rows["MONOCYTE"].flag == "high" and rows["LYMPHOCYTE"].flag == ""
    assert response.content.count(b"<svg") == 4


def test_differential_counts_only_reviewed_cells_as_verified(pathologist, slide, predictions):
    prediction_review(
        actor=pathologist, prediction=predictions[0], label=CellClass.LYMPHOCYTE, reason="Re-read"
    )

    differential = slide_differential(slide=slide)

    rows = {row.label: row for row in differential.rows}
    assert (differential.predicted_total, differential.verified_total) == (5, 1)
    assert rows["NEUTROPHIL"].predicted_count == 2 and rows["NEUTROPHIL"].verified_count == 0
    assert rows["LYMPHOCYTE"].verified_percent == 100.0


def test_reference_intervals_come_from_the_class_list(pathologist, slide, predictions):
    DifferentialClass.objects.filter(code="NEUTROPHIL").update(reference_low=50.0, reference_high=60.0)
    DifferentialClass.objects.filter(code="EOSINOPHIL").update(reference_low=None, reference_high=None)
    reviews_make(predictions, pathologist)

    rows = {row.label: row for row in slide_differential(slide=slide).rows}

    assert rows["NEUTROPHIL"].flag == "low"
    assert rows["EOSINOPHIL"].flag == "" and rows["EOSINOPHIL"].reference_low is None


def test_review_api_records_a_review(pathologist, predictions):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(pathologist)
    url = reverse("api:prediction-review", args=[predictions[3].pk])

    refused = client.post(url, {"label": "LYMPHOCYTE"}, format="json")
    created = client.post(url, {"label": "LYMPHOCYTE", "reason": "Round nucleus"}, format="json")

    assert refused.status_code == 400
    assert created.status_code == 201
    assert json.loads(created.content)["decision"] == "corrected"
    assert Review.objects.get().reviewer == pathologist


def test_slide_page_shows_each_cell_once_with_its_verified_label(
    pathologist, pathologist_client, slide, predictions
):
    confirmed, _, _, corrected, excluded = predictions
    prediction_review(actor=pathologist, prediction=confirmed, label=confirmed.label)
    prediction_review(
        actor=pathologist, prediction=corrected, label=CellClass.LYMPHOCYTE, reason="round nucleus, no fold"
    )
    cell_image_exclude(
        actor=pathologist, cell_image=excluded.cell_image, category=ExclusionCategory.SMUDGE, reason="smudged"
    )

    page = pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()

    for prediction in predictions:
        assert page.count(reverse("cases:cell_image_file", args=[prediction.cell_image_id])) == 1
    assert page.count(">Verified individually<") == 1
    assert "Corrected · model: Monocyte 55.0 %" in page
    assert 'title="round nucleus, no fold"' in page
    assert "Smudge cell" in page
    # Both flagged cells are resolved (one corrected, one excluded): none is left marked Check.
    assert page.count(">Check<") == 0
