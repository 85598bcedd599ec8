"""Consults: requested from a slide in review, answered by a consultant in rows of their own,
closed by the requester; agreement and Cohen's kappa; what ends the consultant's access and what
they can never open; sign-off with an open consult; the signed report and FHIR carry it."""

import datetime
import io

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_token_issue
from audit.models import AuditAction, AuditEvent
from classifier.models import CellClass
from review.consult_selectors import cohen_kappa, consult_agreement, consult_cell_rows
from review.consult_services import (
    ConsultError,
    consult_answer,
    consult_close,
    consult_label_record,
    consult_request,
)
from review.models import Consult, ConsultLabel, ConsultStatus, InboxMessage, Review, SlideSignature
from review.services import ReviewError, slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request, review_make
from tests.review.test_exports import fhir_validated

N, L, M, E = CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE, CellClass.MONOCYTE, CellClass.EOSINOPHIL


def in_days(days: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(days=days)


@pytest.fixture
def reviewed(slide, predictions, pathologist):
    """Every cell of the slide reviewed as predicted (the slide is in review, signable)."""
    for prediction in predictions:
        review_make(prediction, pathologist)
    return predictions


def request_consult(pathologist, slide, consultant, **fields) -> Consult:  # noqa: ANN001
    return consult_request(
        actor=pathologist,
        slide=slide,
        consultant=consultant,
        question=fields.pop("question", "Monocyte or lymphocyte?"),
        access_until=fields.pop("access_until", in_days(7)),
        **fields,
    )


def client_for(user) -> Client:  # noqa: ANN001
    client = Client()
    client.force_login(user)
    return client


# --- Cohen's kappa ------------------------------------------------------------------------------------------


def test_cohens_kappa_matches_the_textbook_example():
    # 50 items: both yes 20, first yes second no 5, first no second yes 10, both no 15 → κ = 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("a", "a")]) == 1.0
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)


# --- Requesting ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_consult_covers_the_chosen_cells_notifies_the_consultant_and_is_audited(
    slide, reviewed, pathologist, consultant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        consult = request_consult(
            pathologist, slide, consultant, prediction_ids=[reviewed[3].pk, reviewed[4].pk]
        )
    assert [cell.prediction_id for cell in consult.cells.order_by("position")] == [
        reviewed[3].pk,
        reviewed[4].pk,
    ]
    assert consult.status == ConsultStatus.OPEN and consult.blind
    message = InboxMessage.objects.get(recipient=consultant)
    assert message.consult == consult and "Monocyte or lymphocyte?" in message.body
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["cora@example.org"]
    assert reverse("consults:consult_detail", args=[consult.pk]) in mail.outbox[0].body
    event = AuditEvent.objects.get(action=AuditAction.CONSULT_REQUESTED)
    assert event.object_id == str(consult.pk) and event.reason == "Monocyte or lymphocyte?"
    assert event.after["consultant"] == "consultant" and event.after["prediction_ids"] == [
        reviewed[3].pk,
        reviewed[4].pk,
    ]


@pytest.mark.django_db
def test_without_chosen_cells_the_consult_covers_every_counted_cell(slide, reviewed, pathologist, consultant):
    consult = request_consult(pathologist, slide, consultant)
    assert consult.cells.count() == 5


@pytest.mark.django_db
def test_bad_requests_are_refused_and_write_nothing(
    slide, reviewed, pathologist, consultant, lab_staff, trainee, make_slide, add_prediction
):
    other_slide = make_slide("S-5002")
    foreign = add_prediction(other_slide)
    cases = [
        ({"consultant": pathologist}, "someone else"),
        ({"consultant": lab_staff}, "pathologist or consultant"),
        ({"consultant": trainee}, "pathologist or consultant"),
        ({"access_until": in_days(-1)}, "window"),
        ({"access_until": in_days(31)}, "window"),
        ({"question": "  "}, "question"),
        ({"prediction_ids": [foreign.pk]}, "chosen cells"),
    ]
    for fields, message in cases:
        with pytest.raises(ConsultError, match=message):
            request_consult(pathologist, slide, fields.pop("consultant", consultant), **fields)
    with pytest.raises(PermissionDenied):
        request_consult(lab_staff, slide, consultant)
    assert not Consult.objects.exists() and not InboxMessage.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CONSULT_REQUESTED).exists()


@pytest.mark.django_db
def test_a_signed_slide_takes_no_new_consult(slide, reviewed, pathologist, consultant):
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    with pytest.raises(ConsultError, match="in review"):
        request_consult(pathologist, slide, consultant)


