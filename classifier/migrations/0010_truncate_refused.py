"""Row triggers never fire on TRUNCATE: PostgreSQL refuses it on predictions, prediction
failures and slide domain assessments by a statement trigger (issue 11)."""

from django.db import migrations

from core.append_only import truncate_refused


class Migration(migrations.Migration):
    dependencies = [("classifier", "0009_domain_gate")]

    operations = [
        truncate_refused(
            "classifier_prediction", "classifier_predictionfailure", "classifier_slidedomainassessment"
        )
    ]
