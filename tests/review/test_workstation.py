"""The workstation fixes of issue 12 on the review side: how each cell was verified (individually
or in bulk at a threshold) in the records, pages, exports and FHIR; confidences never contradict
the flag; slides become ready for review when classified; a signed slide's sign page asks for no
password."""

import csv
import io

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from classifier.adapter import REVIEW_EVERYTHING
from classifier.models import CellClass
from review.models import Review
from review.services import prediction_review, slide_bulk_confirm, slide_sign
from tests.conftest import PASSWORD
from tests.factories import (
    cell_image_make,
    distinct_png,
    prediction_make,
    reauth_request,
    slide_domain_assessment_make,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_domain(predictions):
    """The review fixtures' five cells (three confident), the cells and the slide inside the model's
    validated domain, so the confident ones may be bulk confirmed."""
    return predictions


def test_bulk_confirm_keeps_the_threshold_it_accepted_each_cell_against(pathologist, slide, in_domain):
    prediction_review(actor=pathologist, prediction=in_domain[0], label=CellClass.NEUTROPHIL)
    slide_bulk_confirm(actor=pathologist, slide=slide)

    individual = Review.objects.get(prediction=in_domain[0])
    bulk = list(Review.objects.filter(bulk=True).order_by("prediction_id"))
    assert (individual.bulk, individual.bulk_threshold, individual.verification) == (
        False,
        None,
        "individual",
    )
    assert [review.prediction_id for review in bulk] == [in_domain[1].pk, in_domain[2].pk]
    assert {review.verification for review in bulk} == {"bulk at threshold 0.9"}
    events = AuditEvent.objects.filter(action=AuditAction.REVIEW_RECORDED).order_by("id")
    assert [event.after["verification"] for event in events] == [
        "individual",
        "bulk at threshold 0.9",
        "bulk at threshold 0.9",
    ]


def test_exports_say_how_each_cell_was_verified(pathologist, pathologist_client, slide, in_domain):
    prediction_review(actor=pathologist, prediction=in_domain[0], label=CellClass.NEUTROPHIL)
    slide_bulk_confirm(actor=pathologist, slide=slide)

    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]) + "?as=csv")
    rows = {int(row["cell_image_id"]): row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    verification = [rows[p.cell_image_id]["verification"] for p in in_domain]
    assert verification == ["individual", "bulk at threshold 0.9", "bulk at threshold 0.9", "", ""]
    document = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]) + "?as=json").json()
    assert [cell["verification"] for cell in document["cells"]] == [
        "individual",
        "bulk at threshold 0.9",
        "bulk at threshold 0.9",
        None,
        None,
    ]


def test_fhir_and_the_signed_differential_keep_the_verification(
    pathologist, pathologist_client, slide, in_domain
):
    slide_bulk_confirm(actor=pathologist, slide=slide)
    for prediction in in_domain[3:]:
        prediction_review(actor=pathologist, prediction=prediction, label=prediction.label)
    signature = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    verification = signature.differential["verification"]
    assert (verification["individual"], verification["bulk"], verification["bulk_thresholds"]) == (
        2,
        3,
        [0.9],
    )
    assert verification["classes"]["NEUTROPHIL"] == {"individual": 0, "bulk": 2}
    bundle = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]) + "?as=fhir").json()
    resources = [entry["resource"] for entry in bundle["entry"]]
    [report] = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    assert "2 cells verified individually, 3 confirmed in bulk at threshold 0.9" in report["conclusion"]
    notes = {
        r["code"]["coding"][0]["code"]: [note["text"] for note in r["note"]]
        for r in resources
        if r["resourceType"] == "Observation"
    }
    assert notes["26511-6"][1].startswith("Verification: 0 cells verified individually, 2 confirmed in bulk")
    assert notes["26485-3"][1] == "Verification: 1 cell verified individually."


