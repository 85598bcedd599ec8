"""Proficiency sets: built from verified cells of signed slides, assigned to trainees, taken cell by
cell, scored against the reference snapshot; what trainees can and cannot see; audit and export."""

import csv
import datetime
import io

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.roles import Role
from audit.models import AuditAction, AuditEvent
from classifier.gradcam import gradcam_compute
from classifier.models import CellClass, Prediction
from review.models import (
    ProficiencyAnswer,
    ProficiencyAttempt,
    ProficiencySet,
    ProficiencySetItem,
)
from review.services import prediction_review, slide_amend, slide_sign
from review.teaching_selectors import (
    NO_ANSWER,
    SourceCriteria,
    proficiency_attempt_result,
    proficiency_set_results,
)
from review.teaching_services import (
    TeachingError,
    proficiency_answer_record,
    proficiency_attempt_finish,
    proficiency_attempt_start,
    proficiency_set_assign,
    proficiency_set_create,
)
from tests.conftest import PASSWORD
from tests.factories import reauth_request, review_make

N, L, M, E = CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE, CellClass.MONOCYTE, CellClass.EOSINOPHIL


@pytest.fixture
def signed(slide, predictions, pathologist) -> list[Prediction]:
    """The five cells verified and the slide signed; the model was wrong about the monocyte (a
    lymphocyte) and the eosinophil (a neutrophil)."""
    neutrophil_1, neutrophil_2, lymphocyte, monocyte, eosinophil = predictions
    for prediction in (neutrophil_1, neutrophil_2, lymphocyte):
        review_make(prediction, pathologist)
    review_make(monocyte, pathologist, L, reason="Round nucleus, scant cytoplasm")
    review_make(eosinophil, pathologist, N, reason="No orange granules")
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    return predictions


def build(pathologist, **criteria) -> ProficiencySet:  # noqa: ANN001
    return proficiency_set_create(
        actor=pathologist, name="Hard cases", criteria=SourceCriteria(**criteria), size=10, seed=1
    )


def assigned_set(pathologist, trainee, **criteria) -> ProficiencySet:  # noqa: ANN001
    proficiency_set = build(pathologist, **criteria)
    proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee], groups=[])
    return proficiency_set


def answer_all(trainee, attempt: ProficiencyAttempt, answers: dict[str, str]) -> None:  # noqa: ANN001
    """``answers``: the trainee's class for each reference class."""
    for item in attempt.proficiency_set.items.all():
        proficiency_answer_record(
            actor=trainee, attempt=attempt, item=item, label=answers[item.reference_label], unsure=False
        )


# --- Building a set ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_set_holds_only_verified_cells_of_signed_slides_with_the_verified_label_as_reference(
    signed, make_slide, add_prediction, pathologist
):
    unsigned = make_slide("S-5002")
    add_prediction(unsigned, N, 0.99)  # verified nowhere: never in a set
    proficiency_set = build(pathologist)
    items = list(proficiency_set.items.order_by("position"))
    assert sorted(item.prediction_id for item in items) == sorted(p.pk for p in signed)
    by_prediction = {item.prediction_id: item for item in items}
    assert by_prediction[signed[3].pk].reference_label == L
    assert by_prediction[signed[3].pk].model_label == M
    assert by_prediction[signed[3].pk].model_wrong
    assert [item.position for item in items] == [1, 2, 3, 4, 5]
    event = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_SET_CREATED)
    assert event.object_id == str(proficiency_set.pk) and event.after["cells"] == 5
    assert sorted(event.after["cell_image_ids"]) == sorted(p.cell_image_id for p in signed)


@pytest.mark.django_db
def test_the_filters_choose_class_confidence_and_cells_the_model_got_wrong(signed, pathologist):
    wrong = build(pathologist, model_wrong_only=True)
    assert {item.prediction_id for item in wrong.items.all()} == {signed[3].pk, signed[4].pk}
    neutrophils = build(pathologist, label=N)  # by the verified class: the eosinophil call counts
    assert {item.prediction_id for item in neutrophils.items.all()} == {
        signed[0].pk,
        signed[1].pk,
        signed[4].pk,
    }
    confident = build(pathologist, min_confidence=0.9, max_confidence=0.95)
    assert {item.prediction_id for item in confident.items.all()} == {signed[1].pk, signed[2].pk}


