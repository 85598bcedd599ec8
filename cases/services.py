"""Creating and changing clinical records. Every change writes its audit event in the same
transaction."""

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError, QuerySet
from django.utils import timezone

from accounts.models import User
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import (
    MRN_TAKEN,
    SLIDE_STATUS_TRANSITIONS,
    CellImage,
    CellSource,
    FieldImage,
    ImageKind,
    Patient,
    Priority,
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
    image_kind_detect,
    image_validate,
    upload_expand,
)
from core.permissions import actor_permission_require

logger = logging.getLogger(__name__)

PATIENT_EDITABLE_FIELDS = ("mrn", "family_name", "given_name", "date_of_birth", "sex")
SLIDE_EDITABLE_FIELDS = ("accession_number", "collected_at", "received_at", "priority", "stain", "notes")


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
    received_at: datetime | None = None,
    priority: str = Priority.ROUTINE,
    stain: str = Stain.WRIGHT_GIEMSA,
    notes: str = "",
) -> Slide:
    """A new draft slide; ``received_at`` defaults to now (the specimen is registered on arrival)."""
    slide = Slide(
        patient=patient,
        accession_number=accession_number,
        collected_at=collected_at,
        received_at=received_at or timezone.now(),
        priority=priority,
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
def slide_target_count_set(*, actor: User, slide: Slide, target: int | None, reason: str = "") -> Slide:
    """Set how many white cells this slide's differential should count (None: the lab's default).
    Lab staff and pathologists may; not on a signed slide."""
    actor_permission_require(actor, "cases.change_slide_target_count")
    slide = Slide.objects.select_for_update().get(pk=slide.pk)
    slide_ensure_unlocked(slide)
    before = slide.target_wbc_count
    if before == target:
        return slide
    slide.target_wbc_count = target
    slide.full_clean(validate_unique=False, validate_constraints=False)
    slide.save(update_fields=["target_wbc_count", "updated_at"])
    audit_event_record(
        action=AuditAction.SLIDE_TARGET_COUNT_SET,
        actor=actor,
        target=slide,
        before={"target_wbc_count": before},
        after={"target_wbc_count": target},
        reason=reason.strip(),
    )
    return slide


@transaction.atomic
def slide_wbc_count_enter(*, actor: User, slide: Slide, wbc_count: Decimal | None, reason: str = "") -> Slide:
    """Record the specimen's white cell count from the analyser (×10⁹/L), from which the
    differential gives absolute counts. Lab staff enter it; changing or removing a count already
    entered needs a reason. Not on a signed slide."""
    actor_permission_require(actor, "cases.change_slide")
    slide = Slide.objects.select_for_update().get(pk=slide.pk)
    slide_ensure_unlocked(slide)
    before = slide.wbc_count
    if before == wbc_count:
        return slide
    reason = reason.strip()
    if before is not None and not reason:
        raise ValidationError(
            f"A WBC count of {before} ×10⁹/L is already entered: say why it changes (a reason is required)."
        )
    slide.wbc_count = wbc_count
    slide.wbc_count_entered_by = actor if wbc_count is not None else None
    slide.wbc_count_entered_at = timezone.now() if wbc_count is not None else None
    slide.full_clean(validate_unique=False, validate_constraints=False)
    slide.save(update_fields=["wbc_count", "wbc_count_entered_by", "wbc_count_entered_at", "updated_at"])
    audit_event_record(
        action=AuditAction.SLIDE_WBC_COUNT_ENTERED,
        actor=actor,
        target=slide,
        before={"wbc_count": before},
        after={"wbc_count": wbc_count, "unit": "10*9/L"},
        reason=reason,
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
    field_image: FieldImage | None = None

    @property
    def accepted(self) -> bool:
        return self.cell_image is not None or self.field_image is not None

    @property
    def kind(self) -> str:
        """ "cell" or "field" for an accepted file, "" for a rejected one."""
        if self.field_image is not None:
            return ImageKind.FIELD.value
        return ImageKind.CELL.value if self.cell_image is not None else ""

    @property
    def stored(self) -> CellImage | FieldImage | None:
        return self.field_image or self.cell_image


class DuplicateCellImage(UploadRejected):
    def __init__(self) -> None:
        super().__init__("the same image is already on this slide")


def _image_fields(image: ValidatedImage, actor: User) -> dict[str, Any]:
    return {
        "sha256": image.sha256,
        "image_format": image.image_format,
        "width": image.width,
        "height": image.height,
        "size_bytes": len(image.data),
        "original_filename": image.original_filename,
        "uploaded_by": actor,
    }


def _validated_image_store(
    *,
    stored: CellImage | FieldImage,
    image: ValidatedImage,
    actor: User,
    action: AuditAction,
    twins: QuerySet,
) -> None:
    """Save an uploaded image's file and row and audit it in one transaction, or refuse it (signed
    slide, a twin already there) leaving no file and no row behind."""
    try:
        with transaction.atomic():
            slide_ensure_unlocked(Slide.objects.select_for_update().get(pk=stored.slide_id))
            if twins.exists():
                raise DuplicateCellImage()
            stored.file.save(f"{uuid.uuid4().hex}.{image.extension}", ContentFile(image.data), save=False)
            stored.save()
            after = {
                "slide_id": stored.slide_id,
                "sha256": image.sha256,
                "original_filename": image.original_filename,
            }
            after |= {"format": image.image_format, "width": image.width, "height": image.height}
            audit_event_record(
                action=action, actor=actor, target=stored, after=after | {"size_bytes": len(image.data)}
            )
    except BaseException as error:
        if stored.file.name:
            stored.file.storage.delete(stored.file.name)
        if isinstance(error, IntegrityError):
            # A concurrent upload of the same image won the unique constraint.
            raise DuplicateCellImage() from error
        raise


def cell_image_create(*, actor: User, slide: Slide, image: ValidatedImage) -> CellImage:
    """Store one validated image on a slide, or refuse it leaving no file and no row behind.

    Runs its own transaction; the stored file is removed again if that transaction fails.
    """
    cell_image = CellImage(slide=slide, **_image_fields(image, actor))
    _validated_image_store(
        stored=cell_image,
        image=image,
        actor=actor,
        action=AuditAction.CELL_IMAGE_UPLOADED,
        twins=CellImage.objects.filter(slide=slide, sha256=image.sha256, field_image=None),
    )
    return cell_image


def field_image_create(*, actor: User, slide: Slide, image: ValidatedImage) -> FieldImage:
    """Store one validated microscope field on a slide; its cells are located by the worker when
    the slide is classified. Refused (nothing left behind) on a signed slide or a duplicate."""
    field_image = FieldImage(slide=slide, **_image_fields(image, actor))
    _validated_image_store(
        stored=field_image,
        image=image,
        actor=actor,
        action=AuditAction.FIELD_IMAGE_UPLOADED,
        twins=FieldImage.objects.filter(slide=slide, sha256=image.sha256),
    )
    return field_image


def cell_images_upload(
    *, actor: User, slide: Slide, files: Iterable[UploadedFile], kind: str = ImageKind.AUTO
) -> list[UploadOutcome]:
    """Check and store many uploaded files (zip archives expanded); one outcome per image.

    ``kind`` says what the images are: cells, whole microscope fields, or ``auto`` (each image
    by its size, ``cases.uploads.image_kind_detect``). Rejected files leave nothing behind;
    accepted ones in the same batch are kept. The request's budget (files, decoded pixels) bounds
    its time; files beyond it are answered "not checked".
    """
    slide_ensure_unlocked(slide)
    kind = ImageKind(kind)
    limits = UploadLimits.from_settings()
    budget = UploadBudget(limits)
    outcomes = []
    for uploaded in files:
        for candidate in upload_expand(
            name=uploaded.name or "", stream=uploaded, size=uploaded.size, limits=limits, budget=budget
        ):
            outcomes.append(
                _candidate_store(
                    actor=actor, slide=slide, candidate=candidate, limits=limits, budget=budget, kind=kind
                )
            )
    if any(outcome.accepted for outcome in outcomes):
        # Inside the caller's transaction: a receiver's work (queueing classification) commits or
        # rolls back with the images.
        cell_images_added.send(sender=Slide, actor=actor, slide=slide)
    return outcomes


def _candidate_store(
    *,
    actor: User,
    slide: Slide,
    candidate: Candidate,
    limits: UploadLimits,
    budget: UploadBudget,
    kind: ImageKind,
) -> UploadOutcome:
    if candidate.rejection:
        return UploadOutcome(candidate.display_name, reason=candidate.rejection)
    try:
        image = image_validate(
            data=candidate.data, original_filename=candidate.original_filename, limits=limits, budget=budget
        )
        if kind == ImageKind.AUTO:
            kind = ImageKind(image_kind_detect(width=image.width, height=image.height))
        if kind == ImageKind.FIELD:
            field_image = field_image_create(actor=actor, slide=slide, image=image)
            return UploadOutcome(candidate.display_name, field_image=field_image)
        cell_image = cell_image_create(actor=actor, slide=slide, image=image)
    except UploadRejected as rejected:
        logger.info("Upload to slide %s rejected: %s: %s", slide.pk, candidate.display_name, rejected.reason)
        return UploadOutcome(candidate.display_name, reason=rejected.reason)
    return UploadOutcome(candidate.display_name, cell_image=cell_image)


# --- Cells of a field -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldCellCrop:
    """One cell of a field: its box (field pixels, top-left corner and size), the locator's score
    (None for a box drawn by a pathologist) and the classifier's crop as PNG bytes."""

    box_x: int
    box_y: int
    box_w: int
    box_h: int
    score: float | None
    png: bytes
    crop_size: int

    @property
    def box(self) -> list[int]:
        return [self.box_x, self.box_y, self.box_w, self.box_h]


class FieldBoxTaken(UploadRejected):
    def __init__(self) -> None:
        super().__init__("a cell with exactly this box is already on the field")


def _field_cell_row(
    field_image: FieldImage, crop: FieldCellCrop, source: CellSource, actor: User
) -> CellImage:
    name = f"{field_image.original_filename} › box {crop.box_x},{crop.box_y} {crop.box_w}×{crop.box_h}"
    return CellImage(
        slide_id=field_image.slide_id,
        sha256=hashlib.sha256(crop.png).hexdigest(),
        image_format="PNG",
        width=crop.crop_size,
        height=crop.crop_size,
        size_bytes=len(crop.png),
        original_filename=name[:255],
        uploaded_by=actor,
        source=source,
        field_image=field_image,
        box_x=crop.box_x,
        box_y=crop.box_y,
        box_w=crop.box_w,
        box_h=crop.box_h,
        locator_score=crop.score if source == CellSource.LOCATED else None,
    )


def _field_cell_save(cell_image: CellImage, png: bytes) -> None:
    cell_image.file.save(f"{uuid.uuid4().hex}.png", ContentFile(png), save=False)
    cell_image.save()


def _same_cell(first: CellImage, second: CellImage) -> bool:
    """Overlapping boxes whose crops are the very same pixels found the same nucleus: one cell."""
    overlap_x = min(first.box_x + first.box_w, second.box_x + second.box_w) > max(first.box_x, second.box_x)
    overlap_y = min(first.box_y + first.box_h, second.box_y + second.box_h) > max(first.box_y, second.box_y)
    return first.sha256 == second.sha256 and overlap_x and overlap_y


def field_cells_store(
    *, field_image: FieldImage, crops: Sequence[FieldCellCrop], locator: dict, actor_username: str
) -> tuple[list[CellImage], bool]:
    """Record the worker's located cells of a field, once: (the field's located cells, whether
    this call stored them). A second call (a redelivered job) finds the field located and stores
    nothing. Overlapping boxes giving the very same crop are one cell: only the first (best) is kept."""
    stored: list[CellImage] = []
    try:
        with transaction.atomic():
            field_image = FieldImage.objects.select_for_update().get(pk=field_image.pk)
            if field_image.is_located:
                return list(field_image.cells.filter(source=CellSource.LOCATED).order_by("id")), False
            for crop in crops:
                cell_image = _field_cell_row(field_image, crop, CellSource.LOCATED, field_image.uploaded_by)
                if any(_same_cell(cell_image, kept) for kept in stored):
                    continue
                stored.append(cell_image)
                _field_cell_save(cell_image, crop.png)
            FieldImage.objects.filter(pk=field_image.pk).update(
                located_at=timezone.now(), located_count=len(stored), locator=locator, location_error=""
            )
            audit_event_record(
                action=AuditAction.FIELD_IMAGE_LOCATED,
                actor=None,
                actor_username=actor_username,
                target=field_image,
                after={
                    "slide_id": field_image.slide_id,
                    "count": len(stored),
                    "cells": [
                        {"cell_image_id": c.pk, "box": list(c.box), "score": c.locator_score} for c in stored
                    ],
                },
            )
    except BaseException:
        for cell_image in stored:
            if cell_image.file.name:
                cell_image.file.storage.delete(cell_image.file.name)
        raise
    return stored, True


def field_location_failed(*, field_image: FieldImage, reason: str) -> None:
    """The worker could not read the field: say why on it (a later job tries again)."""
    FieldImage.objects.filter(pk=field_image.pk, located_at=None).update(location_error=reason[:2000])


def field_cell_add(
    *, actor: User, field_image: FieldImage, crop: FieldCellCrop, reason: str = ""
) -> CellImage:
    """A cell the locator missed, boxed by a pathologist on the field: stored as a cell image of
    the slide (source "added"), audited. Its classification is queued by the caller."""
    cell_image = _field_cell_row(field_image, crop, CellSource.ADDED, actor)
    try:
        with transaction.atomic():
            slide_ensure_unlocked(Slide.objects.select_for_update().get(pk=field_image.slide_id))
            if CellImage.objects.filter(
                field_image=field_image,
                box_x=crop.box_x,
                box_y=crop.box_y,
                box_w=crop.box_w,
                box_h=crop.box_h,
            ).exists():
                raise FieldBoxTaken()
            _field_cell_save(cell_image, crop.png)
            audit_event_record(
                action=AuditAction.FIELD_CELL_ADDED,
                actor=actor,
                target=cell_image,
                after={
                    "slide_id": field_image.slide_id,
                    "field_image_id": field_image.pk,
                    "box": crop.box,
                    "sha256": cell_image.sha256,
                },
                reason=reason,
            )
    except BaseException as error:
        if cell_image.file.name:
            cell_image.file.storage.delete(cell_image.file.name)
        if isinstance(error, IntegrityError):
            raise FieldBoxTaken() from error
        raise
    return cell_image


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