@pytest.mark.django_db
def test_the_request_page_sends_a_consult(slide, reviewed, pathologist_client, consultant):
    url = reverse("consults:consult_request", args=[slide.pk])
    page = pathologist_client.get(url)
    assert page.status_code == 200 and "Cora Consultant" in page.content.decode()
    data = {"consultant": consultant.pk, "question": "Blasts?", "blind": "on", "access_days": 3}
    response = pathologist_client.post(url, data | {"cells": [str(reviewed[0].pk)]})
    consult = Consult.objects.get()
    assert response.status_code == 302 and consult.cells.get().prediction == reviewed[0]
    assert consult.access_until == pytest.approx(in_days(3), abs=datetime.timedelta(seconds=30))
    refused = pathologist_client.post(url, data | {"access_days": 90})
    assert refused.status_code == 400 and Consult.objects.count() == 1


# --- Answering ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_consultants_labels_are_rows_of_their_own_and_the_primary_review_stays(
    slide, reviewed, pathologist, consultant
):
    consult = request_consult(pathologist, slide, consultant)
    reviews_before = list(Review.objects.values_list("pk", "label"))
    cells = list(consult.cells.order_by("position"))
    for cell in cells:
        consult_label_record(
            actor=consultant, consult=consult, consult_cell=cell, label=cell.prediction.label
        )
    consult_label_record(
        actor=consultant, consult=consult, consult_cell=cells[3], label=L, comment="Lymphocyte"
    )
    assert list(Review.objects.values_list("pk", "label")) == reviews_before
    assert ConsultLabel.objects.count() == 5 and ConsultLabel.objects.get(consult_cell=cells[3]).label == L
    events = AuditEvent.objects.filter(action=AuditAction.CONSULT_LABEL_RECORDED).order_by("id")
    assert events.count() == 6 and events.last().before == {"label": M}
    rows = consult_cell_rows(consult=consult)
    agreement = consult_agreement(rows)
    assert [row.agrees for row in rows] == [True, True, True, False, True]
    assert (agreement.compared, agreement.agreed) == (5, 4)
    # Primary N N L M E against N N L L E.
    expected = cohen_kappa([(N, N), (N, N), (L, L), (M, L), (E, E)])
    assert agreement.kappa == pytest.approx(expected) and 0 < expected < 1


@pytest.mark.django_db
def test_only_the_addressed_consultant_labels_and_answers(
    slide, reviewed, pathologist, consultant, make_user
):
    other = make_user("other-consultant", Role.CONSULTANT)
    consult = request_consult(pathologist, slide, consultant)
    cell = consult.cells.first()
    with pytest.raises(PermissionDenied):
        consult_label_record(actor=other, consult=consult, consult_cell=cell, label=N)
    with pytest.raises(PermissionDenied):
        consult_answer(actor=pathologist, consult=consult, opinion="Mine")
    assert not ConsultLabel.objects.exists()


@pytest.mark.django_db
def test_the_opinion_notifies_the_requester_and_freezes_the_labels(
    slide, reviewed, pathologist, consultant, django_capture_on_commit_callbacks
):
    pathologist.email = "paul@example.org"
    pathologist.save()
    consult = request_consult(pathologist, slide, consultant)
    cell = consult.cells.first()
    consult_label_record(actor=consultant, consult=consult, consult_cell=cell, label=N)
    with pytest.raises(ConsultError, match="opinion"):
        consult_answer(actor=consultant, consult=consult, opinion=" ")
    with django_capture_on_commit_callbacks(execute=True):
        consult_answer(actor=consultant, consult=consult, opinion="Reactive neutrophilia.")
    consult.refresh_from_db()
    assert consult.status == ConsultStatus.ANSWERED and consult.opinion == "Reactive neutrophilia."
    assert InboxMessage.objects.filter(recipient=pathologist, consult=consult).exists()
    assert [message.to for message in mail.outbox] == [["paul@example.org"]]
    with pytest.raises(ConsultError, match="no longer change"):
        consult_label_record(actor=consultant, consult=consult, consult_cell=cell, label=L)
    event = AuditEvent.objects.get(action=AuditAction.CONSULT_ANSWERED)
    assert event.reason == "Reactive neutrophilia." and event.after["cells_labelled"] == 1


