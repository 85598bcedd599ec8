"""Every file of the bad-upload corpus, posted as lab staff through the upload page (session and
CSRF token, as a browser does) and through the REST API (token), one request per file: none may
cause a server error, each must be refused with a reason, and nothing may be stored."""

import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage
from tests.cases.upload_corpus import bad_upload_corpus
from tests.conftest import PASSWORD
from tests.proof.security.conftest import browser_login, csrf_token_in

CORPUS = bad_upload_corpus()


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body carrying the name exactly as a browser would send it.

    Django's test client keeps only ``os.path.basename`` of a name, which would hide traversal
    names from the server; browsers escape only CR, LF and the double quote.
    """
    boundary = f"----corpus{uuid.uuid4().hex}"
    assert boundary.encode() not in data
    quoted = filename.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{quoted}"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def page_refusal(response: HttpResponse) -> tuple[int, list[str]]:
    """(files answered, reasons for the refused ones) on the upload page.

    A request Django cannot parse (e.g. a part header over its 1 kB limit) never reaches the
    view: it is refused as a whole with the 400 page (templates/400.html), whose text is the reason.
    """
    if "400.html" in {template.name for template in response.templates}:
        page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
        assert "The request could not be read (400)" in page
        return 1, [page.strip()]
    if response.context.get("error"):
        return 1, [response.context["error"]]
    outcomes = response.context["outcomes"]
    return len(outcomes), [outcome.reason for outcome in outcomes if not outcome.accepted]


def api_refusal(response: HttpResponse) -> tuple[int, list[str]]:
    body = response.json()
    if "results" not in body:
        return 1, [str(message) for message in body.values()]
    return len(body["results"]), [result["reason"] for result in body["results"] if not result["accepted"]]


def problems(what: str, response: HttpResponse, refusal: tuple[int, list[str]]) -> Iterable[str]:
    answered, reasons = refusal
    if response.status_code >= 500:
        yield f"{what}: server error {response.status_code}"
    elif response.status_code != 400:
        yield f"{what}: answered {response.status_code}, expected 400"
    elif not answered or len(reasons) != answered or not all(reasons):
        yield f"{what}: not every file was refused with a reason ({reasons!r})"


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def api_token_client() -> Client:
    """Token authentication with CSRF checks on: token requests are exempt by design."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    token = client.post(reverse("api:token"), {"username": "lab", "password": PASSWORD}).json()["token"]
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token}"
    return client


@pytest.mark.django_db
def test_the_corpus_is_refused_file_by_file_through_page_and_api(lab_staff, slide, upload_limits, media_root):
    page_url = reverse("cases:cell_image_upload", args=[slide.pk])
    api_url = reverse("api:slide-cell-images", args=[slide.pk])
    browser, api = browser_login("lab"), api_token_client()
    token = csrf_token_in(browser.get(page_url).content)
    found, server_errors = [], 0
    for name, data, what in CORPUS:
        body, content_type = multipart({"csrfmiddlewaretoken": token}, name, data)
        page = browser.generic("POST", page_url, body, content_type=content_type)
        refusal = page_refusal(page) if page.status_code == 400 else (0, [])
        found += problems(f"page, {what}", page, refusal)
        body, content_type = multipart({}, name, data)
        answer = api.generic("POST", api_url, body, content_type=content_type)
        refusal = api_refusal(answer) if answer.status_code == 400 else (0, [])
        found += problems(f"API, {what}", answer, refusal)
        server_errors += (page.status_code >= 500) + (answer.status_code >= 500)
    assert len(CORPUS) >= 200
    assert server_errors == 0
    assert found == []
    assert CellImage.objects.count() == 0
    assert not AuditEvent.objects.filter(action=AuditAction.CELL_IMAGE_UPLOADED).exists()
    assert stored_files(media_root) == []
    assert stored_files(upload_limits.FILE_UPLOAD_TEMP_DIR) == []
