"""The roles of the lab and the permissions each one grants.

Roles are Django groups; this map is the single source of truth for what each group may do and
is applied after every migration, so a new permission only has to be added here.
"""

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db import models


class Role(models.TextChoices):
    LAB_STAFF = "LAB_STAFF", "Lab staff"
    PATHOLOGIST = "PATHOLOGIST", "Pathologist"
    ADMIN = "ADMIN", "Admin"
    # Sees no patient data: only the de-identified cells of the proficiency sets assigned to them.
    TRAINEE = "TRAINEE", "Trainee"
    # An outside expert: sees only the slides of consults addressed to them, within each window.
    CONSULTANT = "CONSULTANT", "Consultant"


ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.LAB_STAFF: frozenset(
        {
            "cases.view_patient",
            "cases.add_patient",
            "cases.change_patient",
            "cases.view_slide",
            "cases.add_slide",
            "cases.change_slide",
            "cases.view_cellimage",
            "cases.add_cellimage",
            "cases.delete_cellimage",
            "classifier.view_modelversion",
            "classifier.view_inferencejob",
            "classifier.add_inferencejob",
            "classifier.view_prediction",
            "classifier.add_quickclassification",
            "review.view_review",
            "review.view_slidesignature",
            "classifier.view_gradcam",
            "review.view_cellexclusion",
            "cases.change_slide_target_count",
            "review.view_differentialclass",
        }
    ),
    Role.PATHOLOGIST: frozenset(
        {
            "cases.view_patient",
            "cases.view_slide",
            "cases.view_cellimage",
            "audit.view_auditevent",
            "classifier.view_modelversion",
            "classifier.view_inferencejob",
            "classifier.view_prediction",
            "classifier.add_quickclassification",
            "review.view_review",
            "review.add_review",
            "review.view_slidesignature",
            "review.add_slidesignature",
            "review.add_slideamendment",
            "classifier.view_gradcam",
            "review.view_cellexclusion",
            "review.add_cellexclusion",
            "cases.change_slide_target_count",
            "review.view_differentialclass",
            "review.add_proficiencyset",
            "review.view_proficiencyset",
            "review.add_consult",
            "review.add_consultlabel",
        }
    ),
    Role.ADMIN: frozenset(
        {
            "accounts.view_user",
            "accounts.add_user",
            "accounts.change_user",
            "audit.view_auditevent",
            "classifier.view_modelversion",
            "classifier.change_modelversion",
            "classifier.add_quickclassification",
            "review.view_differentialclass",
            "review.add_differentialclass",
            "review.change_differentialclass",
            "review.view_countingsettings",
            "review.change_countingsettings",
            "classifier.view_adaptationrun",
            "classifier.add_adaptationrun",
            "classifier.change_adaptationrun",
        }
    ),
    # Which sets and which consults each one may open is decided per object (the assignment, the
    # consult's consultant and window), not by a permission over all rows.
    Role.TRAINEE: frozenset({"review.add_proficiencyattempt"}),
    Role.CONSULTANT: frozenset({"review.add_consultlabel"}),
}


def roles_sync() -> None:
    """Create the role groups and give each exactly the permissions listed above."""
    from django.contrib.auth.models import Group, Permission

    for role, permission_names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        permissions = [
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in (name.split(".", 1) for name in sorted(permission_names))
        ]
        group.permissions.set(permissions)


def roles_sync_after_migrate(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """post_migrate receiver. Permissions of apps migrated after ours may not exist yet, so they
    are created first (idempotent)."""
    from django.contrib.auth.management import create_permissions

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    roles_sync()
