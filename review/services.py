"""Pathologist review: verdicts on predictions, cell exclusions and classification retries, bulk
confirm, sign-off, amendment, export records.

Every write locks the slide row first, so a review can never slip in beside a concurrent sign-off,
and writes its audit event in the same transaction. Reviews, exclusions, signatures and amendments
are append-only rows (the database refuses changes).
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.services import ReauthenticationFailed, user_reauthenticate
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import CellImage, FieldImage, Slide, SlideStatus
from cases.selectors import patient_identity
from cases.services import FieldCellCrop, field_cell_add, slide_ensure_unlocked, slide_status_change
from cases.uploads import UploadRejected
from classifier.adapter import ImageDecodeError, ModelLoadError, field_box_crop
from classifier.domain import slide_auto_acceptable_ids, slide_domain
from classifier.models import INFERENCE_JOB_FINISHED, CellClass, InferenceJob, Prediction
from classifier.services import inference_job_create, model_version_active
from core.permissions import actor_permission_require
from review.consult_selectors import slide_consults_summary, slide_open_consults
from review.models import (
    CellExclusion,
    Counting,
    CountingSettings,
    DifferentialClass,
    ExclusionCategory,
    Review,
    ReviewDecision,
    SlideAmendment,
    SlideSignature,
)
from review.selectors import (
    cell_exclusion_current,
    class_names,
    correction_choices,
    current_predictions,
    prediction_is_current,
    review_current,
    slide_cells_to_retry,
    slide_count_target,
    slide_counted_model_versions,
    slide_differential,
    slide_review_progress,
    slide_signature_latest,
)

REVIEWABLE_STATUSES = frozenset({SlideStatus.SUBMITTED, SlideStatus.READY_FOR_REVIEW, SlideStatus.IN_REVIEW})


class ReviewError(ValidationError):
    """The review, sign-off or amendment is not allowed in the slide's current state."""


def _slide_lock_for_review(slide_id: int) -> Slide:
    """The slide row, locked until the transaction ends, after checking it takes reviews."""
    slide = Slide.objects.select_for_update().get(pk=slide_id)
    slide_ensure_unlocked(slide)
    if slide.status not in REVIEWABLE_STATUSES:
        raise ReviewError(f"A {slide.get_status_display().lower()} slide has no predictions to review yet.")
    return slide


def _review_write(
    *,
    actor: User,
    prediction: Prediction,
    label: str,
    reason: str,
    bulk: bool,
    slide: Slide,
    audit_extra: dict[str, Any] | None = None,
) -> Review:
    previous = review_current(prediction)
    decision = ReviewDecision.CONFIRMED if label == prediction.label else ReviewDecision.CORRECTED
    if decision == ReviewDecision.CORRECTED and not reason:
        names = class_names()
        raise ReviewError(
            f"Say why the cell is {names.get(label, label).lower()} and not "
            f"{names.get(prediction.label, prediction.label).lower()}: a correction needs a reason."
        )
    review = Review.objects.create(
        prediction=prediction,
        supersedes=previous,
        reviewer=actor,
        label=label,
        decision=decision,
        reason=reason,
        bulk=bulk,
        bulk_threshold=prediction.cell_review_threshold if bulk else None,
    )
    audit_event_record(
        action=AuditAction.REVIEW_RECORDED,
        actor=actor,
        target=review,
        before={"label": previous.label, "decision": previous.decision, "review_id": previous.pk}
        if previous
        else None,
        after={
            "slide_id": slide.pk,
            "cell_image_id": prediction.cell_image_id,
            "prediction_id": prediction.pk,
            "predicted_label": prediction.label,
            "label": label,
            "decision": decision.value,
            "bulk": bulk,
            "verification": review.verification,
            **(audit_extra or {}),
        },
        reason=reason,
    )
    return review


def _slide_start_review(*, actor: User, slide: Slide) -> Slide:
    if slide.status in (SlideStatus.SUBMITTED, SlideStatus.READY_FOR_REVIEW):
        return slide_status_change(actor=actor, slide=slide, to_status=SlideStatus.IN_REVIEW)
    return slide