@pytest.mark.django_db
def test_a_set_matching_no_cell_is_refused_and_nothing_is_written(signed, pathologist):
    with pytest.raises(TeachingError, match="No verified cell"):
        build(pathologist, label=E)
    with pytest.raises(TeachingError, match="confidence range"):
        build(pathologist, min_confidence=0.9, max_confidence=0.5)
    assert not ProficiencySet.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.PROFICIENCY_SET_CREATED).exists()


@pytest.mark.django_db
def test_only_pathologists_build_and_assign_sets(signed, pathologist, lab_staff, trainee):
    with pytest.raises(PermissionDenied):
        build(lab_staff)
    with pytest.raises(PermissionDenied):
        build(trainee)
    proficiency_set = build(pathologist)
    with pytest.raises(PermissionDenied):
        proficiency_set_assign(actor=trainee, proficiency_set=proficiency_set, trainees=[trainee], groups=[])


@pytest.mark.django_db
def test_an_amendment_after_the_set_was_built_does_not_change_its_reference(
    signed, slide, pathologist, trainee
):
    proficiency_set = assigned_set(pathologist, trainee)
    slide_amend(actor=pathologist, slide=slide, reason="Recount", password=PASSWORD, request=reauth_request())
    prediction_review(actor=pathologist, prediction=signed[3], label=M, reason="Monocyte after all")
    item = proficiency_set.items.get(prediction=signed[3])
    assert item.reference_label == L


# --- Assigning ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_set_is_assigned_to_trainees_and_groups_once_each_and_audited(
    signed, pathologist, trainee, make_user
):
    year = Group.objects.create(name="Residents 2027")
    member = make_user("resident", Role.TRAINEE)
    member.groups.add(year)
    proficiency_set = build(pathologist)
    created = proficiency_set_assign(
        actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee], groups=[year]
    )
    again = proficiency_set_assign(
        actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee], groups=[year]
    )
    assert len(created) == 2 and again == []
    event = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_SET_ASSIGNED)
    assert event.after == {"trainees": ["trainee"], "groups": ["Residents 2027"]}
    attempt = proficiency_attempt_start(actor=member, proficiency_set=proficiency_set)  # through the group
    assert attempt.trainee == member


@pytest.mark.django_db
def test_only_trainees_are_assigned(signed, pathologist, lab_staff):
    proficiency_set = build(pathologist)
    with pytest.raises(TeachingError, match="Only trainees"):
        proficiency_set_assign(
            actor=pathologist, proficiency_set=proficiency_set, trainees=[lab_staff], groups=[]
        )
    with pytest.raises(TeachingError, match="at least one"):
        proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[], groups=[])
    assert not proficiency_set.assignments.exists()


# --- Taking a set -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_attempt_is_scored_per_class_with_a_confusion_matrix_and_the_missed_cells(
    signed, pathologist, trainee
):
    proficiency_set = assigned_set(pathologist, trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    assert proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set) == attempt  # resumed
    items = {item.prediction_id: item for item in proficiency_set.items.all()}
    answers = {signed[0].pk: N, signed[1].pk: N, signed[2].pk: L, signed[3].pk: M}  # the fourth is wrong
    for prediction_id, label in answers.items():
        proficiency_answer_record(
            actor=trainee, attempt=attempt, item=items[prediction_id], label=label, unsure=label == M
        )
    proficiency_attempt_finish(actor=trainee, attempt=attempt)  # the fifth unanswered
    result = proficiency_attempt_result(attempt=ProficiencyAttempt.objects.get(pk=attempt.pk))
    assert (result.correct, result.total, result.answered, result.unsure) == (3, 5, 4, 1)
    scores = {score.label: (score.correct, score.total) for score in result.classes}
    assert scores == {N: (2, 3), L: (1, 2), M: (0, 0), E: (0, 0)}
    assert result.confusion[L] == {N: 0, L: 1, M: 1, E: 0, NO_ANSWER: 0}
    assert result.confusion[N] == {N: 2, L: 0, M: 0, E: 0, NO_ANSWER: 1}
    assert {(m.item.prediction_id, m.answer, m.unsure) for m in result.missed} == {
        (signed[3].pk, M, True),
        (signed[4].pk, NO_ANSWER, False),
    }
    started = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_ATTEMPT_STARTED)
    finished = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_ATTEMPT_FINISHED)
    assert started.object_id == finished.object_id == str(attempt.pk)
    assert finished.after == {
        "set_id": proficiency_set.pk,
        "correct": 3,
        "total": 5,
        "answered": 4,
        "unsure": 1,
        "time_limit_ran_out": False,
    }


