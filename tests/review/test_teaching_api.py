"""The proficiency sets API: pathologists build (from the page's filters), assign and read results;
trainees take their sets answer by answer and read their result once finished. The services'
rules and audit through a token, what a trainee never reads, and each role refused elsewhere."""

import datetime
import io

import pytest
from django.contrib.auth.models import Group
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
from review.models import ProficiencyAnswer, ProficiencyAttempt, ProficiencySet
from review.teaching_selectors import SourceCriteria
from review.teaching_services import proficiency_set_assign, proficiency_set_create
from tests.review.test_teaching import assigned_set, build
from tests.review.test_teaching import signed as signed

N, L, M, E = CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE, CellClass.MONOCYTE, CellClass.EOSINOPHIL
CREATE = {"name": "Wrong calls", "label": "", "min_confidence": 0, "max_confidence": 100, "size": 3}


def api_for(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user).key}")
    return client


def url(name: str, *args: int) -> str:
    return reverse(f"api:{name}", args=args)


# --- Pathologists: building, assigning, results ------------------------------------------------------------


@pytest.mark.django_db
def test_a_pathologist_builds_a_set_from_the_pages_filters_and_the_service_audits_it(signed, pathologist):
    client = api_for(pathologist)
    counted = client.get(url("proficiency-set-source-cells"), {"model_wrong_only": "true"})
    assert counted.status_code == 200 and counted.json() == {"matching": 2}
    response = client.post(url("proficiency-set-list"), CREATE | {"model_wrong_only": True}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    proficiency_set = ProficiencySet.objects.get()
    assert body["id"] == proficiency_set.pk and body["cells"] == 2
    assert {item["cell_image"] for item in body["items"]} == {
        signed[3].cell_image_id,
        signed[4].cell_image_id,
    }
    assert {(item["reference_label"], item["model_label"]) for item in body["items"]} == {(L, M), (N, E)}
    assert body["criteria"] == {
        "label": "",
        "min_confidence": 0.0,
        "max_confidence": 1.0,
        "model_wrong_only": True,
    }
    event = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_SET_CREATED)
    assert event.actor == pathologist and event.after["cells"] == 2
    listed = client.get(url("proficiency-set-list")).json()["results"]
    assert [(row["id"], row["cells"]) for row in listed] == [(proficiency_set.pk, 2)]
    image = client.get(body["items"][0]["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


@pytest.mark.django_db
def test_a_bad_set_is_refused_with_the_services_reason_and_nothing_is_written(signed, pathologist):
    client = api_for(pathologist)
    none_match = client.post(url("proficiency-set-list"), CREATE | {"label": E}, format="json")
    assert none_match.status_code == 400 and "No verified cell" in str(none_match.json())
    backwards = client.post(
        url("proficiency-set-list"), CREATE | {"min_confidence": 90, "max_confidence": 50}, format="json"
    )
    assert backwards.status_code == 400 and "confidence range" in str(backwards.json())
    nameless = client.post(url("proficiency-set-list"), CREATE | {"name": " "}, format="json")
    assert nameless.status_code == 400 and "name" in str(nameless.json())
    too_big = client.post(url("proficiency-set-list"), CREATE | {"size": 201}, format="json")
    assert too_big.status_code == 400 and "size" in too_big.json()
    assert not ProficiencySet.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.PROFICIENCY_SET_CREATED).exists()


@pytest.mark.django_db
def test_a_set_is_assigned_to_trainees_and_groups_once_and_only_to_trainees(
    signed, pathologist, trainee, lab_staff, make_user
):
    year = Group.objects.create(name="Residents 2027")
    proficiency_set = build(pathologist)
    client = api_for(pathologist)
    assign = url("proficiency-set-assign", proficiency_set.pk)
    body = {"trainees": [trainee.pk], "groups": [year.pk]}
    first = client.post(assign, body, format="json")
    assert first.status_code == 200
    assert [(row["trainee"], row["group"]) for row in first.json()["assigned"]] == [
        ("trainee", None),
        (None, "Residents 2027"),
    ]
    assert client.post(assign, body, format="json").json() == {"assigned": []}
    not_trainee = client.post(assign, {"trainees": [lab_staff.pk]}, format="json")
    assert not_trainee.status_code == 400 and "Only trainees" in str(not_trainee.json())
    role_group = client.post(assign, {"groups": [Group.objects.get(name=Role.PATHOLOGIST).pk]}, format="json")
    assert role_group.status_code == 400 and "groups" in role_group.json()
    assert client.post(assign, {}, format="json").status_code == 400
    assert proficiency_set.assignments.count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.PROFICIENCY_SET_ASSIGNED).count() == 1
    detail = client.get(url("proficiency-set-detail", proficiency_set.pk)).json()
    assert {row["trainee"] or row["group"] for row in detail["assignments"]} == {"trainee", "Residents 2027"}


