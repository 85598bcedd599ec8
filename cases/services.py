"""Creating and changing clinical records. Every change writes its audit event in the same
transaction."""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import User
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import (
    MRN_TAKEN,
    SLIDE_STATUS_TRANSITIONS,
    CellImage,
    Patient,
    Slide,
    SlideStatus,
    Stain,
)
from cases.selectors import patient_signed_slides
from cases.signals import cell_images_added
from cases.uploads import (
    Candidate,
    UploadBudget,
    UploadLimits,
    UploadRejected,
    ValidatedImage,
    image_validate,
    upload_expand,
)

logger = logging.getLogger(__name__)

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


def _patient_save(patient: Patient) -> None:
    """Validated, and a concurrent twin of its MRN (which the check cannot see yet) refused the
    same way, by the database's case-insensitive unique constraint."""
    try:
        with transaction.atomic():
            _save_validated(patient)
    except IntegrityError as error:
        raise ValidationError({"mrn": MRN_TAKEN}) from error


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
    _patient_save(patient)
    audit_event_record(
        action=AuditAction.PATIENT_CREATED,
        actor=actor,
        target=patient,
        after=model_snapshot(patient, PATIENT_EDITABLE_FIELDS),
    )
    return patient


class PatientCorrectionError(ValidationError):
    """The patient has signed reports: changing who they are is a correction and needs a reason."""


@transaction.atomic
def patient_update(*, actor: User, patient: Patient, changes: dict[str, Any], reason: str = "") -> Patient:
    """Change a patient's demographics. Once a slide of the patient has a signed report, the change
    is a correction: it needs a reason, and its audit event (``patient.corrected``) names the
    signed slides, whose reports keep the identity they were signed for and show the correction."""
    # A fresh, locked row: the caller's object may already carry the new values (ModelForm).
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    before, after = _apply_changes(patient, changes, PATIENT_EDITABLE_FIELDS)
    if not before:
        return patient
    signed = patient_signed_slides(patient)
    reason = reason.strip()
    if signed and not reason:
        raise PatientCorrectionError(
            f"{len(signed)} signed report(s) ({', '.join(slide.accession_number for slide in signed)}) "
            "name this patient: changing the record is a correction; give its reason."
        )
    _patient_save(patient)
    if signed:
        after = {**after, "signed_slides": [slide.accession_number for slide in signed]}
    audit_event_record(
        action=AuditAction.PATIENT_CORRECTED if signed else AuditAction.PATIENT_UPDATED,
        actor=actor,
        target=patient,
        before=before,
        after=after,
        reason=reason,
    )
    return patient