@transaction.atomic
def prediction_review(*, actor: User, prediction: Prediction, label: str, reason: str = "") -> Review:
    """Record the final label of one cell; a label other than the predicted one needs a reason.

    A newer review supersedes the cell's previous one (kept as history). The first review of a
    submitted or ready slide moves it to "in review".
    """
    actor_permission_require(actor, "review.add_review")
    if label not in dict(correction_choices()):
        raise ReviewError(f"{label!r} is not one of the lab's active classes.")
    slide = _slide_lock_for_review(prediction.cell_image.slide_id)
    if not prediction_is_current(prediction):
        raise ReviewError("A newer prediction exists for this cell; review that one.")
    if _is_excluded(prediction.cell_image):
        raise ReviewError("This cell is excluded from the differential; include it again to review it.")
    slide = _slide_start_review(actor=actor, slide=slide)
    return _review_write(
        actor=actor, prediction=prediction, label=label, reason=reason.strip(), bulk=False, slide=slide
    )


@dataclass(frozen=True)
class BulkConfirmSummary:
    confirmed: dict[str, int]
    below_threshold: int
    already_reviewed: int

    @property
    def confirmed_total(self) -> int:
        return sum(self.confirmed.values())


@transaction.atomic
def slide_bulk_confirm(*, actor: User, slide: Slide) -> BulkConfirmSummary:
    """Confirm every unreviewed cell that may be accepted without review: at or above its own
    review threshold (its nearest training source's, else its model's), the cell and its slide
    inside the model's validated domain
    (``classifier.domain``). Refused outright on a slide outside the domain (or of unknown domain).

    One review and one audit event per cell; the other cells are left for one-by-one review, cells
    already reviewed keep their review.
    """
    actor_permission_require(actor, "review.add_review")
    slide = _slide_lock_for_review(slide.pk)
    if not slide_domain(slide=slide).in_domain:
        raise ReviewError(
            "This slide is outside the model's validated domain (or its domain is unknown): "
            "nothing on it is confirmed in bulk. Review every cell one by one."
        )
    predictions = (
        current_predictions(Prediction.objects.filter(cell_image__slide=slide))
        .filter(excluded=False)
        .annotate(reviewed=Exists(Review.objects.filter(prediction=OuterRef("pk"))))
    )
    already_reviewed = predictions.filter(reviewed=True).count()
    unreviewed = list(predictions.filter(reviewed=False).select_related("model_version").order_by("id"))
    acceptable = slide_auto_acceptable_ids(slide=slide)
    confident = [p for p in unreviewed if p.pk in acceptable]
    if confident:
        slide = _slide_start_review(actor=actor, slide=slide)
    for prediction in confident:
        _review_write(
            actor=actor, prediction=prediction, label=prediction.label, reason="", bulk=True, slide=slide
        )
    counts = Counter(prediction.label for prediction in confident)
    return BulkConfirmSummary(
        confirmed={label: counts.get(label, 0) for label in CellClass.values},
        below_threshold=len(unreviewed) - len(confident),
        already_reviewed=already_reviewed,
    )


# --- Many cells at once, from the gallery -----------------------------------------------------------------

# One gallery action reviews at most this many cells (a slide of 200 WBC has 200).
GALLERY_MAX_CELLS = 1000


@dataclass(frozen=True)
class SeenCell:
    """A cell as the gallery showed it: its prediction and the review it then had (None: none)."""

    prediction_id: int
    review_id: int | None


class StaleSelectionError(ReviewError):
    """A selected cell changed since the gallery was shown (reviewed meanwhile, re-classified,
    excluded): nothing was recorded."""


class FlaggedNotAcknowledgedError(ReviewError):
    """The action would confirm flagged cells the pathologist did not say they looked at."""


@dataclass(frozen=True)
class GroupReviewSummary:
    recorded: list[Review]
    unchanged: int


