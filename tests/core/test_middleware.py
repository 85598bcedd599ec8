import pytest
from django.test import Client
from django.urls import reverse

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
