"""A database as the code before the ``review`` app left it, migrated forward by today's code.

The review models lived in ``classifier`` until classifier/migrations/0007; their content types
and permissions were ``classifier.*``. This rolls a migrated database back to that state, writes
what that code wrote (rows, content types, permissions held by a role group and a user, audit
events naming ``classifier.review``), migrates forward and checks that every row, permission and
audit event is intact. Shared by the PostgreSQL test and the SQLite run (a fresh process).
"""

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE_THE_MOVE = [("classifier", "0007_predictionfailure_append_only_again"), ("review", None)]
MOVED = ("review", "slidesignature", "slideamendment", "cellexclusion")


def _migrate(targets: list[tuple[str, str | None]] | None = None):  # noqa: ANN202  (a StateApps)
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    state = executor.migrate(targets)
    return state.apps


def _old_content_types(apps) -> dict[str, int]:  # noqa: ANN001
    """The content types and permissions the old code's post_migrate had made, as ids."""
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    ids = {}
    for model in MOVED:
        row, _ = content_type.objects.get_or_create(app_label="classifier", model=model)
        content_type.objects.filter(app_label="review", model=model).delete()
        for action in ("add", "view"):
            permission.objects.get_or_create(
                content_type=row, codename=f"{action}_{model}", defaults={"name": f"Can {action} {model}"}
            )
        ids[model] = row.pk
    return ids


def _old_rows(apps) -> dict[str, int]:  # noqa: ANN001
    """One of everything the review models hold, written through the old (classifier) models."""
    model = apps.get_model
    user = model("accounts", "User").objects.create(
        username="old.pathologist", password=make_password("x"), first_name="Old", last_name="Path"
    )
    group, _ = model("auth", "Group").objects.get_or_create(name="PATHOLOGIST")
    review_permission = model("auth", "Permission").objects.get(
        content_type__app_label="classifier", codename="add_review"
    )
    group.permissions.add(review_permission)
    user.groups.add(group)
    user.user_permissions.add(
        model("auth", "Permission").objects.get(content_type__app_label="classifier", codename="view_review")
    )
    patient = model("cases", "Patient").objects.create(
        mrn="MRN-OLD-1",
        family_name="Doe",
        given_name="Jo",
        date_of_birth="1970-01-01",
        sex="F",
        created_by=user,
    )
    slide = model("cases", "Slide").objects.create(
        patient=patient,
        accession_number="S-OLD-1",
        collected_at=timezone.now(),
        created_by=user,
        status="signed",
    )
    cell = model("cases", "CellImage").objects.create(
        slide=slide,
        file="cells/old.png",
        original_filename="old.png",
        sha256="a" * 64,
        width=10,
        height=10,
        image_format="PNG",
        size_bytes=10,
        uploaded_by=user,
    )
    version = model("classifier", "ModelVersion").objects.create(
        name="old-model", directory="old", sha256="0" * 64, file_hashes={}, review_threshold=0.9
    )
    job = model("classifier", "InferenceJob").objects.create(
        slide=slide, model_version=version, requested_by=user, status="succeeded", total=1, done=1
    )
    prediction = model("classifier", "Prediction").objects.create(
        cell_image=cell,
        model_version=version,
        job=job,
        label="NEUTROPHIL",
        confidence=0.95,
        probability_eosinophil=0.01,
        probability_lymphocyte=0.02,
        probability_monocyte=0.02,
        probability_neutrophil=0.95,
        inference_ms=1.0,
    )
    review = model("classifier", "Review").objects.create(
        prediction=prediction, reviewer=user, label="NEUTROPHIL", decision="confirmed"
    )
    exclusion = model("classifier", "CellExclusion").objects.create(
        cell_image=cell, excluded=True, category="artefact", reason="debris", decided_by=user
    )
    signature = model("classifier", "SlideSignature").objects.create(
        slide=slide,
        version=1,
        signer=user,
        signer_full_name="Old Path",
        signed_at=timezone.now(),
        differential={"total": 1},
    )
    amendment = model("classifier", "SlideAmendment").objects.create(
        slide=slide, signature=signature, reason="typo", amended_by=user
    )
    return {
        "user": user.pk,
        "review": review.pk,
        "cellexclusion": exclusion.pk,
        "slidesignature": signature.pk,
        "slideamendment": amendment.pk,
    }


def review_move_check() -> dict:
    """Run the scenario; returns what it checked (and raises AssertionError on any loss)."""
    from audit.models import AuditAction, AuditEvent
    from audit.selectors import audit_chain_verify
    from audit.services import audit_event_record

    old_apps = _migrate(BEFORE_THE_MOVE)
    content_type_ids = _old_content_types(old_apps)
    rows = _old_rows(old_apps)
    old_review = old_apps.get_model("classifier", "Review").objects.get(pk=rows["review"])
    audit_event_record(action=AuditAction.REVIEW_RECORDED, actor=None, target=old_review, actor_username="x")
    events_before = list(AuditEvent.objects.order_by("id").values_list("id", "object_type", "hash"))
    permission_ids = dict(
        old_apps.get_model("auth", "Permission")
        .objects.filter(content_type__app_label="classifier", content_type__model__in=MOVED)
        .values_list("codename", "pk")
    )

    _migrate()

    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from accounts.models import User
    from review.models import CellExclusion, Review, SlideAmendment, SlideSignature

    ContentType.objects.clear_cache()
    for model, content_type_id in content_type_ids.items():
        assert ContentType.objects.get(app_label="review", model=model).pk == content_type_id, model
        assert not ContentType.objects.filter(app_label="classifier", model=model).exists(), model
    moved_permissions = dict(
        Permission.objects.filter(
            content_type__app_label="review", content_type__model__in=MOVED
        ).values_list("codename", "pk")
    )
    assert moved_permissions == permission_ids
    user = User.objects.get(pk=rows["user"])
    assert user.has_perm("review.add_review") and user.has_perm("review.view_review")
    for model, row_class in (
        ("review", Review),
        ("cellexclusion", CellExclusion),
        ("slidesignature", SlideSignature),
        ("slideamendment", SlideAmendment),
    ):
        assert row_class.objects.filter(pk=rows[model]).exists(), model
    assert Review.objects.get(pk=rows["review"]).prediction.label == "NEUTROPHIL"
    assert SlideAmendment.objects.get(pk=rows["slideamendment"]).signature_id == rows["slidesignature"]
    events_after = list(AuditEvent.objects.order_by("id").values_list("id", "object_type", "hash"))
    assert events_after == events_before
    assert events_after[-1][1] == "classifier.review"
    verification = audit_chain_verify()
    assert verification.intact, verification
    return {"permissions": len(moved_permissions), "events": len(events_after), "rows": len(rows) - 1}
