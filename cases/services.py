"""Creating and changing clinical records. Every change writes its audit event in the same
transaction."""

from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from accounts.models import User
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import SLIDE_STATUS_TRANSITIONS, Patient, Slide, SlideStatus

PATIENT_EDITABLE_FIELDS = ("mrn", "family_name", "given_name", "date_of_birth", "sex")
SLIDE_EDITABLE_FIELDS = ("accession_number", "collected_at", "stain", "notes")


class SlideLockedError(ValidationError):
    """The slide is signed: nothing may change until it is reopened by an amendment."""


class SlideTransitionError(ValidationError):
    """The requested status change is not allowed from the slide's current status."""


def model_snapshot(instance: models.Model, field_names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in field_names}


def _save_validated(instance: models.Model) -> None:
    instance.full_clean()
    instance.save()


def _apply_changes(
    instance: models.Model, changes: dict[str, Any], editable: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the given fields; return (before, after) of those whose value actually changed."""
    unknown = set(changes) - set(editable)
    if unknown:
        raise ValueError(f"Fields not editable here: {sorted(unknown)}")
    before = {name: getattr(instance, name) for name in changes if getattr(instance, name) != changes[name]}
    for name in before:
        setattr(instance, name, changes[name])
    return before, {name: changes[name] for name in before}


@transaction.atomic
def patient_create(
    *, actor: User, mrn: str, family_name: str, given_name: str, date_of_birth: date, sex: str
) -> Patient:
    patient = Patient(
        mrn=mrn,
        family_name=family_name,
        given_name=given_name,
        date_of_birth=date_of_birth,
        sex=sex,
        created_by=actor,
    )
    _save_validated(patient)
    audit_event_record(
        action=AuditAction.PATIENT_CREATED,
        actor=actor,
        target=patient,
        after=model_snapshot(patient, PATIENT_EDITABLE_FIELDS),
    )
    return patient


@transaction.atomic
def patient_update(*, actor: User, patient: Patient, changes: dict[str, Any]) -> Patient:
    before, after = _apply_changes(patient, changes, PATIENT_EDITABLE_FIELDS)
    if not before:
        return patient
    _save_validated(patient)
    audit_event_record(action=AuditAction.PATIENT_UPDATED, actor=actor, target=patient, before=before, after=after)
    return patient


@transaction.atomic
def slide_create(
    *,
    actor: User,
    patient: Patient,
    accession_number: str,
    collected_at: datetime,
    stain: str,
    notes: str = "",
) -> Slide:
    slide = Slide(
        patient=patient,
        accession_number=accession_number,
        collected_at=collected_at,
        stain=stain,
        notes=notes,
        created_by=actor,
    )
    _save_validated(slide)
    audit_event_record(
        action=AuditAction.SLIDE_CREATED,
        actor=actor,
        target=slide,
        after={"patient_id": patient.pk, "status": slide.status, **model_snapshot(slide, SLIDE_EDITABLE_FIELDS)},
    )
    return slide


def slide_ensure_unlocked(slide: Slide) -> None:
    if slide.is_locked:
        raise SlideLockedError(f"Slide {slide.accession_number} is signed and cannot be changed.")


@transaction.atomic
def slide_update(*, actor: User, slide: Slide, changes: dict[str, Any]) -> Slide:
    slide = Slide.objects.select_for_update().get(pk=slide.pk)
    slide_ensure_unlocked(slide)
    before, after = _apply_changes(slide, changes, SLIDE_EDITABLE_FIELDS)
    if not before:
        return slide
    _save_validated(slide)
    audit_event_record(action=AuditAction.SLIDE_UPDATED, actor=actor, target=slide, before=before, after=after)
    return slide


@transaction.atomic
def slide_status_change(*, actor: User, slide: Slide, to_status: SlideStatus, reason: str = "") -> Slide:
    """Move a slide along its state machine (``SLIDE_STATUS_TRANSITIONS``); refuse anything else.

    The conditional update makes two concurrent requests for the same transition safe: only one
    of them finds the slide still in the old status.
    """
    to_status = SlideStatus(to_status)
    from_status = Slide.objects.filter(pk=slide.pk).values_list("status", flat=True).get()
    if to_status not in SLIDE_STATUS_TRANSITIONS[from_status]:
        raise SlideTransitionError(
            f"A {SlideStatus(from_status).label.lower()} slide cannot become {to_status.label.lower()}."
        )
    claimed = Slide.objects.filter(pk=slide.pk, status=from_status).update(
        status=to_status, updated_at=timezone.now()
    )
    if not claimed:
        raise SlideTransitionError("The slide's status changed meanwhile; reload and try again.")
    slide.refresh_from_db()
    audit_event_record(
        action=AuditAction.SLIDE_STATUS_CHANGED,
        actor=actor,
        target=slide,
        before={"status": from_status},
        after={"status": to_status.value},
        reason=reason,
    )
    return slide
