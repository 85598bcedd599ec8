"""Reviews, signatures, amendments and exclusions move to the ``review`` app (review/migrations/0001).

State only: the tables, their rows, constraints and append-only triggers stay exactly where they are
(the models keep these table names through ``db_table``).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("classifier", "0007_predictionfailure_append_only_again"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="review",
                    name="prediction",
                ),
                migrations.RemoveField(
                    model_name="review",
                    name="reviewer",
                ),
                migrations.RemoveField(
                    model_name="review",
                    name="supersedes",
                ),
                migrations.RemoveField(
                    model_name="slideamendment",
                    name="amended_by",
                ),
                migrations.RemoveField(
                    model_name="slideamendment",
                    name="signature",
                ),
                migrations.RemoveField(
                    model_name="slideamendment",
                    name="slide",
                ),
                migrations.RemoveField(
                    model_name="slidesignature",
                    name="signer",
                ),
                migrations.RemoveField(
                    model_name="slidesignature",
                    name="slide",
                ),
                migrations.DeleteModel(
                    name="CellExclusion",
                ),
                migrations.DeleteModel(
                    name="Review",
                ),
                migrations.DeleteModel(
                    name="SlideAmendment",
                ),
                migrations.DeleteModel(
                    name="SlideSignature",
                ),
            ],
            database_operations=[],
        ),
    ]
