import pytest
from django.test import Client
from django.urls import reverse

from cases.services import cell_image_create
from cases.uploads import UploadLimits, image_validate
from tests.factories import distinct_png, patient_make, slide_make


@pytest.fixture
def patient_for_cache(lab_staff):
    return patient_make(lab_staff, "CACHE-1")


@pytest.fixture
def cell_image_for_cache(lab_staff, patient_for_cache):
    slide = slide_make(patient_for_cache, lab_staff, "CACHE-S-1")
    image = image_validate(
        data=distinct_png(5), original_filename="c.png", limits=UploadLimits.from_settings()
    )
    return cell_image_create(actor=lab_staff, slide=slide, image=image)


pytestmark = pytest.mark.django_db


def test_pages_carry_a_content_security_policy_without_inline_scripts(lab_client):
    response = lab_client.get(reverse("home"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert b"<script>" not in response.content


def test_an_over_large_api_request_gets_a_json_413(settings, lab_client):
    settings.HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES = 10
    response = lab_client.post(reverse("api:patient-list"), data="x" * 100, content_type="application/json")
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_a_malformed_content_length_is_a_400():
    response = Client().post(
        reverse("accounts:login"), data="", content_type="text/plain", CONTENT_LENGTH="abc"
    )
    assert response.status_code == 400


def test_health_answers_without_login():
    response = Client().get(reverse("health"))
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_pages_and_api_answers_with_patient_data_are_never_stored(lab_client, patient_for_cache):
    """Issue 11: pages and API answers with patient data carried no Cache-Control."""
    page = lab_client.get(reverse("cases:patient_detail", args=[patient_for_cache.pk]))
    api = lab_client.get(reverse("api:patient-list"))
    assert page["Cache-Control"] == "no-store" and api["Cache-Control"] == "no-store"
    assert Client().get(reverse("api:patient-list"))["Cache-Control"] == "no-store"  # the 401 too


@pytest.mark.django_db
def test_cell_images_are_cached_privately_and_briefly(lab_client, cell_image_for_cache):
    for url in (
        reverse("cases:cell_image_file", args=[cell_image_for_cache.pk]),
        reverse("api:cell-image-file", args=[cell_image_for_cache.pk]),
    ):
        assert lab_client.get(url)["Cache-Control"] == "private, max-age=300"


@pytest.mark.django_db
def test_every_answer_carries_a_permissions_policy(lab_client):
    for response in (Client().get(reverse("accounts:login")), lab_client.get(reverse("home"))):
        assert "camera=()" in response["Permissions-Policy"]
        assert "geolocation=()" in response["Permissions-Policy"]
