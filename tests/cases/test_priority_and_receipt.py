"""A slide's priority (routine or urgent) and the time its specimen was received: set by lab staff
on the slide form and the API, audited, checked against the collection time and the clock."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import Priority, Slide
from cases.services import slide_create, slide_update

pytestmark = pytest.mark.django_db


def test_a_new_slide_is_routine_and_received_now(lab_staff, patient):
    before = timezone.now()
    slide = slide_create(
        actor=lab_staff,
        patient=patient,
        accession_number="A-1",
        collected_at=before - datetime.timedelta(hours=1),
    )
    assert slide.priority == Priority.ROUTINE and before <= slide.received_at <= timezone.now()
    event = AuditEvent.objects.get(action=AuditAction.SLIDE_CREATED)
    assert event.after["priority"] == "routine" and "received_at" in event.after


def test_lab_staff_set_priority_and_receipt_on_the_form_and_the_change_is_audited(lab_client, slide):
    response = lab_client.post(
        reverse("cases:slide_update", args=[slide.pk]),
        {
            "accession_number": slide.accession_number,
            "collected_at": timezone.localtime(slide.collected_at).strftime("%Y-%m-%dT%H:%M"),
            "received_at": timezone.localtime(slide.received_at).strftime("%Y-%m-%dT%H:%M"),
            "priority": "urgent",
            "stain": slide.stain,
            "notes": "",
        },
    )

    assert response.status_code == 302
    slide.refresh_from_db()
    assert slide.priority == Priority.URGENT
    event = AuditEvent.objects.get(action=AuditAction.SLIDE_UPDATED)
    assert (event.before["priority"], event.after["priority"]) == ("routine", "urgent")


def test_the_slide_form_offers_priority_and_receipt(lab_client, patient):
    html = lab_client.get(reverse("cases:slide_create", args=[patient.pk])).content.decode()
    assert 'name="priority"' in html and 'name="received_at"' in html and 'value="urgent"' in html


@pytest.mark.parametrize(
    ("received", "message"),
    [
        (datetime.timedelta(hours=-3), "cannot have been received before it was collected"),
        (datetime.timedelta(days=2), "cannot be in the future"),
    ],
)
def test_an_impossible_receipt_time_is_refused_and_changes_nothing(lab_staff, slide, received, message):
    with pytest.raises(ValidationError, match=message):
        slide_update(actor=lab_staff, slide=slide, changes={"received_at": slide.collected_at + received})
    assert Slide.objects.get(pk=slide.pk).received_at == slide.received_at
    assert not AuditEvent.objects.filter(action=AuditAction.SLIDE_UPDATED).exists()


def test_the_api_reads_and_writes_priority_and_receipt(lab_staff, patient):
    client = APIClient()
    client.force_authenticate(lab_staff)
    created = client.post(
        reverse("api:slide-list"),
        {
            "accession_number": "API-1",
            "patient": patient.pk,
            "collected_at": "2026-11-20T08:30:00Z",
            "priority": "urgent",
        },
        format="json",
    )
    refused = client.post(
        reverse("api:slide-list"),
        {
            "accession_number": "API-2",
            "patient": patient.pk,
            "collected_at": "2026-11-20T08:30:00Z",
            "received_at": "2026-11-19T08:30:00Z",
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    assert created.json()["priority"] == "urgent" and created.json()["received_at"]
    assert refused.status_code == 400 and "received_at" in refused.json()
    assert not Slide.objects.filter(accession_number="API-2").exists()


@pytest.mark.django_db(transaction=True)
def test_slides_from_before_the_migration_were_received_when_registered(lab_staff):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("cases", "0003_patient_mrn_unique_ignoring_case")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    patient = old.get_model("cases", "Patient").objects.create(
        mrn="OLD-1",
        family_name="Old",
        given_name="Otto",
        date_of_birth="1950-01-01",
        sex="male",
        created_by_id=lab_staff.pk,
    )
    registered = timezone.now() - datetime.timedelta(days=40)
    old_slide = old.get_model("cases", "Slide").objects.create(
        patient=patient, accession_number="OLD-S1", collected_at=registered, created_by_id=lab_staff.pk
    )
    old.get_model("cases", "Slide").objects.filter(pk=old_slide.pk).update(created_at=registered)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    slide = Slide.objects.get(pk=old_slide.pk)
    assert (slide.received_at, slide.priority) == (registered, Priority.ROUTINE)
