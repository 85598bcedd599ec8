"""core.api: a date-time filter the database can compare with (schemathesis found a 500 on an
offset PostgreSQL refuses: +23:16)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("offset", ["+23:16", "-16:00"])
def test_a_time_zone_offset_beyond_the_databases_range_is_a_400_with_the_reason(pathologist_client, offset):
    response = pathologist_client.get(
        reverse("api:audit-event-list"), {"created_after": f"0971-03-06T10:36:38{offset}"}
    )

    assert response.status_code == 400
    assert "within ±15:59" in response.json()["created_after"][0]


def test_an_offset_within_range_filters_as_before(pathologist_client):
    response = pathologist_client.get(
        reverse("api:audit-event-list"), {"created_after": "2026-01-01T00:00:00+15:59"}
    )

    assert response.status_code == 200
