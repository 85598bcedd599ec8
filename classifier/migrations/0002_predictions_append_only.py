"""Predictions and prediction failures are clinical records: the database refuses UPDATE and DELETE."""

from django.db import migrations

from core.append_only import append_only


class Migration(migrations.Migration):
    dependencies = [("classifier", "0001_initial")]

    operations = [append_only("classifier_prediction", "classifier_predictionfailure", with_function=True)]
