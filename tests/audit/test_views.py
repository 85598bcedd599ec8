import csv
import io

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from audit.services import audit_event_record

pytestmark = pytest.mark.django_db


def csv_rows(response: StreamingHttpResponse) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_audit_page_filters_by_action(pathologist_client, lab_staff):
    audit_event_record(action=AuditAction.PATIENT_CREATED, actor=lab_staff)
    response = pathologist_client.get(reverse("audit:event_list"), {"action": AuditAction.PATIENT_CREATED})
    assert [event.action for event in response.context["page"]] == [AuditAction.PATIENT_CREATED]


def test_invalid_filters_are_a_400(pathologist_client):
    response = pathologist_client.get(reverse("audit:event_list"), {"date_from": "not-a-date"})
    assert response.status_code == 400


def test_csv_export_contains_the_filtered_events_and_is_itself_audited(
    administrator_client, administrator, lab_staff
):
    audit_event_record(
        action=AuditAction.PATIENT_CREATED, actor=lab_staff, after={"mrn": "1"}, reason="=HYPERLINK(1)"
    )
    audit_event_record(action=AuditAction.PATIENT_UPDATED, actor=lab_staff)
    response = administrator_client.get(reverse("audit:event_export_csv"), {"actor": "lab"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = csv_rows(response)
    assert [row["action"] for row in rows] == [AuditAction.PATIENT_UPDATED, AuditAction.PATIENT_CREATED]
    assert rows[1]["reason"] == "'=HYPERLINK(1)"
    assert rows[1]["after"] == '{"mrn": "1"}'
    export = AuditEvent.objects.get(action=AuditAction.AUDIT_EXPORTED)
    assert (export.actor, export.after["event_count"], export.after["filters"]) == (
        administrator,
        2,
        {"actor": "lab"},
    )


def test_csv_export_leaves_out_its_own_event(pathologist_client):
    rows = csv_rows(pathologist_client.get(reverse("audit:event_export_csv")))
    assert AuditAction.AUDIT_EXPORTED not in [row["action"] for row in rows]


def test_the_audit_api_is_read_only_and_filterable(pathologist, lab_staff):
    from rest_framework.test import APIClient

    audit_event_record(action=AuditAction.PATIENT_CREATED, actor=lab_staff)
    client = APIClient()
    client.force_authenticate(pathologist)
    body = client.get(reverse("api:audit-event-list"), {"action": AuditAction.PATIENT_CREATED}).json()
    assert body["count"] == 1
    assert body["results"][0]["actor_username"] == "lab"
    event_id = body["results"][0]["id"]
    assert (
        client.patch(reverse("api:audit-event-detail", args=[event_id]), {"reason": "x"}).status_code == 403
    )


def test_the_audit_page_keeps_a_constant_number_of_queries(
    pathologist_client, lab_staff, django_assert_max_num_queries
):
    for _ in range(60):
        audit_event_record(
            action=AuditAction.PATIENT_UPDATED, actor=lab_staff, before={"a": 1}, after={"a": 2}
        )
    with django_assert_max_num_queries(8):
        response = pathologist_client.get(reverse("audit:event_list"))
    assert len(response.context["page"]) == 50
    assert "a:" in response.content.decode()