def take(client: APIClient, proficiency_set: ProficiencySet, answers: dict[str, str]) -> dict:
    """Start, answer each item as ``answers`` maps its reference (items left out stay unanswered),
    finish; the result's body."""
    attempt = client.post(url("my-proficiency-set-start", proficiency_set.pk)).json()
    for item in proficiency_set.items.all():
        if item.reference_label in answers:
            answer = {"item": item.pk, "label": answers[item.reference_label]}
            assert client.post(url("proficiency-attempt-answer", attempt["id"]), answer).status_code == 200
    finished = client.post(url("proficiency-attempt-finish", attempt["id"]))
    assert finished.status_code == 200
    return finished.json()


@pytest.mark.django_db
def test_the_pathologist_reads_every_trainees_results_and_the_cells_most_often_missed(
    signed, pathologist, trainee, make_user
):
    second = make_user("second-trainee", Role.TRAINEE)
    proficiency_set = build(pathologist)
    proficiency_set_assign(
        actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee, second], groups=[]
    )
    take(api_for(trainee), proficiency_set, {N: N, L: L})
    take(api_for(second), proficiency_set, {N: E, L: M})
    client = api_for(pathologist)
    results = client.get(url("proficiency-set-results", proficiency_set.pk)).json()
    assert sorted((row["trainee"], row["correct"]) for row in results["attempts"]) == [
        ("second-trainee", 0),
        ("trainee", 5),
    ]
    assert [entry["missed"] for entry in results["most_missed"]] == [1] * 5
    lymphocytes = [entry for entry in results["most_missed"] if entry["reference_label"] == L]
    assert all(entry["answers"] == {"Monocyte": 1} for entry in lymphocytes)
    only_second = client.get(
        url("proficiency-set-results", proficiency_set.pk), {"trainee": second.pk}
    ).json()
    assert [row["trainee"] for row in only_second["attempts"]] == ["second-trainee"]
    assert client.get(url("proficiency-set-results", proficiency_set.pk), {"trainee": "x"}).status_code == 400


