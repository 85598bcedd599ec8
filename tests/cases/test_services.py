import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from cases.models import Patient, Sex, Slide, SlideStatus, Stain
from cases.services import (
    PatientCorrectionError,
    SlideLockedError,
    SlideTransitionError,
    patient_create,
    patient_update,
    slide_create,
    slide_status_change,
    slide_update,
)
from tests.factories import slide_make

pytestmark = pytest.mark.django_db


def only_event() -> AuditEvent:
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, [event.action for event in events]
    return events[0]


def test_patient_create_saves_and_audits(lab_staff):
    patient = patient_create(
        actor=lab_staff,
        mrn="A1",
        family_name="Doe",
        given_name="Jane",
        date_of_birth=datetime.date(1980, 5, 17),
        sex=Sex.FEMALE,
    )
    assert Patient.objects.get().created_by == lab_staff
    event = only_event()
    assert (event.action, event.object_type, event.object_id) == (
        AuditAction.PATIENT_CREATED,
        "cases.patient",
        str(patient.pk),
    )
    assert event.after["date_of_birth"] == "1980-05-17"
    assert event.actor == lab_staff


def test_patient_create_refuses_a_duplicate_mrn_and_audits_nothing(lab_staff, patient):
    with pytest.raises(ValidationError, match="MRN"):
        patient_create(
            actor=lab_staff,
            mrn=patient.mrn,
            family_name="X",
            given_name="Y",
            date_of_birth=datetime.date(1990, 1, 1),
            sex=Sex.MALE,
        )
    assert Patient.objects.count() == 1
    assert AuditEvent.objects.count() == 0


def test_patient_update_audits_only_changed_fields(lab_staff, patient):
    patient_update(actor=lab_staff, patient=patient, changes={"family_name": "Smith", "given_name": "Jane"})
    event = only_event()
    assert event.action == AuditAction.PATIENT_UPDATED
    assert (event.before, event.after) == ({"family_name": "Doe"}, {"family_name": "Smith"})
    assert Patient.objects.get().family_name == "Smith"


def test_patient_update_without_a_change_writes_no_event(lab_staff, patient):
    patient_update(actor=lab_staff, patient=patient, changes={"family_name": "Doe"})
    assert AuditEvent.objects.count() == 0


def test_patient_update_refuses_fields_that_are_not_editable(lab_staff, patient):
    with pytest.raises(ValueError, match="created_by"):
        patient_update(actor=lab_staff, patient=patient, changes={"created_by": None})


def test_slide_create_starts_as_draft_and_audits(lab_staff, patient):
    slide = slide_create(
        actor=lab_staff,
        patient=patient,
        accession_number="S-9",
        collected_at=timezone.now(),
        stain=Stain.GIEMSA,
    )
    assert Slide.objects.get().status == SlideStatus.DRAFT
    event = only_event()
    assert (event.action, event.object_id) == (AuditAction.SLIDE_CREATED, str(slide.pk))
    assert event.after["patient_id"] == patient.pk


def test_slide_update_audits_the_change(lab_staff, slide):
    slide_update(actor=lab_staff, slide=slide, changes={"notes": "lipaemic"})
    event = only_event()
    assert (event.action, event.before, event.after) == (
        AuditAction.SLIDE_UPDATED,
        {"notes": ""},
        {"notes": "lipaemic"},
    )


