"""The printable report of a signed slide: the page, the PDF (parsed back with pypdf), the
pathologist's comment kept with each signature, versions after an amendment, and the audit of each
PDF download."""

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from audit.models import AuditAction, AuditEvent
from classifier.models import CellClass
from review.models import SlideSignature
from review.services import prediction_review, slide_amend, slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request, reviews_make

pytestmark = pytest.mark.django_db
COMMENT = "Relative monocytosis and eosinophilia; suggest a repeat count in two weeks."


@pytest.fixture
def signed(pathologist, slide, predictions) -> SlideSignature:
    """Two neutrophils, one lymphocyte, one monocyte, one eosinophil: monocytes and eosinophils
    (20 % each) are above their reference intervals."""
    reviews_make(predictions, pathologist)
    return slide_sign(
        actor=pathologist,
        slide=slide,
        password=PASSWORD,
        request=reauth_request(),
        comment=f"  {COMMENT}\n",
        count_acknowledged=True,
    )


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def report_rows(html: str) -> str:
    return html.split('id="report-differential"', 1)[1].split("</table>", 1)[0]


def test_signing_keeps_the_comment_with_the_signature_and_its_audit_event(signed):
    signed.refresh_from_db()
    assert signed.comment == COMMENT  # trimmed
    event = AuditEvent.objects.get(action=AuditAction.SLIDE_SIGNED)
    assert event.after["comment"] == COMMENT
    assert signed.differential["reference_intervals"]["MONOCYTE"] == [2.0, 10.0]
    assert signed.differential["model_versions"] == ["review-test"]


