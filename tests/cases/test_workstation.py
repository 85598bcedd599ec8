"""The workstation fixes of issue 12 on the clinical records: slides counted by status on every
role's home page, signed slides shown read-only with the reason, MRNs unique ignoring case and
no date of birth in the future (pages and API)."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cases.models import Patient, SlideStatus
from tests.factories import distinct_png, patient_make, slide_make, uploaded

pytestmark = pytest.mark.django_db

PATIENT = {
    "mrn": "MRN-1001",
    "family_name": "Doe",
    "given_name": "Jane",
    "date_of_birth": "1980-05-17",
    "sex": "female",
}


@pytest.fixture
def signed_slide(lab_staff):
    return slide_make(patient_make(lab_staff, "MRN-7001"), lab_staff, "S-7001", status=SlideStatus.SIGNED)


def _counts(html: str) -> dict[str, int]:
    import re

    return {
        status: int(count)
        for status, count in re.findall(
            r'data-status="(\w+)">\s*<div class="card-body[^"]*"><div[^>]*data-count>(\d+)', html
        )
    }


def test_every_role_sees_slides_counted_by_status_on_the_home_page(
    lab_client, pathologist_client, administrator_client, lab_staff
):
    patient = patient_make(lab_staff, "MRN-7002")
    for number, status in enumerate(["draft", "ready_for_review", "ready_for_review", "signed"]):
        slide_make(patient, lab_staff, f"S-72{number}", status=status)

    expected = {"draft": 1, "submitted": 0, "ready_for_review": 2, "in_review": 0, "signed": 1}
    for client in (lab_client, pathologist_client, administrator_client):
        html = client.get(reverse("home")).content.decode()
        assert _counts(html) == expected
    assert (
        f'href="{reverse("cases:slide_list")}?status=ready_for_review"'
        in lab_client.get(reverse("home")).content.decode()
    )
    assert "?status=" not in administrator_client.get(reverse("home")).content.decode()


def test_a_user_without_a_role_sees_no_counts(client, outsider):
    client.force_login(outsider)
    assert 'id="slide-counts"' not in client.get(reverse("home")).content.decode()


def test_a_signed_slides_edit_form_is_read_only_with_the_reason(lab_client, signed_slide):
    url = reverse("cases:slide_update", args=[signed_slide.pk])

    page = lab_client.get(url)
    posted = lab_client.post(url, {"accession_number": "CHANGED", "collected_at": "2026-01-01T10:00"})

    html = page.content.decode()
    assert (
        page.status_code == 200 and 'id="locked-reason"' in html and "is signed, so it is read-only" in html
    )
    assert 'name="submit"' not in html and html.count(" disabled") >= 4
    assert posted.status_code == 409
    signed_slide.refresh_from_db()
    assert signed_slide.accession_number == "S-7001"


def test_a_signed_slides_upload_page_offers_no_upload(lab_client, signed_slide, media_root):
    url = reverse("cases:cell_image_upload", args=[signed_slide.pk])

    page = lab_client.get(url)
    posted = lab_client.post(url, {"files": [uploaded("a.png", distinct_png(5))]})

    assert page.status_code == 200 and 'type="file"' not in page.content.decode()
    assert "is signed, so it is read-only" in page.content.decode()
    assert posted.status_code == 409 and not signed_slide.cell_images.exists()


def test_the_patient_form_refuses_an_mrn_differing_only_in_case(lab_client, lab_staff):
    patient_make(lab_staff, "MRN-1001")

    response = lab_client.post(reverse("cases:patient_create"), {**PATIENT, "mrn": "mrn-1001"})

    assert response.status_code == 200
    assert response.context["form"].errors["mrn"] == [
        "A patient with this MRN already exists (MRNs are compared ignoring upper and lower case)."
    ]
    assert Patient.objects.count() == 1


def test_the_patient_form_refuses_a_birth_date_in_the_future(lab_client):
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()

    response = lab_client.post(reverse("cases:patient_create"), {**PATIENT, "date_of_birth": tomorrow})

    assert response.context["form"].errors["date_of_birth"] == ["The date of birth cannot be in the future."]
    assert not Patient.objects.exists()
    page = lab_client.get(reverse("cases:patient_create")).content.decode()
    assert f'max="{timezone.localdate().isoformat()}"' in page


def test_editing_a_patient_keeps_its_own_mrn_but_not_anothers(lab_client, lab_staff):
    patient = patient_make(lab_staff, "MRN-1001")
    patient_make(lab_staff, "MRN-2002")
    url = reverse("cases:patient_update", args=[patient.pk])

    kept = lab_client.post(url, {**PATIENT, "mrn": "mrn-1001", "given_name": "Janet"})
    taken = lab_client.post(url, {**PATIENT, "mrn": "Mrn-2002"})

    assert kept.status_code == 302
    assert "MRNs are compared ignoring upper and lower case" in taken.content.decode()
    patient.refresh_from_db()
    assert (patient.mrn, patient.given_name) == ("mrn-1001", "Janet")


def test_the_api_refuses_case_twins_and_future_birth_dates(lab_staff):
    api = APIClient()
    api.force_authenticate(lab_staff)
    url = reverse("api:patient-list")
    assert api.post(url, PATIENT, format="json").status_code == 201

    twin = api.post(url, {**PATIENT, "mrn": "mrn-1001"}, format="json")
    future = api.post(url, {**PATIENT, "mrn": "MRN-3", "date_of_birth": "2090-01-01"}, format="json")

    assert twin.status_code == 400 and "ignoring upper and lower case" in twin.json()["mrn"][0]
    assert future.status_code == 400 and future.json()["date_of_birth"] == [
        "The date of birth cannot be in the future."
    ]
    assert Patient.objects.count() == 1


def test_the_database_refuses_case_twins_too(lab_staff):
    patient_make(lab_staff, "MRN-1001")
    with pytest.raises(IntegrityError), transaction.atomic():
        patient_make(lab_staff, "mrn-1001")
