"""Exports: CSV and JSON round-trip against the database, formula escaping, FHIR R4 bundle, audit.

The FHIR Bundle is validated twice: as R4 4.0.1 by fhirclient's models (generated from 4.0.1;
strict, so an unknown element such as an R5-only one, a missing required element or a malformed
date is an error), and as R4B by fhir.resources (its R4 look-alike, which also checks value types
and choice elements). The R4 shape the issue asks for is then checked on the JSON itself.
"""

import csv
import datetime
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhirclient.models.bundle import Bundle as R4Bundle
from fhirclient.models.fhirabstractbase import FHIRValidationError
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import Patient
from classifier.models import PROBABILITY_FIELDS, CellClass, Prediction
from core.csv_safety import csv_cell_escape
from review.exports import COLUMNS, ExportScope, export_rows, rows_to_csv
from review.fhir import LOINC, UCUM
from review.services import cell_image_exclude, prediction_review, slide_amend, slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request, reviews_make

pytestmark = pytest.mark.django_db

# The model's four classes' LOINC codes as seeded (review migration 0006), "<class>/100 leukocytes in Blood".
LOINC_CODES = {
    CellClass.NEUTROPHIL: "26511-6",
    CellClass.LYMPHOCYTE: "26478-8",
    CellClass.MONOCYTE: "26485-3",
    CellClass.EOSINOPHIL: "26450-7",
}


@pytest.fixture
def reviewed(pathologist, slide, predictions) -> list[Prediction]:
    reviews_make(predictions[:-1], pathologist)
    prediction_review(
        actor=pathologist, prediction=predictions[-1], label=CellClass.NEUTROPHIL, reason='=HYPERLINK("x")'
    )
    return predictions


@pytest.fixture
def signed(pathologist, slide, reviewed):
    return slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def export_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.RESULTS_EXPORTED).order_by("id"))


def fhir_validated(content: bytes) -> Bundle:
    """The Bundle, after it passed the R4 (4.0.1) and the R4B validators (see module docstring)."""
    R4Bundle(json.loads(content), strict=True)
    return Bundle.model_validate_json(content)


def resources_of(document: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == resource_type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("Neutrophil", "Neutrophil"),
        (0.25, "0.25"),
        (None, ""),
    ],
)
def test_csv_cells_starting_a_formula_are_escaped(value, expected):
    assert csv_cell_escape(value) == expected


def test_csv_export_round_trips_every_cell_with_its_review(pathologist_client, slide, reviewed, pathologist):
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "csv"})

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="slide-S-5001.csv"'
    rows = csv_rows(response.content)
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == slide.cell_images.count() == 5
    for row in rows:
        prediction = Prediction.objects.get(cell_image_id=int(row["cell_image_id"]))
        review = prediction.reviews.order_by("-id").first()
        assert row["predicted_label"] == prediction.label
        assert row["model_version"] == prediction.model_version.name
        for field in PROBABILITY_FIELDS.values():
            assert float(row[field]) == pytest.approx(getattr(prediction, field))
        assert float(row["confidence"]) == pytest.approx(prediction.confidence)
        assert (row["final_label"], row["review_decision"], row["reviewer"]) == (
            review.label,
            review.decision,
            pathologist.username,
        )
    corrected = next(row for row in rows if row["review_decision"] == "corrected")
    assert corrected["review_reason"] == '\'=HYPERLINK("x")'


def test_json_export_round_trips_and_shows_the_signature(pathologist_client, slide, signed):
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "json"})

    document = json.loads(response.content)
    assert document["cell_count"] == len(document["cells"]) == 5
    assert document["scope"] == {"slide_id": slide.pk, "accession_number": "S-5001"}
    for cell in document["cells"]:
        prediction = Prediction.objects.get(cell_image_id=cell["cell_image_id"])
        assert cell["probability_neutrophil"] == pytest.approx(prediction.probability_neutrophil)
        assert cell["final_label"] == prediction.reviews.order_by("-id").first().label
        assert (cell["signature_version"], cell["signed_by"], cell["signature_meaning"]) == (
            1,
            "Paul Patho",
            "reviewed and approved",
        )
    corrected = [cell for cell in document["cells"] if cell["review_decision"] == "corrected"]
    assert corrected[0]["review_reason"] == '=HYPERLINK("x")'  # JSON is not a spreadsheet: kept verbatim


def test_every_export_is_audited(lab_client, lab_staff, slide, reviewed):
    lab_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "csv"})
    lab_client.get(reverse("review:patient_export", args=[slide.patient.pk]), {"as": "json"})

    first, second = export_events()
    assert (first.actor, first.after) == (
        lab_staff,
        {"scope": {"slide_id": slide.pk, "accession_number": "S-5001"}, "format": "csv", "cell_count": 5},
    )
    assert second.after["scope"] == {"patient_id": slide.patient.pk, "mrn": "MRN-5001"}
    assert second.after["format"] == "json"