def test_the_fhir_report_concludes_with_the_comment(pathologist_client, slide, signed):
    bundle = pathologist_client.get(reverse("review:slide_export", args=[slide.pk]), {"as": "fhir"}).json()
    [report] = [
        entry["resource"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "DiagnosticReport"
    ]
    assert report["conclusion"].startswith(f"{COMMENT} Reviewed and approved by Paul Patho.")


def test_the_sign_form_takes_the_comment(pathologist, pathologist_client, slide, predictions):
    reviews_make(predictions, pathologist)
    url = reverse("review:slide_sign", args=[slide.pk])
    assert 'name="comment"' in pathologist_client.get(url).content.decode()

    response = pathologist_client.post(
        url, {"password": PASSWORD, "comment": "Reactive lymphocytes seen.", "acknowledge_count": "on"}
    )

    assert response.status_code == 302
    assert SlideSignature.objects.get(slide=slide).comment == "Reactive lymphocytes seen."


def test_a_comment_longer_than_the_limit_is_refused_and_nothing_is_signed(
    pathologist, pathologist_client, slide, predictions
):
    reviews_make(predictions, pathologist)
    response = pathologist_client.post(
        reverse("review:slide_sign", args=[slide.pk]), {"password": PASSWORD, "comment": "x" * 4001}
    )
    assert response.status_code == 200 and "at most 4000 characters" in response.content.decode()
    assert not SlideSignature.objects.exists()


def test_the_report_page_shows_patient_specimen_differential_comment_signature_and_model(
    lab_client, slide, signed
):
    response = lab_client.get(reverse("review:slide_report", args=[slide.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Doe, Jane" in html and "MRN-5001" in html and "1980-05-17" in html and "Female" in html
    assert "S-5001" in html and "Wright-Giemsa" in html and "Routine" in html
    rows = report_rows(html)
    assert '<tr data-class="MONOCYTE" class="table-warning">' in rows
    assert "2–10" in rows and "40–75" in rows and "<strong>H</strong>" in rows
    assert '<tr data-class="NEUTROPHIL">' in rows  # 40 %: inside its interval, no flag
    assert COMMENT in html
    assert "Version 1: reviewed and approved by <strong>Paul Patho</strong>" in html
    assert "Model version: review-test" in html and "Inside the validated domain of review-test" in html
    assert 'id="report-status">Final<' in html
    assert "5 cells verified individually" in html


def test_the_pdf_parses_and_carries_the_report(lab_client, slide, signed):
    response = lab_client.get(reverse("review:slide_report_pdf", args=[slide.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="report-S-5001-v1.pdf"'
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    text = pdf_text(response.content)
    for expected in (
        "White-cell differential report",
        "Doe, Jane",
        "MRN-5001",
        "1980-05-17",
        "S-5001",
        "Monocyte",
        "2–10",
        COMMENT[:40],
        "Paul Patho",
        "review-test",
        "Final",
    ):
        assert expected in text, expected
    assert reader.metadata.title == "Differential report S-5001 v1"


def test_each_pdf_download_is_audited(lab_staff, lab_client, slide, signed):
    lab_client.get(reverse("review:slide_report_pdf", args=[slide.pk]))
    lab_client.get(reverse("review:slide_report", args=[slide.pk]))  # the page is not a copy

    [event] = AuditEvent.objects.filter(action=AuditAction.RESULTS_EXPORTED)
    assert event.actor == lab_staff
    assert event.after == {
        "scope": {"slide_id": slide.pk, "accession_number": "S-5001", "signature_version": 1},
        "format": "pdf",
        "cell_count": 5,
    }


def test_an_unsigned_slide_has_no_report(pathologist_client, slide, predictions):
    page = pathologist_client.get(reverse("review:slide_report", args=[slide.pk]))
    pdf = pathologist_client.get(reverse("review:slide_report_pdf", args=[slide.pk]))

    assert page.status_code == 404 and "has no signed report" in page.content.decode()
    assert pdf.status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.RESULTS_EXPORTED).exists()


def test_after_an_amendment_the_comment_carries_over_and_each_version_has_its_report(
    pathologist, pathologist_client, slide, predictions, signed
):
    slide_amend(
        actor=pathologist,
        slide=slide,
        reason="Recount the monocytes",
        password=PASSWORD,
        request=reauth_request(),
    )
    sign_page = pathologist_client.get(reverse("review:slide_sign", args=[slide.pk])).content.decode()
    assert COMMENT in sign_page  # the form starts from the comment signed before
    reopened = pathologist_client.get(reverse("review:slide_report", args=[slide.pk])).content.decode()
    assert "Reopened for amendment: this version no longer stands" in reopened

    prediction_review(
        actor=pathologist, prediction=predictions[3], label=CellClass.LYMPHOCYTE, reason="Recounted"
    )
    slide_sign(
        actor=pathologist,
        slide=slide,
        password=PASSWORD,
        request=reauth_request(),
        comment="Amended count.",
        count_acknowledged=True,
    )

    latest = pathologist_client.get(reverse("review:slide_report", args=[slide.pk])).content.decode()
    first = pathologist_client.get(
        reverse("review:slide_report", args=[slide.pk]) + "?version=1"
    ).content.decode()
    assert 'id="report-status">Amended (version 2)<' in latest and "Amended count." in latest
    assert "Reopened for amendment by Paul Patho" in latest and "Recount the monocytes" in latest
    assert f"Comment of this version: {COMMENT}" in latest
    assert 'id="report-status">Superseded by version 2<' in first and COMMENT in first
    pdf = pathologist_client.get(reverse("review:slide_report_pdf", args=[slide.pk]) + "?version=1")
    assert "Superseded by version 2" in pdf_text(pdf.content)
    for version in ("7", "one", "-1"):
        missing = pathologist_client.get(
            reverse("review:slide_report", args=[slide.pk]), {"version": version}
        )
        assert missing.status_code == 404 and "has no signed report of version" in missing.content.decode()


def test_the_report_lists_whatever_classes_the_signed_differential_holds(
    pathologist, lab_client, slide, signed
):
    # A differential signed with a class beyond the model's four (the lab's class list grows).
    extra = {
        **signed.differential,
        "classes": {
            **signed.differential["classes"],
            "BASOPHIL": {"count": 1, "percent": 2.5, "flag": "high"},
        },
        "reference_intervals": {**signed.differential["reference_intervals"], "BASOPHIL": [0.0, 1.0]},
    }
    version_2 = SlideSignature.objects.create(
        slide=slide,
        version=2,
        signer=pathologist,
        signer_full_name="Paul Patho",
        signed_at=timezone.now(),
        differential=extra,
        comment="",
    )

    html = lab_client.get(reverse("review:slide_report", args=[slide.pk])).content.decode()
    pdf = pdf_text(lab_client.get(reverse("review:slide_report_pdf", args=[slide.pk])).content)

    assert version_2.version == 2
    assert '<tr data-class="BASOPHIL" class="table-warning">' in report_rows(html) and "0–1" in html
    assert "Basophil" in html and "Basophil" in pdf and "0–1" in pdf
    assert report_rows(html).count("<tr data-class=") == 5


def test_a_signature_from_before_comments_and_intervals_were_kept_still_prints(
    pathologist, lab_client, slide
):
    SlideSignature.objects.create(
        slide=slide,
        version=1,
        signer=pathologist,
        signer_full_name="Paul Patho",
        signed_at=timezone.now(),
        differential={"total": 2, "classes": {"NEUTROPHIL": {"count": 2, "percent": 100.0, "flag": "high"}}},
    )

    html = lab_client.get(reverse("review:slide_report", args=[slide.pk])).content.decode()
    pdf = lab_client.get(reverse("review:slide_report_pdf", args=[slide.pk]))

    assert "as configured now; not kept with this signature" in html and "40–75" in html
    assert "Not recorded (signed before the domain gate)" in html
    assert pdf.status_code == 200 and "Doe, Jane" in pdf_text(pdf.content)


def test_the_report_names_the_patient_as_signed_for_and_the_later_correction(
    lab_staff, lab_client, slide, signed
):
    from cases.services import patient_update

    patient_update(
        actor=lab_staff, patient=slide.patient, changes={"family_name": "Smith"}, reason="Married name"
    )

    html = lab_client.get(reverse("review:slide_report", args=[slide.pk])).content.decode()
    assert "Doe, Jane" in html and "Smith" not in html.split('id="report-patient"', 1)[1].split("</dl>", 1)[0]
    assert "corrected after signing" in html and "Married name" in html


def test_printing_hides_the_navigation():
    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    print_rules = css.split("@media print", 1)[1]
    assert "nav.navbar" in print_rules.split("{", 2)[1] and "display: none !important" in print_rules
