"""core.api: a date-time filter the database can compare with (schemathesis found a 500 on an
offset PostgreSQL refuses: +23:16)."""

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from audit.services import audit_event_record

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("offset", ["+23:16", "-16:00"])
def test_a_time_zone_offset_beyond_the_databases_range_is_a_400_with_the_reason(pathologist_client, offset):
    response = pathologist_client.get(
        reverse("api:audit-event-list"), {"created_after": f"0971-03-06T10:36:38{offset}"}
    )

    assert response.status_code == 400
    assert "within ±15:59" in response.json()["created_after"][0]


def test_an_offset_within_range_filters_as_before(pathologist, pathologist_client):
    audit_event_record(action=AuditAction.LOGIN, actor=pathologist)
    url = reverse("api:audit-event-list")

    earlier = pathologist_client.get(url, {"created_after": "2000-01-01T00:00:00+15:59"})
    later = pathologist_client.get(url, {"created_after": "2999-01-01T00:00:00-15:59"})

    assert (earlier.status_code, later.status_code) == (200, 200)
    assert earlier.json()["count"] == AuditEvent.objects.count() >= 1
    assert later.json()["count"] == 0
