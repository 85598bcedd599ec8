"""The review models, moved here from ``classifier`` (classifier/migrations/0008) without touching
the database: same tables, rows, constraints and append-only triggers.

Their content types move too, so every permission (and every group or user holding one) follows
them: ``classifier.add_review`` becomes ``review.add_review`` with the same permission row.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED_MODELS = ("review", "slidesignature", "slideamendment", "cellexclusion")


def _content_types_move(apps, schema_editor, *, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    rows = content_type.objects.using(schema_editor.connection.alias)
    for model in MOVED_MODELS:
        # A database built by earlier code has the source rows (and their permissions); a new one
        # has neither yet (content types are made after migrating).
        if not rows.filter(app_label=target, model=model).exists():
            rows.filter(app_label=source, model=model).update(app_label=target)


def content_types_to_review(apps, schema_editor) -> None:
    _content_types_move(apps, schema_editor, source="classifier", target="review")


def content_types_to_classifier(apps, schema_editor) -> None:
    _content_types_move(apps, schema_editor, source="review", target="classifier")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("cases", "0001_initial"),
        ("classifier", "0008_review_models_to_review_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SlideSignature",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("version", models.PositiveIntegerField()),
                        ("signer_full_name", models.CharField(max_length=300)),
                        ("meaning", models.CharField(default="reviewed and approved", max_length=100)),
                        ("signed_at", models.DateTimeField()),
                        ("differential", models.JSONField()),
                        ("signer", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("slide", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="signatures", to="cases.slide")),
                    ],
                    options={
                        "db_table": "classifier_slidesignature",
                        "ordering": ["slide_id", "-version"],
                        "default_permissions": ("add", "view"),
                    },
                ),
                migrations.CreateModel(
                    name="SlideAmendment",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("reason", models.TextField()),
                        ("amended_at", models.DateTimeField(auto_now_add=True)),
                        ("amended_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("slide", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="amendments", to="cases.slide")),
                        ("signature", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="amendment", to="review.slidesignature")),
                    ],
                    options={
                        "db_table": "classifier_slideamendment",
                        "ordering": ["slide_id", "-amended_at"],
                        "default_permissions": ("add", "view"),
                    },
                ),
                migrations.CreateModel(
                    name="CellExclusion",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("excluded", models.BooleanField(help_text="False: an earlier exclusion is withdrawn")),
                        ("category", models.CharField(blank=True, choices=[("artefact", "Artefact"), ("smudge", "Smudge cell"), ("unreadable", "Unreadable image"), ("other", "Other")], max_length=16)),
                        ("reason", models.TextField()),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("cell_image", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="exclusions", to="cases.cellimage")),
                        ("decided_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("supersedes", models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="superseded_by", to="review.cellexclusion")),
                    ],
                    options={
                        "db_table": "classifier_cellexclusion",
                        "ordering": ["cell_image_id", "-id"],
                        "default_permissions": ("add", "view"),
                        "constraints": [models.CheckConstraint(condition=models.Q(("reason", ""), _negated=True), name="cell_exclusion_has_reason"), models.CheckConstraint(condition=models.Q(("excluded", False), models.Q(("category", ""), _negated=True), _connector="OR"), name="cell_exclusion_has_category")],
                    },
                ),
                migrations.CreateModel(
                    name="Review",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("label", models.CharField(choices=[("EOSINOPHIL", "Eosinophil"), ("LYMPHOCYTE", "Lymphocyte"), ("MONOCYTE", "Monocyte"), ("NEUTROPHIL", "Neutrophil")], max_length=16, verbose_name="final label")),
                        ("decision", models.CharField(choices=[("confirmed", "Confirmed"), ("corrected", "Corrected")], max_length=16)),
                        ("reason", models.TextField(blank=True)),
                        ("bulk", models.BooleanField(default=False, help_text="Confirmed by a bulk confirm, not one by one")),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("prediction", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="reviews", to="classifier.prediction")),
                        ("reviewer", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("supersedes", models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="superseded_by", to="review.review")),
                    ],
                    options={
                        "db_table": "classifier_review",
                        "ordering": ["prediction_id", "-created_at", "-id"],
                        "default_permissions": ("add", "view"),
                        "constraints": [models.CheckConstraint(condition=models.Q(models.Q(("decision", "corrected"), _negated=True), models.Q(("reason", ""), _negated=True), _connector="OR"), name="review_correction_has_reason")],
                    },
                ),
                migrations.AddConstraint(
                    model_name="slidesignature",
                    constraint=models.UniqueConstraint(fields=("slide", "version"), name="slide_signature_unique_version"),
                ),
                migrations.AddConstraint(
                    model_name="slideamendment",
                    constraint=models.CheckConstraint(condition=models.Q(("reason", ""), _negated=True), name="slide_amendment_has_reason"),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_review, content_types_to_classifier),
    ]
