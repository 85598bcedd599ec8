"""Configuration: production refuses to start half-configured, and passes Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hematovision_site.settings.environment import Environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.production",
    "SECRET_KEY": "k7#Vq2!pX9$wL4@zR8^nT1&bY6*cM3(fH5)jD0-gS" + "Qe4%uA7~vN2+rK8=tW5]xZ1",
    "ALLOWED_HOSTS": "hematovision.example.org",
    "DATABASE_URL": "postgres://hv:secret@db.example.org:5432/hematovision",
    "REDIS_URL": "redis://redis.example.org:6379/0",
}


def manage(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in PRODUCTION_ENVIRONMENT}
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=PROJECT_ROOT,
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_passes_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", environment=PRODUCTION_ENVIRONMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"])
def test_a_missing_required_variable_stops_start_up_naming_it(missing):
    environment = {key: value for key, value in PRODUCTION_ENVIRONMENT.items() if key != missing}
    result = manage("check", environment=environment)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


@pytest.mark.parametrize(
    "secret_key",
    ["short-but-not-empty", "a" * 64, "django-insecure-" + "k7#Vq2!pX9$wL4@zR8^nT1&bY6*cM3(fH5)jD0-gS"],
)
def test_production_refuses_a_weak_secret_key(secret_key):
    """Issue 11: a short SECRET_KEY was only warned about (security.W009)."""
    result = manage("check", environment={**PRODUCTION_ENVIRONMENT, "SECRET_KEY": secret_key})
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


def test_demo_users_are_refused_in_production():
    result = manage("demo_users", environment=PRODUCTION_ENVIRONMENT)
    assert result.returncode != 0
    assert "refused" in result.stderr


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("off", False), ("No", False)])
def test_booleans_are_parsed_strictly(raw, value):
    assert Environment({"FLAG": raw}).flag("FLAG", not value) is value


def test_a_misspelt_boolean_stops_start_up():
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        Environment({"FLAG": "ture"}).flag("FLAG", False)


def test_an_empty_required_variable_counts_as_missing():
    with pytest.raises(ImproperlyConfigured, match="Set the SECRET_KEY environment variable"):
        Environment({"SECRET_KEY": ""}).text("SECRET_KEY", required=True)


def test_lists_are_comma_separated():
    assert Environment({"HOSTS": "a.example, b.example,"}).items("HOSTS") == ["a.example", "b.example"]


def test_json_objects_are_parsed_and_anything_else_stops_start_up():
    assert Environment({"OPTIONS": ' {"epochs": 2} '}).json_object("OPTIONS") == {"epochs": 2}
    assert Environment({}).json_object("OPTIONS") == {}
    for raw in ("[1, 2]", "{epochs: 2}"):
        with pytest.raises(ImproperlyConfigured, match="OPTIONS must be a JSON object"):
            Environment({"OPTIONS": raw}).json_object("OPTIONS")


def _python(code: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "HEMATOVISION_"))}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=PROJECT_ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "hematovision_site.settings.base", **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_object_storage_is_chosen_by_environment():
    result = _python(
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, s.bucket_name, s.endpoint_url)",
        {
            "HEMATOVISION_FILE_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": "cells",
            "AWS_S3_ENDPOINT_URL": "http://minio.internal:9000",
        },
    )
    assert result.stdout.split() == ["S3Storage", "cells", "http://minio.internal:9000"], result.stderr


def test_object_storage_without_a_bucket_stops_start_up():
    result = _python("pass", {"HEMATOVISION_FILE_STORAGE": "s3"})
    assert "Set the AWS_STORAGE_BUCKET_NAME environment variable" in result.stderr