# --- Trainees: taking a set ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_trainee_takes_a_set_and_reads_the_result_only_once_finished(signed, pathologist, trainee):
    proficiency_set = assigned_set(pathologist, trainee)
    client = api_for(trainee)
    mine = client.get(url("my-proficiency-set-list")).json()["results"]
    assert mine == [
        {
            "id": proficiency_set.pk,
            "name": "Hard cases",
            "time_limit_minutes": None,
            "cells": 5,
            "open_attempt": None,
            "finished_attempts": [],
        }
    ]
    started = client.post(url("my-proficiency-set-start", proficiency_set.pk))
    assert started.status_code == 200
    attempt = started.json()
    assert client.post(url("my-proficiency-set-start", proficiency_set.pk)).json()["id"] == attempt["id"]
    assert all(set(item) == {"id", "position", "image_url", "answer", "unsure"} for item in attempt["items"])
    answer_url = url("proficiency-attempt-answer", attempt["id"])
    items = {item.prediction_id: item for item in proficiency_set.items.all()}
    answers = {signed[0].pk: N, signed[1].pk: N, signed[2].pk: L, signed[3].pk: M}  # the fourth is wrong
    for prediction_id, label in answers.items():
        body = {"item": items[prediction_id].pk, "label": label, "unsure": label == M}
        assert client.post(answer_url, body, format="json").json() == body
    assert client.post(answer_url, {"item": items[signed[0].pk].pk, "label": "BASOPHIL"}).status_code == 400
    not_in_set = client.post(answer_url, {"item": 999_999, "label": N})
    assert not_in_set.status_code == 400 and "No such cell" in str(not_in_set.json())
    early = client.get(url("proficiency-attempt-result", attempt["id"]))
    assert early.status_code == 409 and "still in progress" in early.json()["detail"]
    result = client.post(url("proficiency-attempt-finish", attempt["id"])).json()
    assert (result["correct"], result["total"], result["answered"], result["unsure"]) == (3, 5, 4, 1)
    assert {row["label"]: (row["correct"], row["total"]) for row in result["classes"]} == {
        N: (2, 3),
        L: (1, 2),
        M: (0, 0),
        E: (0, 0),
    }
    assert result["confusion"][N] == {N: 2, L: 0, M: 0, E: 0, "none": 1}
    assert {
        (row["reference_label"], row["answer"], row["unsure"], row["model_label"]) for row in result["missed"]
    } == {
        (L, M, True, M),
        (N, "none", False, E),
    }
    assert client.get(url("proficiency-attempt-result", attempt["id"])).json() == result
    late = client.post(answer_url, {"item": items[signed[4].pk].pk, "label": N})
    assert late.status_code == 409 and "finished" in late.json()["detail"]
    assert client.post(url("proficiency-attempt-finish", attempt["id"])).status_code == 409
    assert ProficiencyAnswer.objects.count() == 4
    finished = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_ATTEMPT_FINISHED)
    assert finished.actor == trainee and finished.after["correct"] == 3
    listed = client.get(url("my-proficiency-set-list")).json()["results"][0]
    assert listed["finished_attempts"] == [attempt["id"]] and listed["open_attempt"] is None


@pytest.mark.django_db
def test_an_answer_after_the_time_limit_is_a_conflict_and_finishes_the_attempt(signed, pathologist, trainee):
    proficiency_set = assigned_set(pathologist, trainee)
    ProficiencySet.objects.filter(pk=proficiency_set.pk).update(time_limit_minutes=10)
    client = api_for(trainee)
    attempt = client.post(url("my-proficiency-set-start", proficiency_set.pk)).json()
    assert attempt["deadline"] is not None
    ProficiencyAttempt.objects.filter(pk=attempt["id"]).update(
        deadline=timezone.now() - datetime.timedelta(seconds=1)
    )
    item = proficiency_set.items.first()
    late = client.post(url("proficiency-attempt-answer", attempt["id"]), {"item": item.pk, "label": N})
    assert late.status_code == 409 and "time limit" in late.json()["detail"]
    stored = ProficiencyAttempt.objects.get(pk=attempt["id"])
    assert stored.finished_at == stored.deadline and not ProficiencyAnswer.objects.exists()
    assert client.get(url("proficiency-attempt-result", attempt["id"])).status_code == 200