@transaction.atomic
def predictions_review_group(
    *,
    actor: User,
    slide: Slide,
    cells: list[SeenCell],
    label: str | None,
    reason: str = "",
    flagged_acknowledged: frozenset[int] = frozenset(),
) -> GroupReviewSummary:
    """Give many cells of one slide the same verdict at once: ``label`` for each (reclassify), or
    each cell's own predicted class when ``label`` is None (confirm). All or nothing.

    Each recorded cell gets its own review (verified individually: a person chose it in the
    gallery) and audit event. Refused as a whole when a cell changed since the gallery showed it
    (``review_id`` is no longer its current review, a newer prediction exists, it is excluded),
    when a correction has no reason, or when it would confirm a flagged cell (not auto-acceptable:
    below the review threshold or out of domain) whose id is not in ``flagged_acknowledged``.
    Cells whose current review already has the label are left as they are.
    """
    actor_permission_require(actor, "review.add_review")
    if not cells:
        raise ReviewError("Select at least one cell.")
    if len(cells) > GALLERY_MAX_CELLS:
        raise ReviewError(f"Select at most {GALLERY_MAX_CELLS} cells at once.")
    if label is not None and label not in dict(correction_choices()):
        raise ReviewError(f"Unknown class {label!r}.")
    slide = _slide_lock_for_review(slide.pk)
    predictions = _group_predictions(slide=slide, cells=cells)
    targets = {prediction.pk: label or prediction.label for prediction in predictions}
    _group_check_reason(predictions, targets, reason.strip())
    _group_check_flagged(slide, predictions, targets, flagged_acknowledged)
    changing = [p for p in predictions if p.review_label != targets[p.pk]]
    if changing:
        slide = _slide_start_review(actor=actor, slide=slide)
    extra = {"via": "gallery", "selected": len(cells)}
    recorded = [
        _review_write(
            actor=actor,
            prediction=prediction,
            label=targets[prediction.pk],
            reason=reason.strip(),
            bulk=False,
            slide=slide,
            audit_extra=extra,
        )
        for prediction in changing
    ]
    return GroupReviewSummary(recorded=recorded, unchanged=len(predictions) - len(changing))


def _group_predictions(*, slide: Slide, cells: list[SeenCell]) -> list[Prediction]:
    """The selected predictions, read under the slide's lock; any that changed since they were
    shown make the whole selection stale."""
    seen = {cell.prediction_id: cell.review_id for cell in cells}
    if len(seen) != len(cells):
        raise ReviewError("A cell is selected twice.")
    found = {
        prediction.pk: prediction
        for prediction in current_predictions(
            Prediction.objects.filter(cell_image__slide=slide, pk__in=seen)
        ).select_related("model_version", "cell_image")
    }
    stale = []
    for prediction_id, review_id in seen.items():
        prediction = found.get(prediction_id)
        if prediction is None:
            stale.append(f"prediction {prediction_id} is not the newest of its cell on this slide")
        elif prediction.excluded:
            stale.append(f"{prediction.cell_image.original_filename} was excluded from the differential")
        elif prediction.review_id != review_id:
            stale.append(
                f"{prediction.cell_image.original_filename} was reviewed meanwhile by "
                f"{prediction.reviewer_username}"
                if prediction.review_id
                else f"{prediction.cell_image.original_filename} lost its review"
            )
    if stale:
        raise StaleSelectionError(
            f"Nothing was recorded: {len(stale)} selected cell(s) changed since the gallery was shown "
            f"({'; '.join(stale)}). Reload the page to see them as they are now."
        )
    return [found[prediction_id] for prediction_id in seen]


def _group_check_reason(predictions: list[Prediction], targets: dict[int, str], reason: str) -> None:
    corrected = sum(1 for p in predictions if targets[p.pk] != p.label and p.review_label != targets[p.pk])
    if corrected and not reason:
        raise ReviewError(
            f"{corrected} selected cell(s) would get a class other than the model's: "
            "type the reason, a correction needs a reason."
        )


def _group_check_flagged(
    slide: Slide, predictions: list[Prediction], targets: dict[int, str], acknowledged: frozenset[int]
) -> None:
    """Confirming a flagged cell (the model's class for a cell it is not sure of, or out of its
    domain) needs the pathologist to say they looked at that very cell, as on the review screen."""
    acceptable = slide_auto_acceptable_ids(slide=slide)
    unseen = [
        p
        for p in predictions
        if targets[p.pk] == p.label
        and p.review_label != p.label
        and p.pk not in acceptable
        and p.pk not in acknowledged
    ]
    if unseen:
        raise FlaggedNotAcknowledgedError(
            f"{len(unseen)} selected cell(s) are flagged (below the review threshold or outside the "
            "model's validated domain): look at each of them and tick that you did to confirm them, "
            "or confirm them one by one on the review screen."
        )


