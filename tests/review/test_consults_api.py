"""The consults API (/api/consults/): the services' rules and audit through a token, the blind rule,
what the consultant never reads, and access ending with the window or the closing (404)."""

import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_token_issue
from audit.models import AuditAction, AuditEvent
from classifier.models import CellClass
from review.models import Consult, ConsultLabel, ConsultStatus, InboxMessage, Review
from review.services import slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request
from tests.review.test_consults import request_consult
from tests.review.test_consults import reviewed as reviewed

N, L, M, E = CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE, CellClass.MONOCYTE, CellClass.EOSINOPHIL


def api_for(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user).key}")
    return client


def detail_url(consult: Consult, name: str = "detail") -> str:
    return reverse(f"api:consult-{name}", args=[consult.pk])


def request_body(slide, consultant, **fields) -> dict:  # noqa: ANN001
    return {"slide": slide.pk, "consultant": consultant.pk, "question": "Monocyte or lymphocyte?", **fields}


# --- Requesting ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pathologist_requests_a_consult_and_the_service_notifies_and_audits(
    slide, reviewed, pathologist, consultant
):
    body = request_body(slide, consultant, cells=[reviewed[3].pk, reviewed[4].pk], access_days=3)
    response = api_for(pathologist).post(reverse("api:consult-list"), body, format="json")
    assert response.status_code == 201, response.json()
    consult = Consult.objects.get()
    assert consult.blind and consult.access_until == pytest.approx(
        timezone.now() + datetime.timedelta(days=3), abs=datetime.timedelta(seconds=30)
    )
    data = response.json()
    assert data["id"] == consult.pk and data["viewer_role"] == "requester" and data["status"] == "open"
    assert [cell["prediction"] for cell in data["cell_list"]] == [reviewed[3].pk, reviewed[4].pk]
    assert data["slide"]["accession_number"] == "S-5001" and data["can_close"] and not data["can_label"]
    assert InboxMessage.objects.get(recipient=consultant).consult == consult
    event = AuditEvent.objects.get(action=AuditAction.CONSULT_REQUESTED)
    assert event.actor == pathologist and event.reason == "Monocyte or lymphocyte?"


@pytest.mark.django_db
def test_bad_requests_get_the_services_reasons_and_write_nothing(
    slide, reviewed, pathologist, consultant, lab_staff, make_slide, add_prediction
):
    foreign = add_prediction(make_slide("S-5002"))
    client = api_for(pathologist)
    url = reverse("api:consult-list")
    refused = {
        "self": (request_body(slide, pathologist), "someone else"),
        "lab staff": (request_body(slide, lab_staff), "pathologist or consultant"),
        "blank question": (request_body(slide, consultant, question="  "), "question"),
        "foreign cell": (request_body(slide, consultant, cells=[foreign.pk]), "chosen cells"),
    }
    for name, (body, reason) in refused.items():
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and reason in str(response.json()), name
    too_long = client.post(url, request_body(slide, consultant, access_days=31), format="json")
    assert too_long.status_code == 400 and "access_days" in too_long.json()
    unknown_slide = client.post(url, request_body(slide, consultant) | {"slide": 999_999}, format="json")
    assert unknown_slide.status_code == 400 and "slide" in unknown_slide.json()
    assert not Consult.objects.exists() and not InboxMessage.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CONSULT_REQUESTED).exists()


@pytest.mark.django_db
def test_a_signed_slide_takes_no_consult_a_conflict_not_bad_input(slide, reviewed, pathologist, consultant):
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    response = api_for(pathologist).post(
        reverse("api:consult-list"), request_body(slide, consultant), format="json"
    )
    assert response.status_code == 409 and "in review" in response.json()["detail"]
    assert not Consult.objects.exists()


@pytest.mark.django_db
def test_roles_without_consults_are_refused(slide, reviewed, pathologist, consultant, lab_staff, trainee):
    consult = request_consult(pathologist, slide, consultant)
    for user in (lab_staff, trainee):
        client = api_for(user)
        assert client.get(reverse("api:consult-list")).status_code == 403
        assert client.get(detail_url(consult)).status_code == 403
        body = request_body(slide, consultant)
        assert client.post(reverse("api:consult-list"), body, format="json").status_code == 403
    # The consultant answers consults but asks none.
    refused = api_for(consultant).post(reverse("api:consult-list"), request_body(slide, pathologist))
    assert refused.status_code == 403 and Consult.objects.count() == 1


