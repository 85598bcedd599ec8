"""Row triggers never fire on TRUNCATE: PostgreSQL refuses it on the audit table by a statement
trigger (issue 11; a role granted ALL could empty the trail)."""

from django.db import migrations

from core.append_only import truncate_refused


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_domain_action")]

    operations = [truncate_refused("audit_auditevent")]
