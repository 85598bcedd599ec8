"""Row triggers never fire on TRUNCATE: PostgreSQL refuses it on predictions and prediction
failures by a statement trigger (issue 11)."""

from django.db import migrations

from core.append_only import truncate_refused


class Migration(migrations.Migration):
    dependencies = [("classifier", "0008_review_models_to_review_app")]

    operations = [truncate_refused("classifier_prediction", "classifier_predictionfailure")]