@pytest.mark.django_db
def test_a_finished_attempt_takes_no_more_answers_and_a_new_one_starts_fresh(signed, pathologist, trainee):
    proficiency_set = assigned_set(pathologist, trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    answer_all(trainee, attempt, {N: N, L: L, M: M, E: E})
    proficiency_attempt_finish(actor=trainee, attempt=attempt)
    item = proficiency_set.items.first()
    with pytest.raises(TeachingError, match="finished"):
        proficiency_answer_record(actor=trainee, attempt=attempt, item=item, label=N)
    second = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    assert second != attempt and not second.answers.exists()


@pytest.mark.django_db
def test_the_time_limit_finishes_the_attempt_and_refuses_late_answers(signed, pathologist, trainee):
    proficiency_set = proficiency_set_create(
        actor=pathologist, name="Timed", criteria=SourceCriteria(), size=5, time_limit_minutes=10
    )
    proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee], groups=[])
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    assert attempt.deadline == attempt.started_at + datetime.timedelta(minutes=10)
    ProficiencyAttempt.objects.filter(pk=attempt.pk).update(
        deadline=timezone.now() - datetime.timedelta(seconds=1)
    )
    attempt.refresh_from_db()
    with pytest.raises(TeachingError, match="time limit"):
        proficiency_answer_record(actor=trainee, attempt=attempt, item=proficiency_set.items.first(), label=N)
    attempt.refresh_from_db()
    assert attempt.finished_at == attempt.deadline
    assert not ProficiencyAnswer.objects.exists()
    assert AuditEvent.objects.get(action=AuditAction.PROFICIENCY_ATTEMPT_FINISHED).after["time_limit_ran_out"]


@pytest.mark.django_db
def test_a_trainee_cannot_take_a_set_not_assigned_to_them_nor_answer_for_another(
    signed, pathologist, trainee, make_user
):
    other = make_user("other-trainee", Role.TRAINEE)
    proficiency_set = assigned_set(pathologist, trainee)
    with pytest.raises(PermissionDenied):
        proficiency_attempt_start(actor=other, proficiency_set=proficiency_set)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[other], groups=[])
    with pytest.raises(PermissionDenied):
        proficiency_answer_record(actor=other, attempt=attempt, item=proficiency_set.items.first(), label=N)


@pytest.mark.django_db
def test_the_set_results_rank_the_cells_most_often_missed(signed, pathologist, trainee, make_user):
    second = make_user("second-trainee", Role.TRAINEE)
    proficiency_set = build(pathologist)
    proficiency_set_assign(
        actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee, second], groups=[]
    )
    for who, answers in ((trainee, {N: N, L: M}), (second, {N: E, L: M})):
        attempt = proficiency_attempt_start(actor=who, proficiency_set=proficiency_set)
        answer_all(who, attempt, answers)
        proficiency_attempt_finish(actor=who, attempt=attempt)
    results, most_missed = proficiency_set_results(proficiency_set=proficiency_set)
    assert sorted(result.correct for result in results) == [0, 3]
    assert [entry.missed for entry in most_missed][:2] == [2, 2]
    lymphocytes = [entry for entry in most_missed if entry.item.reference_label == L]
    assert all(entry.answers == {"Monocyte": 2} for entry in lymphocytes)


# --- Pages: what a trainee sees ---------------------------------------------------------------------------


def trainee_client(trainee) -> Client:  # noqa: ANN001
    client = Client()
    client.force_login(trainee)
    return client


