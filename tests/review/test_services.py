"""Review rules: reasons, supersession, bulk confirm, sign-off, locking and amendment."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from cases.services import SlideLockedError, cell_image_create, slide_update
from cases.uploads import UploadLimits, image_validate
from classifier.models import CellClass, InferenceJob, InferenceJobStatus, Prediction
from classifier.services import inference_job_create
from review.models import Review, ReviewDecision, SlideSignature
from review.services import (
    ReviewError,
    prediction_review,
    slide_amend,
    slide_bulk_confirm,
    slide_sign,
)
from tests.conftest import PASSWORD
from tests.factories import cell_image_make, distinct_png, model_version_make, reauth_request, reviews_make

pytestmark = pytest.mark.django_db


def events(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- Reviews ---------------------------------------------------------------------------------------------


def test_confirming_records_a_review_and_starts_the_slide_review(pathologist, slide, predictions):
    prediction = predictions[0]

    review = prediction_review(actor=pathologist, prediction=prediction, label=prediction.label)

    assert (review.decision, review.label, review.reviewer, review.reason) == (
        ReviewDecision.CONFIRMED,
        CellClass.NEUTROPHIL,
        pathologist,
        "",
    )
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    [event] = events(AuditAction.REVIEW_RECORDED)
    assert (event.actor, event.object_id, event.before) == (pathologist, str(review.pk), None)
    assert event.after["decision"] == "confirmed" and event.after["prediction_id"] == prediction.pk


def test_it_rejects_correction_without_reason(pathologist, predictions):
    with pytest.raises(ReviewError, match="needs a reason"):
        prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.MONOCYTE, reason="  ")

    assert not Review.objects.exists()
    assert not events(AuditAction.REVIEW_RECORDED)


def test_a_correction_keeps_the_prediction_unchanged(pathologist, predictions):
    prediction = predictions[3]

    review = prediction_review(
        actor=pathologist,
        prediction=prediction,
        label=CellClass.LYMPHOCYTE,
        reason="Round nucleus, scant cytoplasm",
    )

    assert review.decision == ReviewDecision.CORRECTED
    reloaded = Prediction.objects.get(pk=prediction.pk)
    assert (reloaded.label, reloaded.confidence) == (CellClass.MONOCYTE, 0.55)
    [event] = events(AuditAction.REVIEW_RECORDED)
    assert event.reason == "Round nucleus, scant cytoplasm"
    assert (event.after["predicted_label"], event.after["label"]) == ("MONOCYTE", "LYMPHOCYTE")


def test_a_newer_review_supersedes_the_older_which_stays_as_history(pathologist, make_user, predictions):
    second_pathologist = make_user("patho2", pathologist.role)
    prediction = predictions[3]
    first = prediction_review(actor=pathologist, prediction=prediction, label=CellClass.MONOCYTE)

    second = prediction_review(
        actor=second_pathologist, prediction=prediction, label=CellClass.LYMPHOCYTE, reason="Second look"
    )

    assert second.supersedes == first
    assert list(prediction.reviews.order_by("-id")) == [second, first]
    last_event = events(AuditAction.REVIEW_RECORDED)[-1]
    assert last_event.before == {"label": "MONOCYTE", "decision": "confirmed", "review_id": first.pk}


def test_reviews_cannot_be_changed_or_deleted(pathologist, predictions):
    review = prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)

    with pytest.raises(PermissionError):
        review.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        Review.objects.filter(pk=review.pk).update(label=CellClass.MONOCYTE)
    with pytest.raises(DatabaseError), transaction.atomic():
        Review.objects.filter(pk=review.pk).delete()
    assert Review.objects.get(pk=review.pk).label == CellClass.NEUTROPHIL


def test_lab_staff_cannot_review(lab_staff, predictions):
    with pytest.raises(PermissionDenied):
        prediction_review(actor=lab_staff, prediction=predictions[0], label=CellClass.NEUTROPHIL)
    assert not Review.objects.exists()


def test_only_the_newest_prediction_of_a_cell_can_be_reviewed(
    pathologist, slide, predictions, add_prediction
):
    newer_model = model_version_make("newer", review_threshold=0.8)
    add_prediction(slide, CellClass.MONOCYTE, 0.99, version=newer_model, cell_image=predictions[0].cell_image)

    with pytest.raises(ReviewError, match="newer prediction"):
        prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)


def test_a_draft_slide_takes_no_reviews(pathologist, slide, predictions):
    slide.status = SlideStatus.DRAFT
    slide.save()

    with pytest.raises(ReviewError):
        prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)


# --- Bulk confirm ------------------------------------------------------------------------------------------


def test_bulk_confirm_confirms_confident_unreviewed_cells_one_event_each(pathologist, predictions):
    prediction_review(actor=pathologist, prediction=predictions[0], label=CellClass.NEUTROPHIL)
    events_before = AuditEvent.objects.filter(action=AuditAction.REVIEW_RECORDED).count()

    summary = slide_bulk_confirm(actor=pathologist, slide=predictions[0].cell_image.slide)

    assert summary.confirmed == {"EOSINOPHIL": 0, "LYMPHOCYTE": 1, "MONOCYTE": 0, "NEUTROPHIL": 1}
    assert (summary.confirmed_total, summary.below_threshold, summary.already_reviewed) == (2, 2, 1)
    bulk_reviews = Review.objects.filter(bulk=True)
    assert sorted(bulk_reviews.values_list("prediction_id", flat=True)) == [
        predictions[1].pk,
        predictions[2].pk,
    ]
    assert all(review.decision == ReviewDecision.CONFIRMED for review in bulk_reviews)
    new_events = events(AuditAction.REVIEW_RECORDED)[events_before:]
    assert sorted(event.after["prediction_id"] for event in new_events) == sorted(
        [predictions[1].pk, predictions[2].pk]
    )
    assert all(event.after["bulk"] for event in new_events)
    assert not predictions[3].reviews.exists() and not predictions[4].reviews.exists()


def test_bulk_confirm_twice_confirms_nothing_more(pathologist, slide, predictions):
    slide_bulk_confirm(actor=pathologist, slide=slide)

    summary = slide_bulk_confirm(actor=pathologist, slide=slide)

    assert (summary.confirmed_total, summary.already_reviewed) == (0, 3)
    assert Review.objects.count() == 3


def test_lab_staff_cannot_bulk_confirm(lab_staff, slide, predictions):
    with pytest.raises(PermissionDenied):
        slide_bulk_confirm(actor=lab_staff, slide=slide)
    assert not Review.objects.exists()


# --- Sign-off, lock, amendment ---------------------------------------------------------------------------


def test_sign_off_is_refused_while_a_cell_has_no_review(pathologist, slide, predictions):
    reviews_make(predictions[:-1], pathologist)

    with pytest.raises(ReviewError, match="1 of 5 cells has no review"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )

    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    assert not SlideSignature.objects.exists()


def test_sign_off_is_refused_while_a_cell_has_no_prediction(pathologist, lab_staff, slide, predictions):
    reviews_make(predictions, pathologist)
    cell_image_make(slide, lab_staff, distinct_png(999), name="late.png")

    with pytest.raises(ReviewError, match="1 of 6 cells has no classification"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )


def test_a_wrong_password_is_refused_and_audited(pathologist, slide, predictions):
    reviews_make(predictions, pathologist)

    with pytest.raises(ReviewError, match="password"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password="not-my-password",
            request=reauth_request(),
            count_acknowledged=True,
        )

    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    assert not SlideSignature.objects.exists()
    [refusal] = events(AuditAction.SLIDE_SIGN_REFUSED)
    assert (refusal.actor, refusal.object_id, refusal.after["cause"]) == (
        pathologist,
        str(slide.pk),
        "wrong password",
    )


def test_wrong_sign_passwords_count_towards_the_login_lockout(pathologist, slide, predictions, settings):
    """Issue 11: 30 wrong tries at ~4/s, no lock. Now the login's lockout counts them."""
    from axes.models import AccessAttempt

    reviews_make(predictions, pathologist)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        with pytest.raises(ReviewError, match="password is not correct|locked"):
            slide_sign(
                actor=pathologist,
                slide=slide,
                password="guess",
                request=reauth_request("192.0.2.66"),
                count_acknowledged=True,
            )
    attempt = AccessAttempt.objects.get(username="patho", ip_address="192.0.2.66")
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT

    with pytest.raises(ReviewError, match="locked"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request("192.0.2.66"),
            count_acknowledged=True,
        )

    assert not SlideSignature.objects.exists()
    assert [event.after["cause"] for event in events(AuditAction.SLIDE_SIGN_REFUSED)][-1] == (
        "account locked out"
    )