# --- Cells that do not count, cells the model could not classify ---------------------------------------


def _is_excluded(cell_image: CellImage) -> bool:
    current = cell_exclusion_current(cell_image)
    return current is not None and current.excluded


@transaction.atomic
def cell_image_exclude(*, actor: User, cell_image: CellImage, category: str, reason: str) -> CellExclusion:
    """Keep a cell out of the slide's differential (artefact, smudge cell, unreadable image).

    A reason is required. The cell then no longer holds up sign-off; its prediction and reviews,
    if any, stay untouched and visible. Works for cells the model could not classify too.
    """
    actor_permission_require(actor, "review.add_cellexclusion")
    if category not in ExclusionCategory.values:
        raise ReviewError(f"Unknown exclusion category {category!r}.")
    reason = reason.strip()
    if not reason:
        raise ReviewError("Say why the cell is excluded: an exclusion needs a reason.")
    return _exclusion_write(
        actor=actor, cell_image=cell_image, excluded=True, category=category, reason=reason
    )


@transaction.atomic
def cell_image_include(*, actor: User, cell_image: CellImage, reason: str) -> CellExclusion:
    """Withdraw a cell's exclusion (with a reason): it counts, and needs its review, again."""
    actor_permission_require(actor, "review.add_cellexclusion")
    reason = reason.strip()
    if not reason:
        raise ReviewError("Say why the cell counts again: withdrawing an exclusion needs a reason.")
    return _exclusion_write(actor=actor, cell_image=cell_image, excluded=False, category="", reason=reason)


def _exclusion_write(
    *, actor: User, cell_image: CellImage, excluded: bool, category: str, reason: str
) -> CellExclusion:
    slide = _slide_lock_for_review(cell_image.slide_id)
    previous = cell_exclusion_current(cell_image)
    if (previous is not None and previous.excluded) == excluded:
        raise ReviewError("The cell is already excluded." if excluded else "The cell is not excluded.")
    slide = _slide_start_review(actor=actor, slide=slide)
    exclusion = CellExclusion.objects.create(
        cell_image=cell_image,
        supersedes=previous,
        excluded=excluded,
        category=category,
        reason=reason,
        decided_by=actor,
    )
    audit_event_record(
        action=AuditAction.CELL_EXCLUDED if excluded else AuditAction.CELL_INCLUDED,
        actor=actor,
        target=exclusion,
        before={"excluded": previous.excluded, "category": previous.category, "exclusion_id": previous.pk}
        if previous
        else None,
        after={
            "slide_id": slide.pk,
            "cell_image_id": cell_image.pk,
            "excluded": excluded,
            "category": category,
        },
        reason=reason,
    )
    return exclusion


@transaction.atomic
def slide_classification_retry(*, actor: User, slide: Slide) -> InferenceJob:
    """Classify again, with the active model, every cell of the slide that has no prediction, is
    not excluded and is not in a job now (failed, or never classified). Pathologists may do this:
    it resolves cells that would otherwise keep the slide from being signed."""
    actor_permission_require(actor, "review.add_review")
    slide = _slide_lock_for_review(slide.pk)
    cell_images = slide_cells_to_retry(slide=slide)
    if not cell_images:
        raise ReviewError("No cell of this slide is waiting for a retry.")
    job = inference_job_create(actor=actor, slide=slide, retry_cell_images=cell_images)
    if job is None:
        raise ReviewError("These cells are already being classified by the active model.")
    return job


# --- Cells of a whole field -----------------------------------------------------------------------------

# A drawn box smaller than this (field pixels) is a slip of the mouse, not a cell.
FIELD_BOX_MIN_SIDE = 16


def _field_box_problem(field_image: FieldImage, box: tuple[int, int, int, int]) -> str:
    x, y, width, height = box
    if min(width, height) < FIELD_BOX_MIN_SIDE:
        return f"The box is {width}×{height} px; each side must be at least {FIELD_BOX_MIN_SIDE} px."
    if x < 0 or y < 0 or x + width > field_image.width or y + height > field_image.height:
        return f"The box must lie inside the field ({field_image.width}×{field_image.height} px)."
    return ""