# --- Lists and the blind rule -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_list_holds_the_callers_own_consults(slide, reviewed, pathologist, consultant, make_user):
    colleague = make_user("colleague", Role.PATHOLOGIST)
    mine = request_consult(pathologist, slide, consultant)
    to_colleague = request_consult(pathologist, slide, colleague)
    closed = request_consult(pathologist, slide, consultant)
    Consult.objects.filter(pk=closed.pk).update(status=ConsultStatus.CLOSED)
    expired = request_consult(pathologist, slide, consultant)
    Consult.objects.filter(pk=expired.pk).update(access_until=timezone.now() - datetime.timedelta(seconds=1))

    def listed(user) -> dict[int, str]:  # noqa: ANN001
        body = api_for(user).get(reverse("api:consult-list")).json()
        return {row["id"]: row["viewer_role"] for row in body["results"]}

    assert listed(pathologist) == dict.fromkeys(
        [mine.pk, to_colleague.pk, closed.pk, expired.pk], "requester"
    )
    assert listed(consultant) == {mine.pk: "consultant"}
    assert listed(colleague) == {to_colleague.pk: "consultant"}
    # A colleague reads any consult of a slide they may see, as the slide page shows them.
    assert api_for(colleague).get(detail_url(mine)).json()["viewer_role"] == "colleague"


@pytest.mark.django_db
def test_a_blind_consult_never_gives_the_consultant_the_primary_or_model_labels(
    slide, reviewed, pathologist, consultant
):
    blind = request_consult(pathologist, slide, consultant)
    open_book = request_consult(pathologist, slide, consultant, blind=False)
    client = api_for(consultant)
    blind_body = client.get(detail_url(blind)).json()
    assert blind_body["agreement"] is None and blind_body["can_label"]
    for cell in blind_body["cell_list"]:
        assert (cell["model_label"], cell["primary_label"], cell["agrees"], cell["prediction"]) == (None,) * 4
    open_body = client.get(detail_url(open_book)).json()
    assert [cell["model_label"] for cell in open_body["cell_list"]] == [p.label for p in reviewed]
    assert [cell["primary_label"] for cell in open_body["cell_list"]] == [p.label for p in reviewed]
    filenames = [prediction.cell_image.original_filename for prediction in reviewed]
    for body in (blind_body, open_body, client.get(reverse("api:consult-list")).json()):
        assert body.get("slide", {"id": None})["id"] is None
        text = str(body)
        for secret in ["Doe", "Jane", "MRN-5001", "S-5001", *filenames, "/file/"]:
            assert secret not in text, secret


# --- Answering ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_consultant_labels_and_answers_and_the_requester_reads_agreement_and_kappa(
    slide, reviewed, pathologist, consultant
):
    consult = request_consult(pathologist, slide, consultant, prediction_ids=[reviewed[0].pk, reviewed[3].pk])
    first, second = consult.cells.order_by("position")
    reviews_before = list(Review.objects.values_list("pk", "label"))
    client = api_for(consultant)
    labels = detail_url(consult, "labels")
    saved = client.post(labels, {"cell": first.pk, "label": N, "comment": "Clear"}, format="json")
    assert saved.status_code == 200 and saved.json()["label"] == N and saved.json()["comment"] == "Clear"
    client.post(labels, {"cell": second.pk, "label": E}, format="json")
    changed = client.post(labels, {"cell": second.pk, "label": L}, format="json")
    assert changed.status_code == 200 and ConsultLabel.objects.get(consult_cell=second).label == L
    assert client.post(labels, {"cell": second.pk, "label": "BASOPHIL"}, format="json").status_code == 400
    unknown_cell = client.post(labels, {"cell": 999_999, "label": N}, format="json")
    assert unknown_cell.status_code == 400 and "No such cell" in str(unknown_cell.json())
    blank = client.post(detail_url(consult, "answer"), {"opinion": " "}, format="json")
    assert blank.status_code == 400 and "Write your opinion" in str(blank.json())
    answered = client.post(detail_url(consult, "answer"), {"opinion": "One is a lymphocyte."}, format="json")
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    late = client.post(labels, {"cell": first.pk, "label": L}, format="json")
    assert late.status_code == 409 and "no longer change" in late.json()["detail"]
    again = client.post(detail_url(consult, "answer"), {"opinion": "Again"}, format="json")
    assert again.status_code == 409
    assert list(Review.objects.values_list("pk", "label")) == reviews_before
    body = api_for(pathologist).get(detail_url(consult)).json()
    assert [cell["agrees"] for cell in body["cell_list"]] == [True, False]
    assert body["agreement"] == {"compared": 2, "agreed": 1, "percent": 50.0, "kappa": 0.333}
    assert body["opinion"] == "One is a lymphocyte." and body["cell_list"][1]["consultant_label"] == L
    recorded = AuditEvent.objects.filter(action=AuditAction.CONSULT_LABEL_RECORDED, actor=consultant)
    assert recorded.count() == 3 and recorded.order_by("id").last().before == {"label": E}
    assert AuditEvent.objects.get(action=AuditAction.CONSULT_ANSWERED).after["cells_labelled"] == 2


