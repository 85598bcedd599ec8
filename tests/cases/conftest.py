import datetime

import pytest
from django.utils import timezone

from cases.models import Patient, Sex, Slide, Stain


@pytest.fixture
def patient(lab_staff) -> Patient:
    return Patient.objects.create(
        mrn="MRN-0001",
        family_name="Doe",
        given_name="Jane",
        date_of_birth=datetime.date(1980, 5, 17),
        sex=Sex.FEMALE,
        created_by=lab_staff,
    )


@pytest.fixture
def other_patient(lab_staff) -> Patient:
    return Patient.objects.create(
        mrn="MRN-0002",
        family_name="Roe",
        given_name="Richard",
        date_of_birth=datetime.date(1975, 1, 2),
        sex=Sex.MALE,
        created_by=lab_staff,
    )


@pytest.fixture
def slide(patient, lab_staff) -> Slide:
    return Slide.objects.create(
        patient=patient,
        accession_number="S-0001",
        collected_at=timezone.now() - datetime.timedelta(hours=2),
        stain=Stain.WRIGHT_GIEMSA,
        created_by=lab_staff,
    )