@pytest.mark.django_db
def test_only_the_requester_closes_and_a_closed_consult_cannot_be_answered(
    slide, reviewed, pathologist, consultant, make_user
):
    colleague = make_user("colleague", Role.PATHOLOGIST)
    consult = request_consult(pathologist, slide, consultant)
    with pytest.raises(PermissionDenied):
        consult_close(actor=colleague, consult=consult)
    consult_close(actor=pathologist, consult=consult)
    consult.refresh_from_db()
    assert consult.status == ConsultStatus.CLOSED and consult.closed_at is not None
    with pytest.raises(ConsultError, match="cannot become"):
        consult_close(actor=pathologist, consult=consult)
    with pytest.raises(PermissionDenied, match="closed"):
        consult_answer(actor=consultant, consult=consult, opinion="Late")
    assert AuditEvent.objects.get(action=AuditAction.CONSULT_CLOSED).before == {"status": "open"}


# --- Pages and access ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_blind_consult_hides_the_primary_labels_from_the_consultant(
    slide, reviewed, pathologist, consultant
):
    blind = request_consult(pathologist, slide, consultant)
    open_book = request_consult(pathologist, slide, consultant, blind=False)
    client = client_for(consultant)
    blind_page = client.get(reverse("consults:consult_detail", args=[blind.pk])).content.decode()
    open_page = client.get(reverse("consults:consult_detail", args=[open_book.pk])).content.decode()
    assert "Primary review" not in blind_page and "Agreement" not in blind_page
    assert "Primary review" in open_page
    for page in (blind_page, open_page):  # the consultant never reads who the patient is
        assert "Doe" not in page and "MRN-5001" not in page


@pytest.mark.django_db
def test_the_requester_sees_agreement_kappa_and_the_opinion_on_the_consult_and_slide(
    slide, reviewed, pathologist, pathologist_client, consultant
):
    consult = request_consult(pathologist, slide, consultant, prediction_ids=[reviewed[0].pk, reviewed[3].pk])
    first, second = consult.cells.order_by("position")
    consult_label_record(actor=consultant, consult=consult, consult_cell=first, label=N)
    consult_label_record(actor=consultant, consult=consult, consult_cell=second, label=L)
    consult_answer(actor=consultant, consult=consult, opinion="One monocyte is a lymphocyte.")
    page = pathologist_client.get(reverse("consults:consult_detail", args=[consult.pk])).content.decode()
    assert "1 of 2 cells (50.0 %)" in page and "One monocyte is a lymphocyte." in page
    slide_page = pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    assert "agreement 1 of 2" in slide_page and "One monocyte is a lymphocyte." in slide_page
    assert "Agreement per cell" in slide_page and slide_page.count("<strong>no</strong>") == 1


@pytest.mark.django_db
def test_closing_or_the_end_of_the_window_ends_the_consultants_access(
    slide, reviewed, pathologist, consultant
):
    consult = request_consult(pathologist, slide, consultant)
    cell = consult.cells.first()
    client = client_for(consultant)
    urls = [
        reverse("consults:consult_detail", args=[consult.pk]),
        reverse("consults:consult_cell_image", args=[consult.pk, cell.pk]),
    ]
    assert [client.get(url).status_code for url in urls] == [200, 200]
    Consult.objects.filter(pk=consult.pk).update(access_until=timezone.now() - datetime.timedelta(seconds=1))
    assert [client.get(url).status_code for url in urls] == [404, 404]
    assert client.post(reverse("consults:consult_labels", args=[consult.pk]), {}).status_code == 404
    reopened = request_consult(pathologist, slide, consultant)
    consult_close(actor=pathologist, consult=reopened)
    assert client.get(reverse("consults:consult_detail", args=[reopened.pk])).status_code == 404
    inbox = client.get(reverse("consults:inbox")).content.decode()
    assert "Nothing to answer." in inbox