@transaction.atomic
def slide_create(
    *,
    actor: User,
    patient: Patient,
    accession_number: str,
    collected_at: datetime,
    stain: str = Stain.WRIGHT_GIEMSA,
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
        after={
            "patient_id": patient.pk,
            "status": slide.status,
            **model_snapshot(slide, SLIDE_EDITABLE_FIELDS),
        },
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
    audit_event_record(
        action=AuditAction.SLIDE_UPDATED, actor=actor, target=slide, before=before, after=after
    )
    return slide


@transaction.atomic
def slide_status_change(
    *, actor: User | None, slide: Slide, to_status: SlideStatus, reason: str = "", actor_username: str = ""
) -> Slide:
    """Move a slide along its state machine (``SLIDE_STATUS_TRANSITIONS``); refuse anything else.
    ``actor`` is None for a worker, named by ``actor_username`` in the audit trail.

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
        actor_username=actor_username,
    )
    return slide


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file (or archive member); shown to the user per file."""

    filename: str
    cell_image: CellImage | None = None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.cell_image is not None


class DuplicateCellImage(UploadRejected):
    def __init__(self) -> None:
        super().__init__("the same image is already on this slide")


def cell_image_create(*, actor: User, slide: Slide, image: ValidatedImage) -> CellImage:
    """Store one validated image on a slide, or refuse it leaving no file and no row behind.

    Runs its own transaction; the stored file is removed again if that transaction fails.
    """
    cell_image = CellImage(
        slide=slide,
        sha256=image.sha256,
        image_format=image.image_format,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
        original_filename=image.original_filename,
        uploaded_by=actor,
    )
    try:
        with transaction.atomic():
            locked_slide = Slide.objects.select_for_update().get(pk=slide.pk)
            slide_ensure_unlocked(locked_slide)
            if CellImage.objects.filter(slide=slide, sha256=image.sha256).exists():
                raise DuplicateCellImage()
            cell_image.file.save(f"{uuid.uuid4().hex}.{image.extension}", ContentFile(image.data), save=False)
            cell_image.save()
            audit_event_record(
                action=AuditAction.CELL_IMAGE_UPLOADED,
                actor=actor,
                target=cell_image,
                after={
                    "slide_id": slide.pk,
                    "sha256": image.sha256,
                    "original_filename": image.original_filename,
                    "format": image.image_format,
                    "width": image.width,
                    "height": image.height,
                    "size_bytes": len(image.data),
                },
            )
    except BaseException as error:
        if cell_image.file.name:
            cell_image.file.storage.delete(cell_image.file.name)
        if isinstance(error, IntegrityError):
            # A concurrent upload of the same image won the unique constraint.
            raise DuplicateCellImage() from error
        raise
    return cell_image


def cell_images_upload(*, actor: User, slide: Slide, files: Iterable[UploadedFile]) -> list[UploadOutcome]:
    """Check and store many uploaded files (zip archives expanded); one outcome per image.

    Rejected files leave nothing behind; accepted ones in the same batch are kept. The request's
    budget (files, decoded pixels) bounds its time; files beyond it are answered "not checked".
    """
    slide_ensure_unlocked(slide)
    limits = UploadLimits.from_settings()
    budget = UploadBudget(limits)
    outcomes = []
    for uploaded in files:
        for candidate in upload_expand(
            name=uploaded.name or "", stream=uploaded, size=uploaded.size, limits=limits, budget=budget
        ):
            outcomes.append(
                _candidate_store(actor=actor, slide=slide, candidate=candidate, limits=limits, budget=budget)
            )
    if any(outcome.accepted for outcome in outcomes):
        # Inside the caller's transaction: a receiver's work (queueing classification) commits or
        # rolls back with the images.
        cell_images_added.send(sender=Slide, actor=actor, slide=slide)
    return outcomes


def _candidate_store(
    *, actor: User, slide: Slide, candidate: Candidate, limits: UploadLimits, budget: UploadBudget
) -> UploadOutcome:
    if candidate.rejection:
        return UploadOutcome(candidate.display_name, reason=candidate.rejection)
    try:
        image = image_validate(
            data=candidate.data, original_filename=candidate.original_filename, limits=limits, budget=budget
        )
        cell_image = cell_image_create(actor=actor, slide=slide, image=image)
    except UploadRejected as rejected:
        logger.info("Upload to slide %s rejected: %s: %s", slide.pk, candidate.display_name, rejected.reason)
        return UploadOutcome(candidate.display_name, reason=rejected.reason)
    return UploadOutcome(candidate.display_name, cell_image=cell_image)


class CellImageDeleteRefused(ValidationError):
    """The image is part of the slide's classification record (or the slide is signed)."""


def cell_image_delete_refusal(slide: Slide) -> str:
    """Why the slide's images can no longer be deleted, or "" while it is a draft."""
    if slide.status == SlideStatus.DRAFT:
        return ""
    return (
        f"Slide {slide.accession_number} is {slide.get_status_display().lower()}: its images were "
        "submitted for classification and are part of its record, so none can be deleted. A "
        "pathologist can exclude a wrong cell from the differential, with a reason."
    )


@transaction.atomic
def cell_image_delete(*, actor: User, cell_image: CellImage, reason: str) -> None:
    """Delete a wrongly uploaded image from a slide not yet submitted for classification.

    The row goes and the stored file is removed once the transaction has committed; the audit
    event keeps what the image was (sha256, name, format, size, who uploaded it when). Needs a
    reason. Refused for good once the slide has been submitted (and so for an image with a
    prediction: the database protects those rows too).
    """
    if not actor.is_active or not actor.has_perm("cases.delete_cellimage"):
        raise PermissionDenied(f"{actor.get_username()} may not delete cell images.")
    reason = reason.strip()
    if not reason:
        raise ValidationError("Say why the image is deleted: a deletion needs a reason.")
    slide = Slide.objects.select_for_update().get(pk=cell_image.slide_id)
    if refusal := cell_image_delete_refusal(slide):
        raise CellImageDeleteRefused(refusal)
    cell_image = CellImage.objects.select_for_update().get(pk=cell_image.pk)
    file_name, storage = cell_image.file.name, cell_image.file.storage
    audit_event_record(
        action=AuditAction.CELL_IMAGE_DELETED,
        actor=actor,
        target=cell_image,
        before={
            "slide_id": slide.pk,
            "sha256": cell_image.sha256,
            "original_filename": cell_image.original_filename,
            "format": cell_image.image_format,
            "width": cell_image.width,
            "height": cell_image.height,
            "size_bytes": cell_image.size_bytes,
            "uploaded_by": cell_image.uploaded_by.get_username(),
            "uploaded_at": cell_image.uploaded_at,
        },
        reason=reason,
    )
    try:
        with transaction.atomic():
            cell_image.delete()
    except ProtectedError as error:
        raise CellImageDeleteRefused(
            "This image has a classification result, which is part of the slide's record: "
            "it cannot be deleted."
        ) from error
    # Only once the deletion is committed: a rolled-back one must still find its file.
    transaction.on_commit(lambda: storage.delete(file_name))
