"""CSRF on every URL: each unsafe method, sent by a logged-in browser session without the token,
is refused before any view runs, and the same request with the token is not.

HTML pages rely on Django's CsrfViewMiddleware. API views are exempt from it, and DRF's
SessionAuthentication enforces the same check itself when a request is authenticated by the
session cookie; a request authenticated by ``Authorization: Token`` carries no ambient
credential a third-party site could ride on, so it needs no CSRF token (by design), and neither
does ``api:token``, which authenticates nobody from cookies.
"""

import secrets

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import api_token_issue
from audit.models import AuditAction, AuditEvent
from tests.hematovision_site.test_permission_matrix import MATRIX, all_url_names

UNSAFE_METHODS = ("post", "put", "patch", "delete")
NEVER_CSRF = {"api:token"}  # authenticates from the body, never from a cookie


def url_of(name: str, objects: dict) -> str:
    cell = MATRIX[name]
    return reverse(name, args=[*(objects[key].pk for key in cell.kwargs), *cell.extra_args])


def session_client(user: User, token: str = "") -> Client:
    """A logged-in browser session with CSRF checks on; with ``token``, it sends it back."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    if token:
        client.cookies["csrftoken"] = token
        client.defaults["HTTP_X_CSRFTOKEN"] = token
    return client


def is_csrf_refusal(response: HttpResponse) -> bool:
    """Django's CSRF page, or DRF's "CSRF Failed" (rendered as a bare 403 page by the HTML-only
    Swagger view, so read from the response's data)."""
    data = getattr(response, "data", None)
    detail = str(data.get("detail", "")) if isinstance(data, dict) else ""
    return response.status_code == 403 and (b"CSRF" in response.content or detail.startswith("CSRF"))


def send(client: Client, method: str, url: str) -> HttpResponse:
    return getattr(client, method)(url, data={}, content_type="application/x-www-form-urlencoded")


def role_for(name: str, lab_staff: User, pathologist: User, administrator: User) -> User:
    """A user whose role may use the URL, so that only the CSRF check can refuse the request."""
    if name.startswith(("accounts:user", "api:user", "audit:", "api:audit", "classifier:model_version")):
        return administrator
    if name.startswith(("review:", "api:prediction")):
        return pathologist
    return lab_staff


@pytest.mark.django_db
def test_every_unsafe_request_without_the_token_is_refused(objects, lab_staff, pathologist, administrator):
    # Logging each client in is audited; anything else would be a change that got through.
    changes = AuditEvent.objects.exclude(action=AuditAction.LOGIN)
    changes_before = changes.count()
    unprotected, names = [], sorted(all_url_names() - NEVER_CSRF)
    for name in names:
        user = role_for(name, lab_staff, pathologist, administrator)
        for method in UNSAFE_METHODS:
            response = send(session_client(user), method, url_of(name, objects))
            if not is_csrf_refusal(response):
                unprotected.append(f"{method.upper()} {name} -> {response.status_code}")
    assert len(names) >= 70
    assert unprotected == []
    assert changes.count() == changes_before


@pytest.mark.django_db
def test_the_same_posts_with_the_token_pass_the_check(objects, lab_staff, pathologist, administrator):
    """The control: the refusals above come from the missing token, not from the role or URL."""
    refused = []
    for name in sorted(all_url_names() - NEVER_CSRF):
        user = role_for(name, lab_staff, pathologist, administrator)
        response = send(session_client(user, token=secrets.token_hex(16)), "post", url_of(name, objects))
        if is_csrf_refusal(response):
            refused.append(name)
    assert refused == []


@pytest.mark.django_db
def test_token_authenticated_api_requests_need_no_csrf_token(objects, lab_staff):
    token = api_token_issue(user=lab_staff).key
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post(reverse("api:patient-list"), {}, content_type="application/json")
    assert response.status_code == 400  # reached the serializer: no CSRF refusal
    assert "mrn" in response.json()


@pytest.mark.django_db
def test_a_session_api_write_is_refused_without_the_token_and_accepted_with_it(lab_staff):
    patient = {
        "mrn": "CSRF-1",
        "family_name": "A",
        "given_name": "B",
        "date_of_birth": "2000-01-01",
        "sex": "female",
    }
    refused = session_client(lab_staff).post(reverse("api:patient-list"), patient)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("CSRF Failed")
    with_token = session_client(lab_staff, token=secrets.token_hex(16))
    accepted = with_token.post(reverse("api:patient-list"), patient)
    assert accepted.status_code == 201