def test_patient_and_date_range_exports_cover_exactly_their_slides(
    pathologist, lab_staff, make_slide, slide, reviewed, add_prediction
):
    old_slide = make_slide("S-OLD", collected_at=timezone.now() - datetime.timedelta(days=40))
    add_prediction(old_slide)
    other_patient = Patient.objects.create(
        mrn="MRN-OTHER",
        family_name="Roe",
        given_name="Rick",
        date_of_birth="1970-01-01",
        sex="male",
        created_by=lab_staff,
    )
    foreign = make_slide("S-OTHER")
    foreign.patient = other_patient
    foreign.save()
    add_prediction(foreign)

    by_patient = export_rows(user=pathologist, scope=ExportScope(patient=slide.patient))
    today = timezone.localdate()
    by_range = export_rows(
        user=pathologist,
        scope=ExportScope(collected_from=today - datetime.timedelta(days=7), collected_to=today),
    )

    assert {row["slide_accession_number"] for row in by_patient} == {"S-5001", "S-OLD"}
    assert len(by_patient) == 6
    assert {row["slide_accession_number"] for row in by_range} == {"S-5001", "S-OTHER"}
    assert "MRN-OTHER" in rows_to_csv(by_range)


def test_range_export_page_downloads_with_valid_dates(pathologist_client, slide, reviewed):
    # The slide's own local collection date: "now - 2 h" is yesterday shortly after midnight.
    today = timezone.localdate(slide.collected_at).isoformat()
    url = reverse("review:range_export")

    response = pathologist_client.get(
        url, {"collected_from": today, "collected_to": today, "export_format": "csv"}
    )
    refused = pathologist_client.get(url, {"collected_from": today, "collected_to": "2000-01-01"})

    assert len(csv_rows(response.content)) == 5
    assert refused.status_code == 400
    assert len(export_events()) == 1


def test_fhir_bundle_of_a_signed_slide_validates_and_carries_the_differential(
    pathologist_client, slide, signed
):
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    bundle = fhir_validated(response.content)
    resources = [entry.resource for entry in bundle.entry]
    kinds = [resource.get_resource_type() for resource in resources]
    assert kinds.count("Observation") == 4
    assert {"DiagnosticReport", "Patient", "Specimen", "Practitioner", "Provenance"} <= set(kinds)
    observations = {
        obs.code.coding[0].code: obs for obs in resources if obs.get_resource_type() == "Observation"
    }
    assert set(observations) == {"26511-6", "26478-8", "26485-3", "26450-7"}
    neutrophils = observations[LOINC_CODES[CellClass.NEUTROPHIL]]
    assert float(neutrophils.valueQuantity.value) == 60.0
    assert neutrophils.valueQuantity.unit == "/100 leukocytes"
    eosinophils = observations[LOINC_CODES[CellClass.EOSINOPHIL]]
    assert eosinophils.interpretation[0].coding[0].code == "L"
    report = next(resource for resource in resources if resource.get_resource_type() == "DiagnosticReport")
    assert report.status == "final" and len(report.result) == 4
    patient = next(resource for resource in resources if resource.get_resource_type() == "Patient")
    assert patient.identifier[0].value == "MRN-5001"
    [event] = export_events()
    assert event.after["format"] == "fhir" and event.after["scope"]["signature_version"] == 1


def test_fhir_report_after_an_amendment_is_marked_amended(pathologist, pathologist_client, slide, signed):
    slide_amend(actor=pathologist, slide=slide, reason="Recount", password=PASSWORD, request=reauth_request())
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})

    bundle = fhir_validated(response.content)
    report = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "DiagnosticReport")
    assert report.status == "amended"
    assert report.identifier[0].value == "S-5001-v2"


def test_fhir_bundle_has_the_r4_shape(pathologist_client, slide, signed):
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})
    document = json.loads(response.content)

    assert document["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/Bundle|4.0.1"]
    assert document["type"] == "collection"
    full_urls = {entry["fullUrl"] for entry in document["entry"]}
    assert all(url.startswith("urn:uuid:") for url in full_urls) and len(full_urls) == len(document["entry"])
    references = _references(document["entry"])
    assert references and set(references) <= full_urls, "every reference resolves inside the Bundle"
    [report] = resources_of(document, "DiagnosticReport")
    observations = resources_of(document, "Observation")
    assert {ref["reference"] for ref in report["result"]} == {
        entry["fullUrl"] for entry in document["entry"] if entry["resource"]["resourceType"] == "Observation"
    }
    assert sorted(obs["code"]["coding"][0]["code"] for obs in observations) == [
        "26450-7",
        "26478-8",
        "26485-3",
        "26511-6",
    ]
    for observation in observations:
        assert observation["status"] == "final"
        assert observation["code"]["coding"][0]["system"] == LOINC
        assert observation["category"][0]["coding"][0]["code"] == "laboratory"
        quantity = observation["valueQuantity"]
        assert (quantity["system"], quantity["code"]) == (UCUM, "%")
        assert (
            observation["subject"] == report["subject"] and observation["specimen"] == report["specimen"][0]
        )
    assert sum(obs["valueQuantity"]["value"] for obs in observations) == pytest.approx(100.0, abs=0.2)
    [provenance] = resources_of(document, "Provenance")
    [signature] = provenance["signature"]
    assert {"type", "when", "who"} <= set(signature), "R4 requires all three (R5 made type optional)"
    [patient] = resources_of(document, "Patient")
    assert patient["gender"] == "female" and patient["birthDate"] == "1980-05-17"


