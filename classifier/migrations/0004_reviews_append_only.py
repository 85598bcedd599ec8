"""Reviews, signatures and amendments are clinical records: the database refuses UPDATE and DELETE.

Reuses ``classifier_refuse_change()`` from migration 0002 on PostgreSQL.
"""

from django.db import migrations

from core.append_only import append_only


class Migration(migrations.Migration):
    dependencies = [("classifier", "0003_reviews_signatures_gradcam")]

    operations = [append_only("classifier_review", "classifier_slidesignature", "classifier_slideamendment")]
