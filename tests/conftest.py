"""Fixtures shared by the whole suite: one user per role plus an outsider, logged-in clients, and a
tiny real model for tests that run inference or Grad-CAM."""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.backends.postgresql.operations import DatabaseOperations
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from classifier.adapter import explainer_cache_clear, predictor_cache_clear
from classifier.models import ModelVersion
from classifier.services import model_version_register
from ml.testing import make_tiny_model_dir

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_truncate_triggers():
    """Transactional tests end with a flush, which TRUNCATEs every table, and the append-only
    tables refuse TRUNCATE. Only a superuser can turn triggers off for a statement (the test
    database's role is one): the flush does, inside its own transaction."""
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # noqa: ANN001, ANN202
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else statements

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


def audit_sequence_restart() -> None:
    """The audit id sequence as in a new database: rolled-back tests leave it advanced, and
    ``verify_audit`` requires the trail to start at the first id ever issued."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), 1, false)")


@pytest.fixture
def audit_ids_from_start(db) -> None:
    audit_sequence_restart()


@pytest.fixture(autouse=True)
def _isolated_media_root(settings, tmp_path):
    """Every test stores files in its own folder, so 'nothing left behind' can be checked."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def media_root(_isolated_media_root):
    return _isolated_media_root


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    def make(username: str, role: Role | None, **fields) -> User:
        user = User.objects.create_user(username=username, password=PASSWORD, **fields)
        if role is not None:
            user.groups.add(Group.objects.get(name=role.value))
        return user

    return make


@pytest.fixture
def lab_staff(make_user) -> User:
    return make_user("lab", Role.LAB_STAFF, first_name="Lena", last_name="Lab")


@pytest.fixture
def pathologist(make_user) -> User:
    return make_user("patho", Role.PATHOLOGIST, first_name="Paul", last_name="Patho")


@pytest.fixture
def administrator(make_user) -> User:
    return make_user("admin", Role.ADMIN, first_name="Ada", last_name="Admin")


@pytest.fixture
def trainee(make_user) -> User:
    return make_user("trainee", Role.TRAINEE, first_name="Tara", last_name="Trainee")


@pytest.fixture
def consultant(make_user) -> User:
    """An outside expert, with an e-mail address for the consult notifications."""
    return make_user(
        "consultant", Role.CONSULTANT, first_name="Cora", last_name="Consultant", email="cora@example.org"
    )


@pytest.fixture
def outsider(make_user) -> User:
    """Logged in but holding no role: must be refused everywhere a role is needed."""
    return make_user("outsider", None)


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lab_client(lab_staff) -> Client:
    return _client_for(lab_staff)


@pytest.fixture
def pathologist_client(pathologist) -> Client:
    return _client_for(pathologist)


@pytest.fixture
def administrator_client(administrator) -> Client:
    return _client_for(administrator)


# --- A tiny real model ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_source(tmp_path_factory) -> Path:
    """Built once per test session (TensorFlow import plus about a second)."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model-source") / "tiny-test")


@pytest.fixture
def models_root(settings, tmp_path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    settings.HEMATOVISION_MODELS_ROOT = root
    return root


@pytest.fixture
def tiny_model_dir(models_root, tiny_model_source) -> Path:
    """A private copy, so a test may damage its files."""
    return Path(shutil.copytree(tiny_model_source, models_root / "tiny-test"))


@pytest.fixture
def tiny_model_version(db, tiny_model_dir) -> Iterator[ModelVersion]:
    """The tiny model registered (and so active, being the first), with no predictor or explainer
    of an earlier test's model left in this process's caches."""
    predictor_cache_clear()
    explainer_cache_clear()
    yield model_version_register(directory=tiny_model_dir)
    predictor_cache_clear()
    explainer_cache_clear()