def _field_read(field_image: FieldImage) -> bytes:
    with field_image.file.open("rb") as handle:
        return handle.read()


def field_cell_add_and_classify(
    *, actor: User, field_image: FieldImage, box: tuple[int, int, int, int], reason: str = ""
) -> CellImage:
    """A pathologist boxes a white cell the locator missed: the server crops it as the model was
    trained (no model is loaded here), stores it as a cell of the slide linked to the field
    ("added by pathologist", audited) and queues its classification for a worker."""
    actor_permission_require(actor, "review.add_review")
    if problem := _field_box_problem(field_image, box):
        raise ReviewError(problem)
    if not field_image.is_located:
        raise ReviewError(
            "The field's cells are not located yet; add a cell once the worker has located them."
        )
    model_version = model_version_active()
    try:
        crop = field_box_crop(model_version, _field_read(field_image), box)
    except (OSError, ImageDecodeError, ModelLoadError) as error:
        raise ReviewError(f"The field image could not be cropped: {error}") from error
    with transaction.atomic():
        slide = _slide_lock_for_review(field_image.slide_id)
        try:
            cell_image = field_cell_add(
                actor=actor,
                field_image=field_image,
                crop=FieldCellCrop(*box, score=None, png=crop.png, crop_size=crop.size),
                reason=reason.strip(),
            )
        except UploadRejected as rejected:
            raise ReviewError(f"The cell was not added: {rejected.reason}.") from rejected
        inference_job_create(actor=actor, slide=slide, model_version=model_version)
    return cell_image


# --- Sign-off and amendment -------------------------------------------------------------------------------


def _slide_sign_refusal(slide: Slide) -> str:
    """Why the slide cannot be signed now, or "" (checked before the password and again under lock)."""
    if slide.status != SlideStatus.IN_REVIEW:
        return f"Only a slide in review can be signed; this one is {slide.get_status_display()}."
    if InferenceJob.objects.filter(slide=slide).exclude(status__in=INFERENCE_JOB_FINISHED).exists():
        return "A classification job is still running on this slide; sign once it has finished."
    progress = slide_review_progress(slide=slide)
    if not progress.complete:
        return " ".join(["The slide cannot be signed yet:", *progress.blockers()])
    return ""


def _reauthenticate(
    *, actor: User, slide: Slide, password: str, request: HttpRequest, refused: AuditAction, outcome: str
) -> None:
    """The password, every time (21 CFR 11.200; our policy), counted by the login lockout. A refusal
    is audited in its own transaction, so it stays recorded."""
    try:
        user_reauthenticate(user=actor, password=password, request=request)
    except ReauthenticationFailed as error:
        locked = bool(getattr(request, "axes_locked_out", False))
        audit_event_record(
            action=refused,
            actor=actor,
            target=slide,
            after={"slide_id": slide.pk, "cause": "account locked out" if locked else "wrong password"},
        )
        raise ReviewError(f"{' '.join(error.messages)}; the slide was not {outcome}.") from error


def slide_sign(
    *,
    actor: User,
    slide: Slide,
    password: str,
    request: HttpRequest,
    domain_acknowledged: bool = False,
    count_acknowledged: bool = False,
    consults_acknowledged: bool = False,
    comment: str = "",
) -> SlideSignature:
    """Electronically sign the slide's verified result: re-entered password, printed name, meaning,
    and the pathologist's comment or interpretation (optional), printed on the report.

    The slide's state is checked first, so the answer says nothing about the password unless the
    slide could be signed. A wrong password is refused, audited and counted by the login lockout.
    Signing needs every cell of the slide reviewed; on a slide outside the model's validated
    domain (or of unknown domain) the signer's acknowledgement of it, and on a slide with fewer
    white cells counted than its target the acknowledgement of that, both kept with the signed
    differential; the signed slide is locked. While a consult of the slide is not closed, the
    signer confirms signing without waiting for it; the signature keeps the consults as they stand.
    """
    actor_permission_require(actor, "review.add_slidesignature")
    current = Slide.objects.get(pk=slide.pk)
    acknowledged = {
        "domain": domain_acknowledged,
        "count": count_acknowledged,
        "consults": consults_acknowledged,
    }
    if refusal := _slide_sign_refusal(current) or _acknowledgement_refusal(current, **acknowledged):
        raise ReviewError(refusal)
    _reauthenticate(
        actor=actor,
        slide=slide,
        password=password,
        request=request,
        refused=AuditAction.SLIDE_SIGN_REFUSED,
        outcome="signed",
    )
    return _slide_sign_verified(actor=actor, slide_id=slide.pk, comment=comment.strip(), **acknowledged)


