"""Row triggers never fire on TRUNCATE: PostgreSQL refuses it on reviews, signatures, amendments
and exclusions by a statement trigger (issue 11). The tables keep their ``classifier_`` names."""

from django.db import migrations

from core.append_only import truncate_refused


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]

    operations = [
        truncate_refused(
            "classifier_review",
            "classifier_slidesignature",
            "classifier_slideamendment",
            "classifier_cellexclusion",
        )
    ]