@pytest.mark.django_db
def test_nothing_a_trainee_reaches_through_the_api_names_the_patient_slide_or_cell(
    signed, slide, pathologist, trainee
):
    proficiency_set = assigned_set(pathologist, trainee)
    client = api_for(trainee)
    attempt = client.post(url("my-proficiency-set-start", proficiency_set.pk)).json()
    item = proficiency_set.items.first()
    bodies = [
        attempt,
        client.get(url("my-proficiency-set-list")).json(),
        client.get(url("proficiency-attempt-list")).json(),
        client.get(url("proficiency-attempt-detail", attempt["id"])).json(),
        client.post(url("proficiency-attempt-answer", attempt["id"]), {"item": item.pk, "label": N}).json(),
        client.post(url("proficiency-attempt-finish", attempt["id"])).json(),
        client.get(url("proficiency-attempt-result", attempt["id"])).json(),
    ]
    filenames = [prediction.cell_image.original_filename for prediction in signed]
    cell_ids = [f"'cell_image': {prediction.cell_image_id}" for prediction in signed]
    secrets = ["Doe", "Jane", "MRN-5001", "S-5001", *filenames, *cell_ids, "/cell-images/", "/file/"]
    for body in bodies:
        text = str(body)
        for secret in secrets:
            assert secret not in text, (secret, text[:200])
    # Before finishing, no body holds the reference or the model's answer.
    for body in bodies[:5]:
        assert "reference_label" not in str(body) and "model_label" not in str(body)
    image = client.get(attempt["items"][0]["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert not Image.open(io.BytesIO(image.content)).info.get("exif")
    assert client.get(url("cell-image-file", item.cell_image_id)).status_code == 403
    other_set = build(pathologist)  # not assigned to the trainee
    other_item = other_set.items.first().pk
    assert client.get(url("my-proficiency-set-item-image", other_set.pk, other_item)).status_code == 404
    assert client.get(url("my-proficiency-set-item-image", proficiency_set.pk, other_item)).status_code == 404


# --- Roles ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_role_reaches_only_its_side(signed, pathologist, trainee, lab_staff, consultant, make_user):
    proficiency_set = assigned_set(pathologist, trainee)
    attempt = api_for(trainee).post(url("my-proficiency-set-start", proficiency_set.pk)).json()
    teaching = [url("proficiency-set-list"), url("proficiency-set-detail", proficiency_set.pk)]
    taking = [url("my-proficiency-set-list"), url("proficiency-attempt-detail", attempt["id"])]
    for user, refused in ((trainee, teaching), (pathologist, taking), (lab_staff, teaching + taking)):
        client = api_for(user)
        assert {u: client.get(u).status_code for u in refused} == dict.fromkeys(refused, 403), user
    consultant_client = api_for(consultant)
    assert all(consultant_client.get(u).status_code == 403 for u in teaching + taking)
    assert api_for(trainee).post(url("proficiency-set-list"), CREATE, format="json").status_code == 403
    other = make_user("other-trainee", Role.TRAINEE)
    other_client = api_for(other)
    assert other_client.post(url("my-proficiency-set-start", proficiency_set.pk)).status_code == 404
    proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[other], groups=[])
    item = proficiency_set.items.first()
    assert other_client.get(url("proficiency-attempt-detail", attempt["id"])).status_code == 404
    assert (
        other_client.post(
            url("proficiency-attempt-answer", attempt["id"]), {"item": item.pk, "label": N}
        ).status_code
        == 404
    )
    assert other_client.post(url("proficiency-attempt-finish", attempt["id"])).status_code == 404
    assert (
        not ProficiencyAnswer.objects.exists()
        and ProficiencyAttempt.objects.filter(finished_at=None).count() == 1
    )


def queries_of(client: APIClient, address: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(address).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_results_and_attempts_cost_the_same_queries_for_more_cells_and_more_attempts(
    signed, pathologist, trainee, make_user
):
    small = proficiency_set_create(actor=pathologist, name="Small", criteria=SourceCriteria(), size=2, seed=1)
    large = proficiency_set_create(actor=pathologist, name="Large", criteria=SourceCriteria(), size=5, seed=1)
    others = [make_user(f"trainee-{index}", Role.TRAINEE) for index in range(3)]
    proficiency_set_assign(actor=pathologist, proficiency_set=small, trainees=[trainee], groups=[])
    proficiency_set_assign(actor=pathologist, proficiency_set=large, trainees=[trainee, *others], groups=[])
    attempts = {}
    for who, proficiency_set in [(trainee, small), (trainee, large), *((other, large) for other in others)]:
        attempts[(who.pk, proficiency_set.pk)] = take(api_for(who), proficiency_set, {N: L, L: N})["attempt"]
    client, teacher = api_for(trainee), api_for(pathologist)
    result = [
        queries_of(client, url("proficiency-attempt-result", attempts[(trainee.pk, s.pk)]))
        for s in (small, large)
    ]
    detail = [
        queries_of(client, url("proficiency-attempt-detail", attempts[(trainee.pk, s.pk)]))
        for s in (small, large)
    ]
    results = [queries_of(teacher, url("proficiency-set-results", s.pk)) for s in (small, large)]
    sets = [queries_of(teacher, url("proficiency-set-detail", s.pk)) for s in (small, large)]
    assert (
        result[0] == result[1] and detail[0] == detail[1] and results[0] == results[1] and sets[0] == sets[1]
    )
    assert max(result + detail + results + sets) <= 15
