"""API tokens expire: a token older than HEMATOVISION_API_TOKEN_HOURS is refused and deleted."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.services import api_token_issue
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _patients(key: str):
    return Client().get(reverse("api:patient-list"), HTTP_AUTHORIZATION=f"Token {key}")


def test_a_token_works_until_its_lifetime_ends_then_is_refused_and_deleted(lab_staff, settings):
    settings.HEMATOVISION_API_TOKEN_HOURS = 12
    token = api_token_issue(user=lab_staff)
    assert _patients(token.key).status_code == 200

    Token.objects.filter(pk=token.pk).update(created=timezone.now() - datetime.timedelta(hours=12, minutes=1))
    expired = _patients(token.key)

    assert expired.status_code == 401
    assert "Token expired" in expired.json()["detail"]
    assert not Token.objects.filter(pk=token.pk).exists()


def test_a_new_token_after_expiry_works(lab_staff, settings):
    settings.HEMATOVISION_API_TOKEN_HOURS = 1
    old = api_token_issue(user=lab_staff)
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - datetime.timedelta(hours=2))

    issued = Client().post(reverse("api:token"), {"username": lab_staff.username, "password": PASSWORD})

    assert issued.status_code == 200
    assert _patients(issued.json()["token"]).status_code == 200
    assert _patients(old.key).status_code == 401