def _references(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [ref for item in value.values() for ref in _references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []


def test_the_r4_validator_refuses_r5_only_and_incomplete_resources(pathologist_client, slide, signed):
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})
    document = json.loads(response.content)
    observation = resources_of(document, "Observation")[0]

    R4Bundle(document, strict=True)
    observation["instantiatesCanonical"] = "http://example.org/r5-only"  # an R5 Observation element
    with pytest.raises(FHIRValidationError, match="instantiatesCanonical"):
        R4Bundle(document, strict=True)
    del observation["instantiatesCanonical"], observation["status"]
    with pytest.raises(FHIRValidationError, match="status"):
        R4Bundle(document, strict=True)


def test_fhir_report_counts_only_cells_that_are_not_excluded(
    pathologist, pathologist_client, slide, predictions
):
    cell_image_exclude(
        actor=pathologist, cell_image=predictions[-1].cell_image, category="smudge", reason="Smudge cell"
    )
    reviews_make(predictions[:-1], pathologist)
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )

    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})

    bundle = fhir_validated(response.content)
    document = json.loads(response.content)
    values = {
        obs["code"]["coding"][0]["code"]: obs["valueQuantity"]["value"]
        for obs in resources_of(document, "Observation")
    }
    assert values == {"26511-6": 50.0, "26478-8": 25.0, "26485-3": 25.0, "26450-7": 0.0}
    [report] = resources_of(document, "DiagnosticReport")
    assert "4 cells counted; 1 excluded from the differential" in report["conclusion"]
    assert len(bundle.entry) == 9


def test_fhir_is_refused_for_an_unsigned_slide(pathologist_client, slide, reviewed):
    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})

    assert response.status_code == 409
    assert not export_events()


def test_api_exports_answer_files_and_are_in_the_schema(pathologist, slide, signed):
    client = APIClient()
    client.force_authenticate(pathologist)

    csv_response = client.get(reverse("api:export-slide", args=[slide.pk]), {"as": "csv"})
    fhir_response = client.get(reverse("api:export-slide", args=[slide.pk]), {"as": "fhir"})
    bad_format = client.get(reverse("api:export-slide", args=[slide.pk]), {"as": "xml"})
    schema = client.get(reverse("api:schema"), {"format": "json"})

    assert len(csv_rows(csv_response.content)) == 5
    fhir_validated(fhir_response.content)
    assert bad_format.status_code == 400
    assert {
        "/api/exports/slides/{id}/",
        "/api/exports/patients/{id}/",
        "/api/exports/cells/",
        "/api/predictions/{id}/reviews/",
    } <= set(json.loads(schema.content)["paths"])
    assert len(export_events()) == 2


def test_administrators_get_no_export(administrator_client, slide, reviewed):
    response = administrator_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "csv"})

    assert response.status_code == 403
    assert not export_events()


def test_a_patient_corrected_after_signing_keeps_the_signed_identity_on_every_report(
    lab_client, pathologist_client, slide, signed
):
    """Issue 11: PATCH of a signed slide's patient changed the identity its FHIR report showed."""
    url = reverse("api:patient-detail", args=[slide.patient_id])
    refused = lab_client.patch(url, {"mrn": "MRN-9999"}, content_type="application/json")
    corrected = lab_client.patch(
        url,
        {"mrn": "MRN-9999", "family_name": "Roe", "correction_reason": "MRN typed from the wrong form"},
        content_type="application/json",
    )

    assert refused.status_code == 400 and b"correction" in refused.content
    assert corrected.status_code == 200
    signed.refresh_from_db()
    assert (signed.patient_identity["mrn"], signed.patient_identity["family_name"]) == ("MRN-5001", "Doe")
    fhir = json.loads(
        pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"}).content
    )
    resources = {entry["resource"]["resourceType"]: entry["resource"] for entry in fhir["entry"]}
    assert resources["Patient"]["identifier"][0]["value"] == "MRN-5001"
    assert resources["Patient"]["name"] == [{"family": "Doe", "given": ["Jane"]}]
    assert "corrected after signing" in resources["DiagnosticReport"]["conclusion"]
    assert "MRN typed from the wrong form" in resources["DiagnosticReport"]["conclusion"]
    [row, *_] = csv_rows(
        pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "csv"}).content
    )
    assert (row["patient_mrn"], row["signed_patient_mrn"], row["signed_patient_name"]) == (
        "MRN-9999",
        "MRN-5001",
        "Doe, Jane",
    )
    assert row["patient_corrected_after_signing"] == "True"
    page = lab_client.get(reverse("cases:slide_detail", args=[slide.pk]))
    assert b"MRN MRN-5001" in page.content and b"MRN typed from the wrong form" in page.content
