"""Cell exclusions (append-only, like reviews: the database refuses UPDATE and DELETE) and failures
unique per job, so a retried cell can fail again with the same model version.

Reuses ``classifier_refuse_change()`` from migration 0002 on PostgreSQL.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.append_only import append_only


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0001_initial"),
        ("classifier", "0004_reviews_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CellExclusion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("excluded", models.BooleanField(help_text="False: an earlier exclusion is withdrawn")),
                (
                    "category",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("artefact", "Artefact"),
                            ("smudge", "Smudge cell"),
                            ("unreadable", "Unreadable image"),
                            ("other", "Other"),
                        ],
                        max_length=16,
                    ),
                ),
                ("reason", models.TextField()),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                "ordering": ["cell_image_id", "-id"],
                "default_permissions": ("add", "view"),
            },
        ),
        migrations.RemoveConstraint(
            model_name="predictionfailure",
            name="prediction_failure_unique_per_model",
        ),
        migrations.AddConstraint(
            model_name="predictionfailure",
            constraint=models.UniqueConstraint(
                fields=("cell_image", "job"), name="prediction_failure_unique_per_job"
            ),
        ),
        migrations.AddField(
            model_name="cellexclusion",
            name="cell_image",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="exclusions", to="cases.cellimage"
            ),
        ),
        migrations.AddField(
            model_name="cellexclusion",
            name="decided_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="cellexclusion",
            name="supersedes",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="superseded_by",
                to="classifier.cellexclusion",
            ),
        ),
        migrations.AddConstraint(
            model_name="cellexclusion",
            constraint=models.CheckConstraint(
                condition=models.Q(("reason", ""), _negated=True), name="cell_exclusion_has_reason"
            ),
        ),
        migrations.AddConstraint(
            model_name="cellexclusion",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("excluded", False), models.Q(("category", ""), _negated=True), _connector="OR"
                ),
                name="cell_exclusion_has_category",
            ),
        ),
        append_only("classifier_cellexclusion"),
    ]