def _acknowledgement_refusal(slide: Slide, *, domain: bool, count: bool, consults: bool) -> str:
    return (
        _domain_refusal(slide, acknowledged=domain)
        or _count_refusal(slide, acknowledged=count)
        or _consult_refusal(slide, acknowledged=consults)
    )


def _count_refusal(slide: Slide, *, acknowledged: bool) -> str:
    target = slide_count_target(slide=slide)
    if target.reached or acknowledged:
        return ""
    return (
        f"Only {target.counted} white cells are counted, below this slide's target of {target.count}: "
        "confirm that you sign the differential below its target count."
    )


def _consult_refusal(slide: Slide, *, acknowledged: bool) -> str:
    open_consults = slide_open_consults(slide=slide)
    if open_consults and not acknowledged:
        return (
            f"{len(open_consults)} consult(s) of this slide are not closed: confirm that you sign "
            "without waiting for them (or close them first)."
        )
    return ""


def _domain_refusal(slide: Slide, *, acknowledged: bool) -> str:
    if slide_domain(slide=slide).needs_attention and not acknowledged:
        return (
            "This slide is outside the model's validated domain (or its domain is unknown): confirm "
            "that you reviewed every cell yourself, knowing the model's confidence does not hold here."
        )
    return ""


def _signed_domain(slide: Slide, *, acknowledged: bool) -> dict:
    """The slide's domain verdict as signed, with whether the signer acknowledged it."""
    domain = slide_domain(slide=slide)
    assessment = domain.assessment
    return {
        "verdict": domain.verdict,
        "model_version": assessment.model_version.name if assessment else None,
        "statistic": assessment.statistic if assessment else None,
        "cells": assessment.cell_count if assessment else 0,
        "acknowledged": bool(domain.needs_attention and acknowledged),
    }


def _signed_differential(slide: Slide, *, domain: bool, count: bool) -> dict:
    """The verified differential as signed, with what its report prints beside it: the reference
    intervals it was flagged against and the model versions whose predictions were verified."""
    differential = slide_differential(slide=slide)
    signed = differential.as_dict()
    # Whether the signer acknowledged signing below the target (only asked when below it).
    signed["target"]["acknowledged"] = bool(count and not signed["target"]["reached"])
    return {
        **signed,
        "domain": _signed_domain(slide, acknowledged=domain),
        "reference_intervals": {
            row.label: [row.reference_low, row.reference_high]
            for row in differential.rows
            if row.reference_low is not None or row.reference_high is not None
        },
        "model_versions": slide_counted_model_versions(slide=slide),
    }


@transaction.atomic
def _slide_sign_verified(
    *, actor: User, slide_id: int, domain: bool, count: bool, consults: bool, comment: str
) -> SlideSignature:
    slide = Slide.objects.select_for_update().select_related("patient").get(pk=slide_id)
    if refusal := _slide_sign_refusal(slide) or _acknowledgement_refusal(
        slide, domain=domain, count=count, consults=consults
    ):
        raise ReviewError(refusal)
    differential = _signed_differential(slide, domain=domain, count=count)
    if consults_summary := slide_consults_summary(slide=slide):
        differential["consults"] = consults_summary
    signature = SlideSignature.objects.create(
        slide=slide,
        version=SlideSignature.objects.filter(slide=slide).count() + 1,
        signer=actor,
        signer_full_name=actor.get_full_name() or actor.get_username(),
        signed_at=timezone.now(),
        differential=differential,
        patient_identity=patient_identity(slide.patient),
        comment=comment,
    )
    slide_status_change(actor=actor, slide=slide, to_status=SlideStatus.SIGNED)
    audit_event_record(
        action=AuditAction.SLIDE_SIGNED,
        actor=actor,
        target=signature,
        after={
            "slide_id": slide.pk,
            "version": signature.version,
            "signer_full_name": signature.signer_full_name,
            "meaning": signature.meaning,
            "differential": differential,
            "patient_identity": signature.patient_identity,
            "comment": comment,
        },
    )
    return signature