@pytest.mark.django_db
def test_only_the_addressed_consultant_labels_and_answers(
    slide, reviewed, pathologist, consultant, make_user
):
    other = make_user("other-consultant", Role.CONSULTANT)
    consult = request_consult(pathologist, slide, consultant)
    cell = consult.cells.first()
    assert (
        api_for(other).post(detail_url(consult, "labels"), {"cell": cell.pk, "label": N}).status_code == 404
    )
    assert api_for(pathologist).post(detail_url(consult, "answer"), {"opinion": "Mine"}).status_code == 404
    assert api_for(other).get(detail_url(consult)).status_code == 404
    assert not ConsultLabel.objects.exists() and Consult.objects.get().status == ConsultStatus.OPEN


# --- Closing and the end of access -------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_requester_closes_and_the_consultants_access_ends_with_it(
    slide, reviewed, pathologist, consultant, make_user
):
    colleague = make_user("colleague", Role.PATHOLOGIST)
    consult = request_consult(pathologist, slide, consultant)
    cell = consult.cells.first()
    client = api_for(consultant)
    urls = [detail_url(consult), reverse("api:consult-cell-image", args=[consult.pk, cell.pk])]
    assert [client.get(url).status_code for url in urls] == [200, 200]
    refused = api_for(colleague).post(detail_url(consult, "close"))
    assert refused.status_code == 403 and "requested the consult" in refused.json()["detail"]
    assert client.post(detail_url(consult, "close")).status_code == 403
    closed = api_for(pathologist).post(detail_url(consult, "close"))
    assert (
        closed.status_code == 200 and closed.json()["status"] == "closed" and not closed.json()["can_close"]
    )
    assert AuditEvent.objects.get(action=AuditAction.CONSULT_CLOSED).before == {"status": "open"}
    twice = api_for(pathologist).post(detail_url(consult, "close"))
    assert twice.status_code == 409 and "cannot become closed" in twice.json()["detail"]
    assert [client.get(url).status_code for url in urls] == [404, 404]
    assert client.post(detail_url(consult, "labels"), {"cell": cell.pk, "label": N}).status_code == 404
    assert client.post(detail_url(consult, "answer"), {"opinion": "Late"}).status_code == 404
    assert client.get(reverse("api:consult-list")).json()["results"] == []
    assert api_for(pathologist).get(detail_url(consult)).status_code == 200  # the requester still reads it


@pytest.mark.django_db
def test_the_end_of_the_window_ends_the_consultants_access(slide, reviewed, pathologist, consultant):
    consult = request_consult(pathologist, slide, consultant)
    cell = consult.cells.first()
    Consult.objects.filter(pk=consult.pk).update(access_until=timezone.now() - datetime.timedelta(seconds=1))
    client = api_for(consultant)
    assert client.get(detail_url(consult)).status_code == 404
    assert client.get(reverse("api:consult-cell-image", args=[consult.pk, cell.pk])).status_code == 404
    assert client.post(detail_url(consult, "labels"), {"cell": cell.pk, "label": N}).status_code == 404
    assert not ConsultLabel.objects.exists()


@pytest.mark.django_db
def test_the_cell_image_comes_through_its_own_consult_only_without_metadata(
    slide, reviewed, pathologist, consultant, make_slide, add_prediction, make_user
):
    consult = request_consult(pathologist, slide, consultant)
    other_slide = make_slide("S-5002")
    add_prediction(other_slide)
    elsewhere = request_consult(pathologist, other_slide, make_user("someone", Role.CONSULTANT))
    client = api_for(consultant)
    cell_url = client.get(detail_url(consult)).json()["cell_list"][0]["image_url"]
    response = client.get(cell_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert not Image.open(io.BytesIO(response.content)).info.get("exif")
    other_cell = elsewhere.cells.get()
    assert client.get(reverse("api:consult-cell-image", args=[consult.pk, other_cell.pk])).status_code == 404
    assert (
        client.get(reverse("api:consult-cell-image", args=[elsewhere.pk, other_cell.pk])).status_code == 404
    )
    cell_image_id = consult.cells.first().prediction.cell_image_id
    assert client.get(reverse("api:cell-image-file", args=[cell_image_id])).status_code == 403


def queries_of(client: APIClient, address: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(address).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_list_and_a_consult_cost_the_same_queries_for_more_consults_and_cells(
    slide, reviewed, pathologist, consultant
):
    small = request_consult(pathologist, slide, consultant, prediction_ids=[reviewed[0].pk])
    client, consultant_client = api_for(pathologist), api_for(consultant)
    lists = [queries_of(client, reverse("api:consult-list"))]
    lists.append(queries_of(consultant_client, reverse("api:consult-list")))
    large = [request_consult(pathologist, slide, consultant) for _ in range(3)][-1]
    lists += [queries_of(client, reverse("api:consult-list"))]
    lists.append(queries_of(consultant_client, reverse("api:consult-list")))
    details = [queries_of(client, detail_url(consult)) for consult in (small, large)]
    assert lists[0] == lists[2] and lists[1] == lists[3] and details[0] == details[1]
    assert max(lists + details) <= 12