@pytest.mark.django_db
def test_no_page_or_url_a_trainee_reaches_names_the_patient_slide_or_cell(
    signed, slide, pathologist, trainee
):
    proficiency_set = assigned_set(pathologist, trainee)
    client = trainee_client(trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    pages = [
        client.get(reverse("home")),
        client.get(reverse("teaching:my_sets")),
        client.get(reverse("teaching:attempt_take", args=[attempt.pk])),
    ]
    client.post(reverse("teaching:attempt_finish", args=[attempt.pk]))
    pages.append(client.get(reverse("teaching:attempt_result", args=[attempt.pk])))
    filenames = [prediction.cell_image.original_filename for prediction in signed]
    secrets = ["Doe", "Jane", "MRN-5001", "S-5001", *filenames, f"/cells/{signed[0].cell_image_id}/file"]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        for secret in secrets:
            assert secret not in html, (secret, page.request["PATH_INFO"])
    assert 'id="slide-counts"' not in pages[0].content.decode()  # not even the lab's slide counts
    # Neither the model's answer nor the reference is in the page before the end.
    items = pages[2].context["take_data"]["items"]
    assert len(items) == 5 and all(
        set(item) == {"id", "position", "image_url", "answer", "unsure"} for item in items
    )
    assert "probabilit" not in pages[2].content.decode()


@pytest.mark.django_db
def test_the_cell_image_comes_through_the_set_without_metadata(signed, pathologist, trainee, lab_staff):
    proficiency_set = assigned_set(pathologist, trainee)
    item = proficiency_set.items.first()
    url = reverse("teaching:item_image", args=[proficiency_set.pk, item.pk])
    response = trainee_client(trainee).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "Content-Disposition" not in response
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (24, 18) and not image.info.get("exif")
    cell_url = reverse("cases:cell_image_file", args=[item.cell_image_id])
    assert trainee_client(trainee).get(cell_url).status_code == 403
    other_set = build(pathologist)  # not assigned to the trainee
    other_url = reverse("teaching:item_image", args=[other_set.pk, other_set.items.first().pk])
    assert trainee_client(trainee).get(other_url).status_code == 404
    wrong_pair = reverse("teaching:item_image", args=[proficiency_set.pk, other_set.items.first().pk])
    assert trainee_client(trainee).get(wrong_pair).status_code == 404
    assert trainee_client(lab_staff).get(url).status_code == 403


@pytest.mark.django_db
def test_grad_cam_opens_to_the_trainee_only_after_finishing(signed, pathologist, trainee, monkeypatch):
    from classifier.tasks import gradcam_compute_task

    monkeypatch.setattr(gradcam_compute_task, "delay", lambda *args: None)
    proficiency_set = assigned_set(pathologist, trainee)
    item = proficiency_set.items.first()
    url = reverse("teaching:item_gradcam_request", args=[proficiency_set.pk, item.pk])
    client = trainee_client(trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    assert client.post(url).status_code == 404
    client.post(reverse("teaching:attempt_finish", args=[attempt.pk]))
    response = client.post(url)
    assert response.status_code == 202 and response.json() == {"status": "queued"}
    assert (
        client.get(reverse("teaching:item_gradcam", args=[proficiency_set.pk, item.pk])).json()["status"]
        == "queued"
    )


@pytest.mark.django_db
def test_answers_post_from_the_take_page_and_bad_ones_are_refused(signed, pathologist, trainee):
    proficiency_set = assigned_set(pathologist, trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    item = proficiency_set.items.first()
    client = trainee_client(trainee)
    url = reverse("teaching:attempt_answer", args=[attempt.pk])
    ok = client.post(url, {"item": item.pk, "label": L, "unsure": "1"})
    assert ok.status_code == 200 and ok.json() == {"item": item.pk, "label": L, "unsure": True}
    assert client.post(url, {"item": item.pk, "label": "BASOPHIL"}).status_code == 400
    assert client.post(url, {"item": "x", "label": L}).status_code == 400
    answer = ProficiencyAnswer.objects.get()
    assert (answer.label, answer.unsure) == (L, True)


@pytest.mark.django_db
def test_the_pathologist_sees_results_and_exports_them_as_safe_csv(
    signed, pathologist, trainee, pathologist_client, make_user
):
    proficiency_set = assigned_set(pathologist, trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    answer_all(trainee, attempt, {N: N, L: M})
    proficiency_attempt_finish(actor=trainee, attempt=attempt)
    ProficiencySet.objects.filter(pk=proficiency_set.pk).update(name='=HYPERLINK("x")')
    detail = pathologist_client.get(reverse("teaching:set_detail", args=[proficiency_set.pk]))
    assert detail.status_code == 200 and "3 / 5" in detail.content.decode()
    response = pathologist_client.get(reverse("teaching:set_results_export", args=[proficiency_set.pk]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 5 and {row["trainee"] for row in rows} == {"trainee"}
    assert rows[0]["set"].startswith("'=")
    assert sum(row["correct"] == "True" for row in rows) == 3
    event = AuditEvent.objects.get(action=AuditAction.PROFICIENCY_RESULTS_EXPORTED)
    assert event.after == {"format": "csv", "rows": 5}
    lab = make_user("lab-2", Role.LAB_STAFF)
    client = Client()
    client.force_login(lab)
    assert client.get(reverse("teaching:set_results_export", args=[proficiency_set.pk])).status_code == 403


@pytest.mark.django_db
def test_the_create_page_builds_a_set_and_a_bad_one_changes_nothing(signed, pathologist_client):
    url = reverse("teaching:set_create")
    data = {"name": "Wrong calls", "label": "", "min_confidence": 0, "max_confidence": 100, "size": 3}
    response = pathologist_client.post(url, data | {"model_wrong_only": "on"})
    proficiency_set = ProficiencySet.objects.get()
    assert response.status_code == 302 and proficiency_set.items.count() == 2
    refused = pathologist_client.post(url, data | {"label": E})
    assert refused.status_code == 400 and ProficiencySet.objects.count() == 1
    assert ProficiencySetItem.objects.count() == 2


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_pages_cost_the_same_queries_for_more_cells_and_more_attempts(
    signed, pathologist, pathologist_client, trainee, make_user
):
    small = proficiency_set_create(actor=pathologist, name="Small", criteria=SourceCriteria(), size=2, seed=1)
    large = proficiency_set_create(actor=pathologist, name="Large", criteria=SourceCriteria(), size=5, seed=1)
    others = [make_user(f"trainee-{index}", Role.TRAINEE) for index in range(3)]
    proficiency_set_assign(actor=pathologist, proficiency_set=small, trainees=[trainee], groups=[])
    proficiency_set_assign(actor=pathologist, proficiency_set=large, trainees=[trainee, *others], groups=[])
    finished = {}
    for who, proficiency_set in [(trainee, small), (trainee, large), *((other, large) for other in others)]:
        attempt = proficiency_attempt_start(actor=who, proficiency_set=proficiency_set)
        answer_all(who, attempt, {N: L, L: N})  # everything missed
        finished[(who.pk, proficiency_set.pk)] = proficiency_attempt_finish(actor=who, attempt=attempt)
    client = trainee_client(trainee)
    result = [
        queries_of(client, reverse("teaching:attempt_result", args=[finished[(trainee.pk, s.pk)].pk]))
        for s in (small, large)
    ]
    take = []
    for proficiency_set in (small, large):
        attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
        take.append(queries_of(client, reverse("teaching:attempt_take", args=[attempt.pk])))
    detail = [
        queries_of(pathologist_client, reverse("teaching:set_detail", args=[s.pk])) for s in (small, large)
    ]
    assert result[0] == result[1] and take[0] == take[1] and detail[0] == detail[1]
    assert max(result + take + detail) <= 25


@pytest.mark.django_db
def test_a_missed_cells_grad_cam_is_computed_by_the_worker_and_served_through_the_set(
    make_slide, add_prediction, pathologist, trainee, tiny_model_version
):
    slide = make_slide("S-6001")
    prediction = add_prediction(slide, N, 0.8, version=tiny_model_version)
    review_make(prediction, pathologist, L, reason="Lymphocyte")
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    proficiency_set = assigned_set(pathologist, trainee)
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    proficiency_attempt_finish(actor=trainee, attempt=attempt)
    item = proficiency_set.items.get()
    client = trainee_client(trainee)
    url = reverse("teaching:item_gradcam", args=[proficiency_set.pk, item.pk])
    page = client.get(reverse("teaching:attempt_result", args=[attempt.pk])).content.decode()
    assert url in page  # the missed cell offers its overlay
    client.post(reverse("teaching:item_gradcam_request", args=[proficiency_set.pk, item.pk]))
    assert client.get(url).status_code == 202
    # What the worker does with the queued row (the enqueue itself waits for a commit).
    gradcam_compute(gradcam_id=item.prediction.gradcam.pk)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).format == "PNG"


@pytest.mark.django_db
def test_a_trainee_opens_no_other_trainees_attempt(signed, pathologist, trainee, make_user):
    other = make_user("other-trainee", Role.TRAINEE)
    proficiency_set = assigned_set(pathologist, trainee)
    proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[other], groups=[])
    attempt = proficiency_attempt_start(actor=trainee, proficiency_set=proficiency_set)
    client = trainee_client(other)
    assert client.get(reverse("teaching:attempt_take", args=[attempt.pk])).status_code == 404
    answer = client.post(reverse("teaching:attempt_answer", args=[attempt.pk]), {"item": 1, "label": N})
    assert answer.status_code == 404 and not ProficiencyAnswer.objects.exists()
    proficiency_attempt_finish(actor=trainee, attempt=attempt)
    assert client.get(reverse("teaching:attempt_result", args=[attempt.pk])).status_code == 404
    assert client.post(reverse("teaching:attempt_finish", args=[attempt.pk])).status_code == 404