def test_the_slide_state_is_checked_before_the_password(pathologist, slide, predictions):
    """Issue 11: a right password got a different message than a wrong one on an unsignable slide."""
    reviews_make(predictions[:-1], pathologist)
    answers = []
    for password in ("wrong-password", PASSWORD):
        with pytest.raises(ReviewError) as refused:
            slide_sign(
                actor=pathologist,
                slide=slide,
                password=password,
                request=reauth_request(),
                count_acknowledged=True,
            )
        answers.append(refused.value.messages)
    assert (
        answers[0]
        == answers[1]
        == ["The slide cannot be signed yet: 1 of 5 cells has no review yet; review or exclude them."]
    )
    assert not events(AuditAction.SLIDE_SIGN_REFUSED)


def test_amending_needs_the_password_and_a_wrong_one_is_refused_audited_and_counted(
    pathologist, slide, predictions
):
    from axes.models import AccessAttempt

    reviews_make(predictions, pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    with pytest.raises(ReviewError, match="password is not correct; the slide was not reopened"):
        slide_amend(
            actor=pathologist, slide=slide, reason="Recount", password="guess", request=reauth_request()
        )

    slide.refresh_from_db()
    assert slide.status == SlideStatus.SIGNED
    assert not slide.amendments.exists()
    [refusal] = events(AuditAction.SLIDE_AMEND_REFUSED)
    assert (refusal.actor, refusal.after["cause"]) == (pathologist, "wrong password")
    assert AccessAttempt.objects.get(username="patho").failures_since_start == 1


def test_signing_records_name_time_meaning_and_the_verified_differential(pathologist, slide, predictions):
    reviews_make(predictions[:-1], pathologist)
    prediction_review(
        actor=pathologist, prediction=predictions[-1], label=CellClass.NEUTROPHIL, reason="Lobed"
    )

    signature = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    assert (signature.version, signature.signer, signature.signer_full_name, signature.meaning) == (
        1,
        pathologist,
        "Paul Patho",
        "reviewed and approved",
    )
    assert signature.differential["total"] == 5
    neutrophils = signature.differential["classes"]["NEUTROPHIL"]
    assert (neutrophils["count"], neutrophils["percent"], neutrophils["flag"]) == (3, 60.0, "")
    assert neutrophils["loinc"] == {"code": "26511-6", "display": "Neutrophils/100 leukocytes in Blood"}
    eosinophils = signature.differential["classes"]["EOSINOPHIL"]
    assert (eosinophils["count"], eosinophils["percent"], eosinophils["flag"]) == (0, 0.0, "low")
    assert signature.differential["target"] == {
        "count": 100,
        "source": "lab default",
        "counted": 5,
        "reached": False,
        "summary": "5 / 100 WBC counted",
        "acknowledged": True,
    }
    slide.refresh_from_db()
    assert slide.status == SlideStatus.SIGNED and slide.is_locked
    [event] = events(AuditAction.SLIDE_SIGNED)
    assert event.after["signer_full_name"] == "Paul Patho" and event.after["version"] == 1


def test_a_signed_slide_refuses_reviews_uploads_and_edits(pathologist, lab_staff, slide, predictions):
    reviews_make(predictions, pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    reviews_before = Review.objects.count()

    with pytest.raises(SlideLockedError):
        prediction_review(
            actor=pathologist, prediction=predictions[3], label=CellClass.LYMPHOCYTE, reason="x"
        )
    with pytest.raises(SlideLockedError):
        slide_bulk_confirm(actor=pathologist, slide=slide)
    image = image_validate(
        data=distinct_png(998), original_filename="x.png", limits=UploadLimits.from_settings()
    )
    with pytest.raises(SlideLockedError):
        cell_image_create(actor=lab_staff, slide=slide, image=image)
    with pytest.raises(SlideLockedError):
        slide_update(actor=lab_staff, slide=slide, changes={"notes": "changed"})
    assert Review.objects.count() == reviews_before
    assert slide.cell_images.count() == 5


def test_lab_staff_cannot_sign(lab_staff, pathologist, slide, predictions):
    reviews_make(predictions, pathologist)

    with pytest.raises(PermissionDenied):
        slide_sign(actor=lab_staff, slide=slide, password=PASSWORD, request=reauth_request())
    assert not SlideSignature.objects.exists()


def test_an_amendment_needs_a_reason(pathologist, slide, predictions):
    reviews_make(predictions, pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    with pytest.raises(ReviewError, match="reason"):
        slide_amend(actor=pathologist, slide=slide, reason=" ", password=PASSWORD, request=reauth_request())

    slide.refresh_from_db()
    assert slide.status == SlideStatus.SIGNED


def test_an_amendment_reopens_the_slide_and_the_next_signature_is_a_new_version(
    pathologist, slide, predictions
):
    reviews_make(predictions, pathologist)
    first = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    amendment = slide_amend(
        actor=pathologist,
        slide=slide,
        reason="Cell 4 is a lymphocyte",
        password=PASSWORD,
        request=reauth_request(),
    )
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    correction = prediction_review(
        actor=pathologist, prediction=predictions[3], label=CellClass.LYMPHOCYTE, reason="Re-read"
    )
    second = slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    assert (amendment.signature, amendment.reason) == (first, "Cell 4 is a lymphocyte")
    assert correction.supersedes is not None
    assert list(SlideSignature.objects.filter(slide=slide).values_list("version", flat=True)) == [2, 1]
    assert first.differential["classes"]["MONOCYTE"]["count"] == 1
    assert second.differential["classes"]["MONOCYTE"]["count"] == 0
    [event] = events(AuditAction.SLIDE_AMENDED)
    assert (event.reason, event.before["signature_version"]) == ("Cell 4 is a lymphocyte", 1)


def test_only_a_signed_slide_can_be_amended(pathologist, slide, predictions):
    with pytest.raises(ReviewError, match="Only a signed slide"):
        slide_amend(
            actor=pathologist, slide=slide, reason="Why not", password=PASSWORD, request=reauth_request()
        )


def test_sign_off_waits_for_a_running_classification_job(pathologist, slide, predictions):
    reviews_make(predictions, pathologist)
    job = predictions[0].job
    InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJobStatus.RUNNING)

    with pytest.raises(ReviewError, match="still running"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )
    assert not SlideSignature.objects.exists()


def test_a_signed_slide_is_not_re_classified(pathologist, lab_staff, slide, predictions):
    reviews_make(predictions, pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    jobs_before = InferenceJob.objects.count()

    with pytest.raises(SlideLockedError):
        inference_job_create(actor=lab_staff, slide=slide)
    assert InferenceJob.objects.count() == jobs_before