@pytest.mark.django_db
def test_a_consultant_opens_no_other_slide_patient_or_export_by_page_or_api(
    slide, reviewed, pathologist, consultant, make_user, make_slide, add_prediction
):
    consult = request_consult(pathologist, slide, consultant)
    other_slide = make_slide("S-5002")
    add_prediction(other_slide)
    elsewhere = request_consult(pathologist, other_slide, make_user("someone", Role.CONSULTANT))
    client = client_for(consultant)
    cell_image_id = reviewed[0].cell_image_id
    refused_pages = [
        reverse("cases:slide_detail", args=[slide.pk]),
        reverse("cases:patient_detail", args=[slide.patient_id]),
        reverse("cases:cell_image_file", args=[cell_image_id]),
        reverse("review:slide_review", args=[slide.pk]),
        reverse("review:slide_export", args=[slide.pk]) + "?as=csv",
        reverse("review:patient_export", args=[slide.patient_id]) + "?as=csv",
        reverse("review:prediction_gradcam", args=[reviewed[0].pk]),
    ]
    assert {url: client.get(url).status_code for url in refused_pages} == dict.fromkeys(refused_pages, 403)
    assert 'id="slide-counts"' not in client.get(reverse("home")).content.decode()
    assert client.get(reverse("consults:consult_detail", args=[elsewhere.pk])).status_code == 404
    other_cell = elsewhere.cells.first()
    assert (
        client.get(reverse("consults:consult_cell_image", args=[elsewhere.pk, other_cell.pk])).status_code
        == 404
    )
    assert (
        client.get(reverse("consults:consult_cell_image", args=[consult.pk, other_cell.pk])).status_code
        == 404
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=consultant).key}")
    refused_api = [
        reverse("api:slide-detail", args=[slide.pk]),
        reverse("api:patient-detail", args=[slide.patient_id]),
        reverse("api:cell-image-file", args=[cell_image_id]),
        reverse("api:slide-inference-predictions", args=[slide.pk]),
        reverse("api:export-slide", args=[slide.pk]) + "?as=json",
    ]
    assert {url: api.get(url).status_code for url in refused_api} == dict.fromkeys(refused_api, 403)
    assert not AuditEvent.objects.filter(action=AuditAction.RESULTS_EXPORTED).exists()


# --- Sign-off, signed report, FHIR -----------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_off_asks_for_confirmation_while_a_consult_is_open(
    slide, reviewed, pathologist, pathologist_client, consultant
):
    consult = request_consult(pathologist, slide, consultant)
    with pytest.raises(ReviewError, match="not closed"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )
    page = pathologist_client.get(reverse("review:slide_sign", args=[slide.pk])).content.decode()
    assert "sign-open-consults" in page and f"Consult {consult.pk}" in page
    refused = pathologist_client.post(reverse("review:slide_sign", args=[slide.pk]), {"password": PASSWORD})
    assert refused.status_code == 200 and not SlideSignature.objects.exists()
    signed = pathologist_client.post(
        reverse("review:slide_sign", args=[slide.pk]),
        {"password": PASSWORD, "acknowledge_consults": "on", "acknowledge_count": "on"},
    )
    assert signed.status_code == 302
    consults = SlideSignature.objects.get().differential["consults"]
    assert consults[0]["status"] == "open" and consults[0]["opinion"] == ""


@pytest.mark.django_db
def test_the_signed_report_and_fhir_carry_the_closed_consult(
    slide, reviewed, pathologist, pathologist_client, consultant
):
    consult = request_consult(pathologist, slide, consultant, prediction_ids=[reviewed[3].pk])
    consult_label_record(actor=consultant, consult=consult, consult_cell=consult.cells.get(), label=M)
    consult_answer(actor=consultant, consult=consult, opinion="Agree: monocyte.")
    consult_close(actor=pathologist, consult=consult)
    signature = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    summary = signature.differential["consults"][0]
    assert summary | {"answered_at": None} == {
        "id": consult.pk,
        "requested_by": "Paul Patho",
        "consultant": "Cora Consultant",
        "consultant_username": "consultant",
        "question": "Monocyte or lymphocyte?",
        "status": "closed",
        "opinion": "Agree: monocyte.",
        "answered_at": None,
        "cells": 1,
        "agreement": {"compared": 1, "agreed": 1, "kappa": 1.0},
    }
    differential = pathologist_client.get(
        reverse("review:slide_differential", args=[slide.pk])
    ).content.decode()
    assert "Consult" in differential and "Agree: monocyte." in differential
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]) + "?as=fhir")
    bundle = fhir_validated(response.content)
    report = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "DiagnosticReport")
    assert (
        f"Consult {consult.pk} (closed) with Cora Consultant: 1 of 1 cells agree with the primary review "
        "(Cohen's kappa 1.00); opinion: Agree: monocyte." in report.conclusion
    )
    # The printable report, page and PDF, keeps the second opinion beside the signature.
    page = pathologist_client.get(reverse("review:slide_report", args=[slide.pk])).content.decode()
    assert 'id="report-consults"' in page and f"Consult {consult.pk} (closed), Cora Consultant" in page
    assert "agreement 1 of 1 cells, Cohen&#x27;s κ 1.00" in page and "Agree: monocyte." in page
    pdf = pathologist_client.get(reverse("review:slide_report_pdf", args=[slide.pk])).content
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Second opinions" in text and "Agree: monocyte." in text
