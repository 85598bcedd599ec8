# Slides get a priority (routine or urgent) and the time the specimen was received in the lab.
# Slides registered before this were received, as far as anyone recorded, when they were
# registered: their ``received_at`` is their ``created_at``.

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F


def received_when_registered(apps, schema_editor):
    apps.get_model("cases", "Slide").objects.update(received_at=F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("cases", "0003_patient_mrn_unique_ignoring_case"),
    ]

    operations = [
        migrations.AddField(
            model_name="slide",
            name="priority",
            field=models.CharField(
                choices=[("routine", "Routine"), ("urgent", "Urgent")], default="routine", max_length=16
            ),
        ),
        migrations.AddField(
            model_name="slide",
            name="received_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(received_when_registered, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="slide",
            name="received_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
