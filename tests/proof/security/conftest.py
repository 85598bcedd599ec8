"""The security tier: clients that log in and post forms as a browser does, CSRF checks on."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from cases.models import Slide
from tests.cases.upload_corpus import TEST_LIMITS
from tests.conftest import PASSWORD
from tests.factories import patient_make, slide_make

# One of each object the URLs serve: the permission matrix's set, shared rather than rebuilt.
from tests.hematovision_site.test_permission_matrix import objects as objects

_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token_in(html: bytes) -> str:
    """The token a page's form would send back."""
    match = _CSRF_FIELD.search(html.decode())
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def browser_login(username: str) -> Client:
    """A client with CSRF checks on, logged in through the login form; a server error is
    answered as a 500 response (as a browser would see it), not raised into the test."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    page = client.get(reverse("accounts:login"))
    response = client.post(
        reverse("accounts:login"),
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf_token_in(page.content)},
    )
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def upload_limits(settings, tmp_path):
    """The limits the upload corpus is sized for; request bodies are spooled to a folder we watch."""
    settings.HEMATOVISION_UPLOAD_MAX_FILE_BYTES = TEST_LIMITS.max_file_bytes
    settings.HEMATOVISION_UPLOAD_MAX_PIXELS = TEST_LIMITS.max_pixels
    settings.HEMATOVISION_ARCHIVE_MAX_MEMBERS = TEST_LIMITS.archive_max_members
    settings.HEMATOVISION_ARCHIVE_MAX_TOTAL_BYTES = TEST_LIMITS.archive_max_total_bytes
    settings.HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES = 64 * 1024 * 1024
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "upload-spool"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    return settings


@pytest.fixture
def slide(lab_staff) -> Slide:
    return slide_make(patient_make(lab_staff, "SEC-0001"), lab_staff, "SEC-S-0001")