def slide_amend(
    *, actor: User, slide: Slide, reason: str, password: str, request: HttpRequest
) -> SlideAmendment:
    """Reopen a signed slide for changes; the signature stays in the history, the next sign-off is
    a new version. Needs a reason and the password (checked after the slide's state, counted by the
    login lockout like a sign-off's)."""
    actor_permission_require(actor, "review.add_slideamendment")
    reason = reason.strip()
    if not reason:
        raise ReviewError("An amendment needs a reason.")
    if Slide.objects.get(pk=slide.pk).status != SlideStatus.SIGNED:
        raise ReviewError("Only a signed slide can be amended.")
    _reauthenticate(
        actor=actor,
        slide=slide,
        password=password,
        request=request,
        refused=AuditAction.SLIDE_AMEND_REFUSED,
        outcome="reopened",
    )
    return _slide_amend_verified(actor=actor, slide_id=slide.pk, reason=reason)


@transaction.atomic
def _slide_amend_verified(*, actor: User, slide_id: int, reason: str) -> SlideAmendment:
    slide = Slide.objects.select_for_update().get(pk=slide_id)
    if slide.status != SlideStatus.SIGNED:
        raise ReviewError("Only a signed slide can be amended.")
    signature = slide_signature_latest(slide=slide)
    amendment = SlideAmendment.objects.create(
        slide=slide, signature=signature, reason=reason, amended_by=actor
    )
    slide_status_change(actor=actor, slide=slide, to_status=SlideStatus.IN_REVIEW, reason=reason)
    audit_event_record(
        action=AuditAction.SLIDE_AMENDED,
        actor=actor,
        target=amendment,
        before={"status": SlideStatus.SIGNED.value, "signature_version": signature.version},
        after={"slide_id": slide.pk, "status": SlideStatus.IN_REVIEW.value},
        reason=reason,
    )
    return amendment


def results_export_record(*, actor: User, scope: dict[str, Any], export_format: str, cell_count: int) -> None:
    """Every copy of results leaving the system is an audit event: who took what, in which form."""
    audit_event_record(
        action=AuditAction.RESULTS_EXPORTED,
        actor=actor,
        after={"scope": scope, "format": export_format, "cell_count": cell_count},
    )


# --- The lab's class list and counting rules (admins) ----------------------------------------------------

DIFFERENTIAL_CLASS_FIELDS = (
    "name",
    "counting",
    "is_active",
    "always_reported",
    "shortcut",
    "loinc_code",
    "loinc_display",
    "absolute_loinc_code",
    "absolute_loinc_display",
    "reference_low",
    "reference_high",
)
# Keys the review screen gives to other actions (static/review/review.js), and the initials it
# keeps for the model's four classes: no class may take them as its shortcut.
RESERVED_KEYS = frozenset("cjkugsx?/ elmn")


def _class_snapshot(cell_class: DifferentialClass) -> dict[str, Any]:
    return {name: getattr(cell_class, name) for name in ("code", "position", *DIFFERENTIAL_CLASS_FIELDS)}


def _class_validate(cell_class: DifferentialClass) -> None:
    """The model's rules (codes, LOINC format, unique names) and the list's own."""
    cell_class.shortcut = cell_class.shortcut.strip().lower()
    cell_class.full_clean()
    if cell_class.is_model_class and (not cell_class.is_active or cell_class.counting != Counting.WBC):
        raise ValidationError(
            f"{cell_class.name} is one of the classes the model predicts: it stays active and counts "
            "towards the WBC differential."
        )
    if cell_class.shortcut in RESERVED_KEYS:
        raise ValidationError(
            {"shortcut": f"The key {cell_class.shortcut!r} has another use on the review screen."}
        )
    if cell_class.shortcut and cell_class.is_active:
        taken = DifferentialClass.objects.filter(shortcut=cell_class.shortcut, is_active=True)
        other = taken.exclude(pk=cell_class.pk).first()
        if other is not None:
            raise ValidationError(
                {"shortcut": f"The key {cell_class.shortcut!r} already chooses {other.name}."}
            )