def test_tiles_history_and_queue_tell_bulk_from_individual(pathologist, pathologist_client, slide, in_domain):
    prediction_review(actor=pathologist, prediction=in_domain[0], label=CellClass.NEUTROPHIL)
    slide_bulk_confirm(actor=pathologist, slide=slide)

    page = pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert page.count('data-verification="bulk"') == 2 and page.count('data-verification="individual"') == 1
    screen = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))
    cells = {cell["id"]: cell for cell in screen.context["review_data"]["cells"]}
    assert cells[in_domain[1].pk]["history"][0]["verification"] == "bulk at threshold 0.9"
    assert cells[in_domain[0].pk]["history"][0] | {"at": None, "id": None} == {
        "id": None,
        "label": "NEUTROPHIL",
        "label_name": "Neutrophil",
        "decision": "confirmed",
        "reason": "",
        "reviewer": "patho",
        "at": None,
        "bulk": False,
        "verification": "individual",
    }
    queue = pathologist_client.get(reverse("review:queue") + f"?slide={slide.pk}").content.decode()
    assert queue.count(">bulk</span>") == 2


def test_confidence_never_reads_as_the_threshold_it_is_below(pathologist_client, slide, add_prediction):
    flagged = add_prediction(slide, CellClass.NEUTROPHIL, 0.8999)  # the fixture's threshold is 0.9
    accepted = add_prediction(slide, CellClass.NEUTROPHIL, 0.9001)

    screen = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))
    cells = {cell["id"]: cell for cell in screen.context["review_data"]["cells"]}
    assert cells[flagged.pk]["confidence_text"] == "89.9 %"
    assert cells[accepted.pk]["confidence_text"] == "90.0 %"
    queue = pathologist_client.get(reverse("review:queue") + f"?slide={slide.pk}").content.decode()
    assert "89.9 %</span>" in queue and "90.0 %</span>" in queue and ">90 %</span>" not in queue
    tiles = pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert "89.9 %" in tiles and "90.0 %" in tiles


def test_a_ready_slide_is_reviewed_moved_to_in_review_and_listed_in_the_queue(
    pathologist, pathologist_client, slide, predictions
):
    type(slide).objects.filter(pk=slide.pk).update(status=SlideStatus.READY_FOR_REVIEW)
    queue = pathologist_client.get(reverse("review:queue")).context["page"]
    assert len(queue.object_list) == 5

    prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)

    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    event = AuditEvent.objects.filter(action=AuditAction.SLIDE_STATUS_CHANGED).latest("id")
    assert (event.before, event.after) == ({"status": "ready_for_review"}, {"status": "in_review"})


def test_a_signed_slides_sign_page_shows_its_signature_and_no_password_box(
    pathologist, pathologist_client, slide, predictions
):
    for prediction in predictions:
        prediction_review(actor=pathologist, prediction=prediction, label=prediction.label)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    url = reverse("review:slide_sign", args=[slide.pk])

    page = pathologist_client.get(url)
    posted = pathologist_client.post(url, {"password": PASSWORD, "acknowledge_count": "on"})

    html = page.content.decode()
    assert page.status_code == 200 and 'type="password"' not in html
    assert "This slide is signed (version 1, reviewed and approved by Paul Patho" in html
    assert posted.status_code == 409 and 'type="password"' not in posted.content.decode()
    assert slide.signatures.count() == 1


def test_bulk_confirm_and_the_review_screen_hold_each_cell_to_its_own_review_threshold(
    pathologist, pathologist_client, lab_staff, slide, model_version
):
    # The model's threshold is 0.9; the cells carry their nearest source's (issue 10, v1.2).
    def cell(index: int, confidence: float, threshold: float):
        image = cell_image_make(slide, lab_staff, distinct_png(900 + index), name=f"own-{index}.png")
        return prediction_make(
            image, model_version, CellClass.NEUTROPHIL, confidence, review_threshold=threshold
        )

    lenient, unvalidated, strict = cell(1, 0.85, 0.8), cell(2, 0.99, REVIEW_EVERYTHING), cell(3, 0.95, 0.97)
    slide_domain_assessment_make(slide, lenient.job)

    screen = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))
    cells = {item["id"]: item for item in screen.context["review_data"]["cells"]}
    assert not cells[lenient.pk]["flagged"]
    assert cells[unvalidated.pk]["flag_reason"] == "no validated review threshold for cells like this one"
    assert cells[strict.pk]["flag_reason"] == "below review threshold 97.0 %"
    slide_bulk_confirm(actor=pathologist, slide=slide)
    [bulk] = Review.objects.filter(bulk=True)
    assert (bulk.prediction_id, bulk.verification) == (lenient.pk, "bulk at threshold 0.8")
