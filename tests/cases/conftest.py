import datetime

import pytest

from cases.models import Patient, Sex, Slide
from tests.factories import patient_make, slide_make


@pytest.fixture
def patient(lab_staff) -> Patient:
    return patient_make(lab_staff, "MRN-0001")


@pytest.fixture
def other_patient(lab_staff) -> Patient:
    return patient_make(
        lab_staff,
        "MRN-0002",
        family_name="Roe",
        given_name="Richard",
        date_of_birth=datetime.date(1975, 1, 2),
        sex=Sex.MALE,
    )


@pytest.fixture
def slide(patient, lab_staff) -> Slide:
    return slide_make(patient, lab_staff, "S-0001")