@transaction.atomic
def differential_class_create(*, actor: User, code: str, name: str, **fields: Any) -> DifferentialClass:
    """Add a class to the end of the lab's list (``fields``: any of ``DIFFERENTIAL_CLASS_FIELDS``)."""
    actor_permission_require(actor, "review.add_differentialclass")
    unknown = set(fields) - set(DIFFERENTIAL_CLASS_FIELDS)
    if unknown:
        raise ValueError(f"Not class fields: {sorted(unknown)}")
    last = DifferentialClass.objects.select_for_update().order_by("-position").first()
    cell_class = DifferentialClass(
        code=code.strip().upper(), name=name.strip(), position=(last.position if last else 0) + 10, **fields
    )
    _class_validate(cell_class)
    cell_class.save()
    audit_event_record(
        action=AuditAction.DIFFERENTIAL_CLASS_CREATED,
        actor=actor,
        target=cell_class,
        after=_class_snapshot(cell_class),
    )
    return cell_class


@transaction.atomic
def differential_class_update(
    *, actor: User, cell_class: DifferentialClass, changes: dict[str, Any], reason: str = ""
) -> DifferentialClass:
    """Rename, deactivate or reactivate a class, or change how it counts, its key, LOINC codes or
    reference interval. The code never changes: reviews keep naming the class by it."""
    actor_permission_require(actor, "review.change_differentialclass")
    unknown = set(changes) - set(DIFFERENTIAL_CLASS_FIELDS)
    if unknown:
        raise ValueError(f"Not editable class fields: {sorted(unknown)}")
    cell_class = DifferentialClass.objects.select_for_update().get(pk=cell_class.pk)
    before = _class_snapshot(cell_class)
    for name, value in changes.items():
        setattr(cell_class, name, value)
    _class_validate(cell_class)
    after = _class_snapshot(cell_class)
    changed = [name for name in after if after[name] != before[name]]
    if not changed:
        return cell_class
    cell_class.save()
    audit_event_record(
        action=AuditAction.DIFFERENTIAL_CLASS_CHANGED,
        actor=actor,
        target=cell_class,
        before={name: before[name] for name in changed},
        after={"code": cell_class.code, **{name: after[name] for name in changed}},
        reason=reason.strip(),
    )
    return cell_class


@transaction.atomic
def differential_class_move(*, actor: User, cell_class: DifferentialClass, offset: int) -> list[str]:
    """Move a class one place up (``offset`` -1) or down (+1) in the lab's order; returns the new
    order of codes (unchanged at either end)."""
    actor_permission_require(actor, "review.change_differentialclass")
    if offset not in (-1, 1):
        raise ValueError("A class moves one place up or down.")
    classes = list(DifferentialClass.objects.select_for_update().order_by("position", "id"))
    before = [item.code for item in classes]
    index = next(position for position, item in enumerate(classes) if item.pk == cell_class.pk)
    if not 0 <= index + offset < len(classes):
        return before
    classes[index], classes[index + offset] = classes[index + offset], classes[index]
    for position, item in enumerate(classes, start=1):
        DifferentialClass.objects.filter(pk=item.pk).update(position=position * 10)
    after = [item.code for item in classes]
    audit_event_record(
        action=AuditAction.DIFFERENTIAL_CLASSES_REORDERED,
        actor=actor,
        target=cell_class,
        before={"order": before},
        after={"order": after},
    )
    return after


@transaction.atomic
def counting_default_target_set(*, actor: User, target: int) -> CountingSettings:
    """The lab's default number of white cells to count per slide (slides may override it)."""
    actor_permission_require(actor, "review.change_countingsettings")
    counting, _ = CountingSettings.objects.select_for_update().get_or_create(pk=1)
    before = counting.default_target
    counting.default_target = target
    counting.full_clean()
    if before == target:
        return counting
    counting.save()
    audit_event_record(
        action=AuditAction.COUNTING_DEFAULT_TARGET_CHANGED,
        actor=actor,
        target=counting,
        before={"default_target": before},
        after={"default_target": target},
    )
    return counting
