"""Reading clinical records. The ``*_visible_queryset`` helpers are the only place that decides
which rows a user may see; everything else starts from them, and rows outside them are 404."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, FieldImage, Patient, Slide, SlideStatus

# The fields that say who a patient is: a signed report keeps them as they were at signing.
PATIENT_IDENTITY_FIELDS = ("mrn", "family_name", "given_name", "date_of_birth", "sex")


def patient_visible_queryset(user: AbstractBaseUser) -> QuerySet[Patient]:
    if not user.is_authenticated or not user.has_perm("cases.view_patient"):
        return Patient.objects.none()
    return Patient.objects.all()


def slide_visible_queryset(user: AbstractBaseUser) -> QuerySet[Slide]:
    if not user.is_authenticated or not user.has_perm("cases.view_slide"):
        return Slide.objects.none()
    return Slide.objects.filter(patient__in=patient_visible_queryset(user)).select_related(
        "patient", "created_by"
    )


def cell_image_visible_queryset(user: AbstractBaseUser) -> QuerySet[CellImage]:
    if not user.is_authenticated or not user.has_perm("cases.view_cellimage"):
        return CellImage.objects.none()
    return CellImage.objects.filter(slide__in=slide_visible_queryset(user)).select_related("uploaded_by")


def field_image_visible_queryset(user: AbstractBaseUser) -> QuerySet[FieldImage]:
    """Fields of the slides the user may see, for those who may see cell images."""
    if not user.is_authenticated or not user.has_perm("cases.view_cellimage"):
        return FieldImage.objects.none()
    return FieldImage.objects.filter(slide__in=slide_visible_queryset(user)).select_related(
        "slide__patient", "uploaded_by"
    )


def patient_list(*, user: AbstractBaseUser, search: str = "") -> QuerySet[Patient]:
    patients = patient_visible_queryset(user).annotate(slide_count=Count("slides"))
    for term in search.split():
        patients = patients.filter(
            Q(mrn__icontains=term) | Q(family_name__icontains=term) | Q(given_name__icontains=term)
        )
    return patients.order_by("family_name", "given_name", "mrn")


def slide_list(
    *, user: AbstractBaseUser, search: str = "", status: str = "", patient: Patient | None = None
) -> QuerySet[Slide]:
    slides = slide_visible_queryset(user).annotate(cell_image_count=Count("cell_images"))
    if search:
        slides = slides.filter(
            Q(accession_number__icontains=search)
            | Q(patient__mrn__icontains=search)
            | Q(patient__family_name__icontains=search)
        )
    if status:
        slides = slides.filter(status=status)
    if patient is not None:
        slides = slides.filter(patient=patient)
    return slides.order_by("-collected_at", "accession_number")


def cell_image_list(*, user: AbstractBaseUser, slide: Slide) -> QuerySet[CellImage]:
    return cell_image_visible_queryset(user).filter(slide=slide).order_by("id")


def patient_identity(patient: Patient) -> dict[str, Any]:
    """The patient's identifiers as JSON values (a date as ISO text), for a signature to keep."""
    values = {name: getattr(patient, name) for name in PATIENT_IDENTITY_FIELDS}
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in values.items()}


def patient_signed_slides(patient: Patient) -> list[Slide]:
    """The patient's slides that have a signed report: signed now, or signed once and reopened
    since (the slide's status changes are in the audit trail, written by ``slide_status_change``)."""
    slides = list(Slide.objects.filter(patient=patient).order_by("accession_number"))
    ever_signed = set(
        AuditEvent.objects.filter(
            action=AuditAction.SLIDE_STATUS_CHANGED,
            object_type=Slide._meta.label_lower,
            object_id__in=[str(slide.pk) for slide in slides],
            after__status=SlideStatus.SIGNED.value,
        ).values_list("object_id", flat=True)
    )
    return [slide for slide in slides if slide.status == SlideStatus.SIGNED or str(slide.pk) in ever_signed]


def patient_corrections(*, patient: Patient, since: datetime | None = None) -> list[AuditEvent]:
    """Corrections of the patient's identity (made while signed reports existed), oldest first."""
    events = AuditEvent.objects.filter(
        action=AuditAction.PATIENT_CORRECTED, object_type=Patient._meta.label_lower, object_id=str(patient.pk)
    )
    if since is not None:
        events = events.filter(created_at__gt=since)
    return list(events.order_by("id"))


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


def slide_status_counts(*, user: AbstractBaseUser) -> list[StatusCount]:
    """How many slides are in each status, every status listed (zero too). Users who may see
    slides count the slides they may see; other role holders (admins) the lab's slides, as numbers
    only."""
    slides = slide_visible_queryset(user) if user.has_perm("cases.view_slide") else Slide.objects.all()
    counts = dict(slides.order_by().values_list("status").annotate(count=Count("pk")))
    return [StatusCount(value, label, counts.get(value, 0)) for value, label in SlideStatus.choices]