def test_a_signed_slide_refuses_edits(lab_staff, slide):
    Slide.objects.filter(pk=slide.pk).update(status=SlideStatus.SIGNED)
    with pytest.raises(SlideLockedError):
        slide_update(actor=lab_staff, slide=slide, changes={"notes": "late note"})
    assert Slide.objects.get().notes == ""
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (SlideStatus.DRAFT, SlideStatus.SUBMITTED),
        (SlideStatus.SUBMITTED, SlideStatus.IN_REVIEW),
        (SlideStatus.IN_REVIEW, SlideStatus.SIGNED),
        (SlideStatus.SIGNED, SlideStatus.IN_REVIEW),
    ],
)
def test_allowed_status_changes_are_made_and_audited(lab_staff, slide, from_status, to_status):
    Slide.objects.filter(pk=slide.pk).update(status=from_status)
    slide_status_change(actor=lab_staff, slide=slide, to_status=to_status, reason="why")
    assert Slide.objects.get().status == to_status
    event = only_event()
    assert (event.action, event.before, event.after, event.reason) == (
        AuditAction.SLIDE_STATUS_CHANGED,
        {"status": from_status.value},
        {"status": to_status.value},
        "why",
    )


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (SlideStatus.DRAFT, SlideStatus.SIGNED),
        (SlideStatus.DRAFT, SlideStatus.IN_REVIEW),
        (SlideStatus.SUBMITTED, SlideStatus.DRAFT),
        (SlideStatus.SIGNED, SlideStatus.DRAFT),
        (SlideStatus.IN_REVIEW, SlideStatus.IN_REVIEW),
    ],
)
def test_other_status_changes_fail_loudly(lab_staff, slide, from_status, to_status):
    Slide.objects.filter(pk=slide.pk).update(status=from_status)
    with pytest.raises(SlideTransitionError):
        slide_status_change(actor=lab_staff, slide=slide, to_status=to_status)
    assert Slide.objects.get().status == from_status
    assert AuditEvent.objects.count() == 0


def test_a_stale_slide_object_cannot_repeat_a_transition(lab_staff, slide):
    stale_copy = Slide.objects.get(pk=slide.pk)
    slide_status_change(actor=lab_staff, slide=slide, to_status=SlideStatus.SUBMITTED)
    with pytest.raises(SlideTransitionError):
        slide_status_change(actor=lab_staff, slide=stale_copy, to_status=SlideStatus.SUBMITTED)
    assert AuditEvent.objects.filter(action=AuditAction.SLIDE_STATUS_CHANGED).count() == 1


def test_cell_image_create_stores_the_file_and_writes_one_upload_event(lab_staff, slide):
    from cases.services import cell_image_create
    from cases.uploads import UploadLimits, image_validate
    from tests.factories import distinct_png

    data = distinct_png(42)
    image = image_validate(data=data, original_filename="cell.png", limits=UploadLimits.from_settings())
    cell_image = cell_image_create(actor=lab_staff, slide=slide, image=image)
    event = only_event()
    assert (event.action, event.object_type, event.object_id) == (
        AuditAction.CELL_IMAGE_UPLOADED,
        "cases.cellimage",
        str(cell_image.pk),
    )
    assert event.after == {
        "slide_id": slide.pk,
        "sha256": image.sha256,
        "original_filename": "cell.png",
        "format": "PNG",
        "width": 24,
        "height": 18,
        "size_bytes": len(data),
    }
    with cell_image.file.open("rb") as stored:
        assert stored.read() == data


def test_changing_a_patient_with_a_signed_slide_is_a_reasoned_correction(lab_staff, patient):
    signed = slide_make(patient, lab_staff, "S-SIGNED-1", status=SlideStatus.SIGNED)

    with pytest.raises(PatientCorrectionError, match="S-SIGNED-1"):
        patient_update(actor=lab_staff, patient=patient, changes={"family_name": "Roe"})
    patient.refresh_from_db()
    assert patient.family_name != "Roe"

    patient_update(actor=lab_staff, patient=patient, changes={"family_name": "Roe"}, reason="Married name")
    event = AuditEvent.objects.get(action=AuditAction.PATIENT_CORRECTED)
    assert (event.reason, event.after) == (
        "Married name",
        {"family_name": "Roe", "signed_slides": [signed.accession_number]},
    )
    assert not AuditEvent.objects.filter(action=AuditAction.PATIENT_UPDATED).exists()


def test_a_slide_signed_once_and_reopened_still_makes_a_change_a_correction(lab_staff, patient):
    slide = slide_make(patient, lab_staff, "S-REOPENED-1", status=SlideStatus.IN_REVIEW)
    slide_status_change(actor=lab_staff, slide=slide, to_status=SlideStatus.SIGNED)
    slide_status_change(actor=lab_staff, slide=slide, to_status=SlideStatus.IN_REVIEW, reason="amend")

    with pytest.raises(PatientCorrectionError):
        patient_update(actor=lab_staff, patient=patient, changes={"mrn": "NEW-1"})
