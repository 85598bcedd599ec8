import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db


def test_create_admin_reads_the_password_from_stdin_and_audits(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("quartz-window-lighthouse-51\n"))
    call_command("create_admin", "root-admin", "--last-name", "Root", stdout=io.StringIO())
    user = User.objects.get(username="root-admin")
    assert user.role == Role.ADMIN
    assert user.check_password("quartz-window-lighthouse-51")
    event = AuditEvent.objects.get(action=AuditAction.USER_CREATED)
    assert event.actor is None
    assert "create_admin" in event.reason


def test_create_admin_refuses_a_weak_password(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("admin\n"))
    with pytest.raises(CommandError):
        call_command("create_admin", "weak-admin", stdout=io.StringIO())
    assert not User.objects.filter(username="weak-admin").exists()


def test_demo_users_gives_each_role_one_account(capsys):
    call_command("demo_users")
    call_command("demo_users")  # idempotent
    roles = {user.username: user.role for user in User.objects.all()}
    assert roles == {
        "labstaff": Role.LAB_STAFF,
        "pathologist": Role.PATHOLOGIST,
        "admin": Role.ADMIN,
        "trainee": Role.TRAINEE,
        "consultant": Role.CONSULTANT,
    }
    assert "demo-labstaff-2024" in capsys.readouterr().out
