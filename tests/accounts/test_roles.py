import pytest
from django.contrib.auth.models import Group

from accounts.roles import ROLE_PERMISSIONS, Role, roles_sync

pytestmark = pytest.mark.django_db


def permission_names(group: Group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    }


def test_migrate_creates_one_group_per_role_with_exactly_its_permissions():
    for role in Role:
        assert permission_names(Group.objects.get(name=role.value)) == ROLE_PERMISSIONS[role]


def test_sync_removes_a_permission_granted_by_hand():
    group = Group.objects.get(name=Role.LAB_STAFF)
    group.permissions.add(*Group.objects.get(name=Role.ADMIN).permissions.all())
    roles_sync()
    assert permission_names(group) == ROLE_PERMISSIONS[Role.LAB_STAFF]


def test_lab_staff_cannot_read_the_audit_trail_or_manage_users(lab_staff):
    assert not lab_staff.has_perm("audit.view_auditevent")
    assert not lab_staff.has_perm("accounts.change_user")


def test_an_admin_has_no_clinical_access(administrator):
    assert not administrator.has_perm("cases.view_patient")
