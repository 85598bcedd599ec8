"""The full differential (issue 12, Missing 2 and 3): the lab's class list beyond the model's four,
how each class counts (WBC differential, per 100 WBC, not reported), the counting rules (target per
slide, acknowledged when signing below it), absolute counts from the entered WBC count, and all of
it in the differential, the signature, the pages, the exports and FHIR."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import SlideStatus
from cases.services import SlideLockedError, slide_target_count_set, slide_wbc_count_enter
from classifier.models import CellClass
from review.models import Counting, DifferentialClass, Review
from review.selectors import (
    class_names,
    correction_choices,
    counting_default_target,
    slide_count_target,
    slide_differential,
)
from review.services import (
    ReviewError,
    counting_default_target_set,
    differential_class_create,
    differential_class_move,
    differential_class_update,
    prediction_review,
    slide_sign,
)
from tests.conftest import PASSWORD
from tests.factories import reauth_request, reviews_make
from tests.review.test_exports import csv_rows, fhir_validated, resources_of

pytestmark = pytest.mark.django_db


def events(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def sign(pathologist, slide, **acknowledged) -> object:  # noqa: ANN001
    return slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), **acknowledged
    )


@pytest.fixture
def mixed(pathologist, slide, predictions):
    """The five cells verified as: neutrophil, blast, lymphocyte, nucleated red cell, artefact."""
    reviews_make(predictions[:1], pathologist)
    prediction_review(actor=pathologist, prediction=predictions[1], label="BLAST", reason="Blast chromatin")
    reviews_make(predictions[2:3], pathologist)
    prediction_review(actor=pathologist, prediction=predictions[3], label="NRBC", reason="Nucleated red cell")
    prediction_review(actor=pathologist, prediction=predictions[4], label="ARTEFACT", reason="Stain debris")
    return predictions


# --- The class list ----------------------------------------------------------------------------------


def test_the_seeded_list_has_the_models_four_and_the_labs_other_classes():
    classes = {cell_class.code: cell_class for cell_class in DifferentialClass.objects.all()}

    assert len(classes) == 16 and set(CellClass.values) <= set(classes)
    assert {code for code, c in classes.items() if c.counting == Counting.PER_100_WBC} == {"NRBC", "SMUDGE"}
    assert {code for code, c in classes.items() if c.counting == Counting.NOT_REPORTED} == {"ARTEFACT"}
    assert classes["BLAST"].loinc_code == "26446-5" and classes["BASOPHIL"].loinc_code == "30180-4"
    assert classes["BASOPHIL"].absolute_loinc_code == "26444-0"
    assert classes["NRBC"].loinc_code == "19048-8" and classes["NRBC"].absolute_loinc_code == ""
    assert all(c.always_reported for code, c in classes.items() if code in CellClass.values)
    assert [code for code, _ in correction_choices()][:3] == ["NEUTROPHIL", "BAND", "LYMPHOCYTE"]


def test_a_deactivated_class_keeps_its_cells_but_takes_no_new_ones(
    administrator, pathologist, slide, predictions
):
    prediction_review(
        actor=pathologist, prediction=predictions[0], label="PLASMA_CELL", reason="Clock-face nucleus"
    )
    plasma = DifferentialClass.objects.get(code="PLASMA_CELL")

    differential_class_update(
        actor=administrator, cell_class=plasma, changes={"is_active": False}, reason="Not used"
    )

    assert "PLASMA_CELL" not in dict(correction_choices())
    assert class_names()["PLASMA_CELL"] == "Plasma cell"
    rows = {row.label: row for row in slide_differential(slide=slide).rows}
    assert rows["PLASMA_CELL"].verified_count == 1 and rows["PLASMA_CELL"].verified_percent == 100.0
    with pytest.raises(ReviewError, match="not one of the lab's active classes"):
        prediction_review(actor=pathologist, prediction=predictions[1], label="PLASMA_CELL", reason="x")
    assert Review.objects.get(prediction=predictions[0]).label == "PLASMA_CELL"
    [event] = events(AuditAction.DIFFERENTIAL_CLASS_CHANGED)
    assert (event.before, event.after, event.reason) == (
        {"is_active": True},
        {"code": "PLASMA_CELL", "is_active": False},
        "Not used",
    )


def test_the_models_classes_stay_active_white_cells(administrator):
    neutrophil = DifferentialClass.objects.get(code="NEUTROPHIL")

    with pytest.raises(ValidationError, match="stays active"):
        differential_class_update(actor=administrator, cell_class=neutrophil, changes={"is_active": False})
    with pytest.raises(ValidationError, match="stays active"):
        differential_class_update(actor=administrator, cell_class=neutrophil, changes={"counting": "none"})
    renamed = differential_class_update(
        actor=administrator, cell_class=neutrophil, changes={"name": "Segmented neutrophil"}
    )

    assert renamed.name == "Segmented neutrophil" and renamed.is_active
    assert len(events(AuditAction.DIFFERENTIAL_CLASS_CHANGED)) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shortcut": "x"}, "another use on the review screen"),
        ({"shortcut": "8"}, "already chooses Blast"),
        ({"loinc_code": "26446"}, "A LOINC code looks like"),
        ({"reference_low": 5.0, "reference_high": 1.0}, "reference"),
        ({"name": "Blast"}, "Another class already has this name"),
    ],
)
def test_a_class_change_that_breaks_a_rule_is_refused_and_changes_nothing(administrator, changes, message):
    basophil = DifferentialClass.objects.get(code="BASOPHIL")

    with pytest.raises(ValidationError, match=message):
        differential_class_update(actor=administrator, cell_class=basophil, changes=changes)

    basophil.refresh_from_db()
    assert (basophil.shortcut, basophil.loinc_code, basophil.name) == ("5", "30180-4", "Basophil")
    assert not events(AuditAction.DIFFERENTIAL_CLASS_CHANGED)


def test_a_new_class_joins_the_end_of_the_list_and_moves_audited(administrator, pathologist, predictions):
    created = differential_class_create(
        actor=administrator,
        code="hairy_cell",
        name="Hairy cell",
        counting=Counting.WBC,
        shortcut="h",
        loinc_code="35058-7",
        loinc_display="Hairy cells/100 leukocytes in Blood",
    )
    order = differential_class_move(actor=administrator, cell_class=created, offset=-1)

    assert created.code == "HAIRY_CELL" and order[-2:] == ["HAIRY_CELL", "ARTEFACT"]
    assert correction_choices()[-2] == ("HAIRY_CELL", "Hairy cell")
    prediction_review(actor=pathologist, prediction=predictions[0], label="HAIRY_CELL", reason="Projections")
    [created_event] = events(AuditAction.DIFFERENTIAL_CLASS_CREATED)
    [moved] = events(AuditAction.DIFFERENTIAL_CLASSES_REORDERED)
    assert created_event.after["code"] == "HAIRY_CELL" and created_event.after["loinc_code"] == "35058-7"
    assert moved.before["order"][-2:] == ["ARTEFACT", "HAIRY_CELL"]
    assert moved.after["order"][-2:] == ["HAIRY_CELL", "ARTEFACT"]


def test_only_admins_change_the_class_list(pathologist, lab_staff):
    blast = DifferentialClass.objects.get(code="BLAST")

    for actor in (pathologist, lab_staff):
        with pytest.raises(PermissionDenied):
            differential_class_update(actor=actor, cell_class=blast, changes={"name": "Myeloblast"})
        with pytest.raises(PermissionDenied):
            counting_default_target_set(actor=actor, target=200)
    assert DifferentialClass.objects.get(code="BLAST").name == "Blast"


# --- The differential with extra classes -------------------------------------------------------------


def test_extra_classes_count_per_their_rule(slide, mixed):
    differential = slide_differential(slide=slide)
    rows = {row.label: row for row in differential.rows}

    # Neutrophil, blast and lymphocyte are the white cells: the percentages' base.
    assert differential.verified_total == 3
    assert (rows["BLAST"].verified_count, rows["BLAST"].verified_percent) == (1, 33.3)
    assert rows["NEUTROPHIL"].verified_percent == 33.3 and rows["LYMPHOCYTE"].verified_percent == 33.3
    assert (rows["NRBC"].counting, rows["NRBC"].verified_percent) == (Counting.PER_100_WBC, 33.3)
    assert (rows["ARTEFACT"].verified_count, rows["ARTEFACT"].verified_percent) == (1, None)
    assert [row.label for row in differential.other_rows] == ["NRBC", "ARTEFACT"]
    # Classes no cell has are listed only when always reported (the model's four).
    assert "BASOPHIL" not in rows and rows["EOSINOPHIL"].verified_count == 0
    assert rows["EOSINOPHIL"].predicted_count == 1 and "SMUDGE" not in rows
    assert differential.target.summary == "3 / 100 WBC counted"


def test_absolute_counts_follow_the_entered_wbc_count(lab_staff, slide, mixed):
    assert slide_differential(slide=slide).rows[0].absolute is None

    slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("8.10"))
    slide.refresh_from_db()
    rows = {row.label: row for row in slide_differential(slide=slide).rows}

    assert rows["BLAST"].absolute == 2.7 and rows["NRBC"].absolute == 2.7
    assert rows["EOSINOPHIL"].absolute == 0.0 and rows["ARTEFACT"].absolute is None
    assert (slide.wbc_count_entered_by, slide.wbc_count) == (lab_staff, Decimal("8.10"))
    [event] = events(AuditAction.SLIDE_WBC_COUNT_ENTERED)
    assert (event.before, event.after) == ({"wbc_count": None}, {"wbc_count": "8.10", "unit": "10*9/L"})


def test_changing_an_entered_wbc_count_needs_a_reason(lab_staff, pathologist, slide):
    slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("5.00"))

    with pytest.raises(ValidationError, match="say why it changes"):
        slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("6.00"))
    with pytest.raises(PermissionDenied):
        slide_wbc_count_enter(actor=pathologist, slide=slide, wbc_count=Decimal("6.00"), reason="Rerun")
    slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("6.00"), reason="Analyser rerun")

    slide.refresh_from_db()
    assert slide.wbc_count == Decimal("6.00")
    assert [e.reason for e in events(AuditAction.SLIDE_WBC_COUNT_ENTERED)] == ["", "Analyser rerun"]


def test_a_wbc_count_out_of_bounds_is_refused(lab_staff, slide):
    with pytest.raises(ValidationError, match="wbc_count"):
        slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("0.00"))

    slide.refresh_from_db()
    assert slide.wbc_count is None and not events(AuditAction.SLIDE_WBC_COUNT_ENTERED)


# --- Counting rules: the target and signing below it ------------------------------------------------


def test_the_target_is_the_slides_own_or_the_labs_default(administrator, lab_staff, pathologist, slide):
    assert slide_count_target(slide=slide).as_dict() | {"summary": ""} == {
        "count": 100,
        "source": "lab default",
        "counted": 0,
        "reached": False,
        "summary": "",
    }
    counting_default_target_set(actor=administrator, target=200)
    assert (counting_default_target(), slide_count_target(slide=slide).count) == (200, 200)

    slide_target_count_set(actor=lab_staff, slide=slide, target=400, reason="Lymphocytosis work-up")
    slide_target_count_set(actor=pathologist, slide=slide, target=None)

    slide.refresh_from_db()
    assert slide_count_target(slide=slide).source == "lab default"
    [default_event] = events(AuditAction.COUNTING_DEFAULT_TARGET_CHANGED)
    assert (default_event.before, default_event.after) == ({"default_target": 100}, {"default_target": 200})
    assert [(e.before, e.after, e.actor) for e in events(AuditAction.SLIDE_TARGET_COUNT_SET)] == [
        ({"target_wbc_count": None}, {"target_wbc_count": 400}, lab_staff),
        ({"target_wbc_count": 400}, {"target_wbc_count": None}, pathologist),
    ]


def test_a_target_out_of_bounds_or_on_a_signed_slide_is_refused(lab_staff, pathologist, slide, predictions):
    with pytest.raises(ValidationError, match="target_wbc_count"):
        slide_target_count_set(actor=lab_staff, slide=slide, target=10)
    reviews_make(predictions, pathologist)
    sign(pathologist, slide, count_acknowledged=True)

    with pytest.raises(SlideLockedError):
        slide_target_count_set(actor=pathologist, slide=slide, target=200)
    with pytest.raises(SlideLockedError):
        slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("5.00"))
    assert not events(AuditAction.SLIDE_TARGET_COUNT_SET)


def test_signing_below_the_target_needs_an_acknowledgement_kept_with_the_signature(pathologist, slide, mixed):
    with pytest.raises(ReviewError, match="Only 3 white cells are counted, below this slide's target of 100"):
        sign(pathologist, slide)
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW and not events(AuditAction.SLIDE_SIGN_REFUSED)

    signature = sign(pathologist, slide, count_acknowledged=True)

    assert signature.differential["target"] == {
        "count": 100,
        "source": "lab default",
        "counted": 3,
        "reached": False,
        "summary": "3 / 100 WBC counted",
        "acknowledged": True,
    }
    blast = signature.differential["classes"]["BLAST"]
    assert (blast["counting"], blast["count"], blast["percent"]) == ("wbc", 1, 33.3)
    assert blast["loinc"] == {"code": "26446-5", "display": "Blasts/100 leukocytes in Blood"}
    [event] = events(AuditAction.SLIDE_SIGNED)
    assert event.after["differential"]["target"]["acknowledged"] is True


def test_a_slide_at_its_target_is_signed_without_an_acknowledgement(
    lab_staff, pathologist, slide, add_prediction
):
    slide_target_count_set(actor=lab_staff, slide=slide, target=50)
    reviews_make([add_prediction(slide, CellClass.LYMPHOCYTE, 0.99) for _ in range(50)], pathologist)

    signature = sign(pathologist, slide)

    assert signature.differential["target"]["reached"] is True
    assert signature.differential["target"]["acknowledged"] is False


# --- Pages, API --------------------------------------------------------------------------------------


def test_the_review_screen_offers_every_active_class_with_its_key(
    administrator, pathologist_client, slide, predictions
):
    differential_class_update(
        actor=administrator,
        cell_class=DifferentialClass.objects.get(code="SMUDGE"),
        changes={"is_active": False},
    )

    response = pathologist_client.get(reverse("review:slide_review", args=[slide.pk]))

    data = response.context["review_data"]
    offered = {cls["value"]: cls["keys"] for cls in data["classes"]}
    assert offered["BLAST"] == ["8"] and offered["NEUTROPHIL"] == ["4", "n"] and "SMUDGE" not in offered
    assert data["names"]["SMUDGE"] == "Smudge cell"
    assert data["progress"]["target"]["summary"] == "0 / 100 WBC counted"
    assert b'data-class-option="BLAST"' in response.content and b'id="count-target"' in response.content


def test_a_correction_to_an_extra_class_answers_the_progress_towards_the_target(
    pathologist_client, slide, predictions
):
    response = pathologist_client.post(
        reverse("review:prediction_review", args=[predictions[0].pk]),
        {"label": "BAND", "reason": "Unsegmented nucleus"},
        HTTP_ACCEPT="application/json",
    )

    answer = response.json()
    assert answer["review"]["label_name"] == "Band neutrophil" and answer["review"]["decision"] == "corrected"
    assert answer["progress"]["target"]["summary"] == "1 / 100 WBC counted"


def test_the_api_takes_any_active_class_and_refuses_others(pathologist, predictions):
    client = APIClient()
    client.force_authenticate(pathologist)
    url = reverse("api:prediction-review", args=[predictions[0].pk])

    created = client.post(url, {"label": "MYELOCYTE", "reason": "Round nucleus"}, format="json")
    refused = client.post(url, {"label": "MEGAKARYOCYTE", "reason": "x"}, format="json")

    assert created.status_code == 201 and created.json()["label"] == "MYELOCYTE"
    assert refused.status_code == 400 and Review.objects.filter(prediction=predictions[0]).count() == 1


def test_the_sign_page_warns_below_the_target_and_needs_the_box_ticked(pathologist_client, slide, mixed):
    url = reverse("review:slide_sign", args=[slide.pk])

    page = pathologist_client.get(url)
    unticked = pathologist_client.post(url, {"password": PASSWORD})
    ticked = pathologist_client.post(url, {"password": PASSWORD, "acknowledge_count": "on"})

    assert b'id="sign-below-target"' in page.content and b"3 / 100 WBC counted" in page.content
    assert unticked.status_code == 200 and "acknowledge_count" in unticked.context["form"].errors
    assert ticked.status_code == 302
    slide.refresh_from_db()
    assert slide.status == SlideStatus.SIGNED


def test_the_slide_page_sets_the_target_and_the_wbc_count(lab_client, slide, predictions):
    lab_client.post(reverse("review:slide_target_count", args=[slide.pk]), {"target": "200"})
    lab_client.post(reverse("review:slide_wbc_count", args=[slide.pk]), {"wbc_count": "7.25"})
    refused = lab_client.post(reverse("review:slide_wbc_count", args=[slide.pk]), {"wbc_count": "-1"})

    slide.refresh_from_db()
    assert (slide.target_wbc_count, slide.wbc_count) == (200, Decimal("7.25"))
    page = lab_client.get(reverse("cases:slide_detail", args=[slide.pk]))
    assert b"0 / 200 WBC counted" in page.content and "7.25 ×10⁹/L" in page.content.decode()
    assert refused.status_code == 302 and len(events(AuditAction.SLIDE_WBC_COUNT_ENTERED)) == 1


def test_the_differential_page_shows_the_other_classes_and_absolute_counts(
    lab_staff, pathologist_client, slide, mixed
):
    slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("9.00"))

    page = pathologist_client.get(reverse("review:slide_differential", args=[slide.pk])).content.decode()

    assert 'id="differential-other"' in page and "Nucleated red cell" in page and "not reported" in page
    assert "9.00 ×10⁹/L" in page and "3 / 100 WBC counted" in page


def test_the_admin_edits_the_class_list_page(administrator_client):
    blast = DifferentialClass.objects.get(code="BLAST")
    form = {
        "name": "Blast (unclassified)",
        "counting": "wbc",
        "shortcut": "8",
        "is_active": "on",
        "loinc_code": "26446-5",
        "loinc_display": "Blasts/100 leukocytes in Blood",
        "reason": "Lab naming",
    }

    saved = administrator_client.post(reverse("review:class_update", args=[blast.pk]), form)
    taken = administrator_client.post(
        reverse("review:class_update", args=[blast.pk]), {**form, "shortcut": "5"}
    )
    page = administrator_client.get(reverse("review:class_list"))

    assert saved.status_code == 302 and taken.status_code == 200
    assert "already chooses Basophil" in taken.content.decode()
    blast.refresh_from_db()
    assert (blast.name, blast.shortcut, blast.code) == ("Blast (unclassified)", "8", "BLAST")
    assert b"Blast (unclassified)" in page.content and b'id="default-target"' in page.content


# --- Exports and FHIR --------------------------------------------------------------------------------


def test_csv_export_carries_the_classes_and_the_counting_rules(lab_staff, pathologist_client, slide, mixed):
    slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("6.00"))

    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "csv"})

    rows = {row["final_label"]: row for row in csv_rows(response.content)}
    blast, nrbc, artefact = rows["BLAST"], rows["NRBC"], rows["ARTEFACT"]
    assert (blast["final_label_name"], blast["final_label_counting"]) == ("Blast", "wbc")
    assert (blast["final_label_percent"], blast["final_label_absolute"]) == ("33.3", "2.0")
    assert (nrbc["final_label_counting"], nrbc["final_label_percent"]) == ("per_100_wbc", "33.3")
    assert (artefact["final_label_counting"], artefact["final_label_percent"]) == ("none", "")
    assert (blast["slide_wbc_count"], blast["slide_target_wbc_count"], blast["slide_wbc_counted"]) == (
        "6.00",
        "100",
        "3",
    )


def test_fhir_reports_each_class_its_way_and_stays_valid_r4(
    lab_staff, pathologist, pathologist_client, slide, mixed
):
    slide_wbc_count_enter(actor=lab_staff, slide=slide, wbc_count=Decimal("6.00"))
    sign(pathologist, slide, count_acknowledged=True)

    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})

    fhir_validated(response.content)
    document = json.loads(response.content)
    # By LOINC code, or by name where the class has no code (never an invented one).
    observations = {
        observation["code"].get("coding", [{"code": observation["code"]["text"]}])[0]["code"]: observation[
            "valueQuantity"
        ]
        for observation in resources_of(document, "Observation")
    }
    assert observations["6690-2"] == {
        "value": 6.0,
        "unit": "10^9/L",
        "system": "http://unitsofmeasure.org",
        "code": "10*9/L",
    }
    assert observations["26446-5"]["value"] == 33.3 and observations["26446-5"]["code"] == "%"
    assert observations["19048-8"] == {
        "value": 33.3,
        "unit": "/100 WBC",
        "system": "http://unitsofmeasure.org",
        "code": "/100{WBCs}",
    }
    assert observations["30376-8"]["value"] == 2.0 and observations["26499-4"]["value"] == 2.0
    percent_codes = [code for code, quantity in observations.items() if quantity["code"] == "%"]
    assert sum(observations[code]["value"] for code in percent_codes) == pytest.approx(100.0, abs=0.2)
    # The artefact is counted, not reported: no Observation, named in the conclusion.
    texts = [obs["code"]["text"] for obs in resources_of(document, "Observation")]
    assert not any("rtefact" in text for text in texts)
    # NRBC has no verified absolute LOINC code: its absolute count is named, not coded.
    assert observations["Nucleated red cell [#/volume] in Blood"]["value"] == 2.0
    [report] = resources_of(document, "DiagnosticReport")
    assert "Below the target count of 100 white cells, acknowledged by the signer." in report["conclusion"]
    assert "Also seen, not reported: artefact (1)." in report["conclusion"]


def test_fhir_of_a_signature_from_before_the_class_list_keeps_its_codes(
    pathologist, pathologist_client, slide, predictions
):
    reviews_make(predictions, pathologist)
    signature = sign(pathologist, slide, count_acknowledged=True)
    old_format = {
        "total": 5,
        "excluded": 0,
        "classes": {
            label: {"count": count, "percent": percent, "flag": ""}
            for label, count, percent in (
                ("EOSINOPHIL", 1, 20.0),
                ("LYMPHOCYTE", 1, 20.0),
                ("MONOCYTE", 1, 20.0),
                ("NEUTROPHIL", 2, 40.0),
            )
        },
    }
    # A signature as code before the class list wrote it (signatures are append-only: by SQL).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE classifier_slidesignature SET differential = %s WHERE id = %s",
            [json.dumps(old_format), signature.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")

    response = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"})

    fhir_validated(response.content)
    codes = sorted(
        obs["code"]["coding"][0]["code"] for obs in resources_of(json.loads(response.content), "Observation")
    )
    assert codes == ["5905-5", "713-8", "736-9", "770-8"]


def test_tiles_and_the_queue_name_an_extra_class(pathologist_client, slide, mixed):
    tiles = pathologist_client.get(reverse("cases:slide_detail", args=[slide.pk])).content.decode()
    queue = pathologist_client.get(reverse("review:queue"), {"slide": slide.pk}).content.decode()

    assert '<strong class="text-body">Nucleated red cell</strong>' in tiles
    assert "corrected: Blast" in queue and "corrected: Nucleated red cell" in queue
