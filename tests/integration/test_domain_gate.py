"""The domain gate with real parts: the committed default model in a real worker judges another
lab's cells (cellavision-blog) out of domain and the training labs' cells in domain, and the
slide's verdict drives bulk confirmation, sign-off, the exports and the FHIR report."""

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from audit.models import AuditAction, AuditEvent
from cases.models import Patient, Sex, Slide, SlideStatus
from cases.services import cell_image_create, patient_create, slide_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import DomainVerdict, InferenceJob, Prediction, SlideDomainAssessment
from classifier.services import slide_submit
from devtools.benchmark import shared_test_images
from ml.data import pbc_splits
from review.exports import ExportScope, export_rows, rows_to_csv
from review.fhir import slide_fhir_bundle
from review.models import Review
from review.services import ReviewError, prediction_review, slide_bulk_confirm, slide_sign
from tests.conftest import PASSWORD
from tests.factories import reauth_request
from tests.integration.test_inference_pipeline import _job_finished, _wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def other_lab_images(count: int) -> list[Path]:
    """Cells from other labs' CellaVision analysers, the classes in turn (never used in training)."""
    root = Path(settings.HEMATOVISION_DATA_DIR) / "cellavision-blog"
    per_class = [sorted(folder.glob("*.png")) for folder in sorted(root.iterdir()) if folder.is_dir()]
    interleaved = [image for group in zip(*per_class, strict=False) for image in group]
    return interleaved[:count]


def _slide_of(actor: User, paths: list[Path], accession_number: str) -> Slide:
    patient = Patient.objects.filter(mrn="DOM-1").first() or patient_create(
        actor=actor, mrn="DOM-1", family_name="Test", given_name="Domain",
        date_of_birth=timezone.now().date().replace(year=1970), sex=Sex.UNKNOWN,
    )  # fmt: skip
    slide = slide_create(
        actor=actor, patient=patient, accession_number=accession_number, collected_at=timezone.now()
    )
    limits = UploadLimits.from_settings()
    for path in paths:
        image = image_validate(data=path.read_bytes(), original_filename=path.name, limits=limits)
        cell_image_create(actor=actor, slide=slide, image=image)
    return slide


def _classified(slide: Slide, actor: User) -> InferenceJob:
    job = slide_submit(actor=actor, slide=slide)
    _wait_until(lambda: _job_finished(job))
    assert job.status == "succeeded"
    return job


def test_another_labs_slide_is_out_of_domain_never_bulk_confirmed_and_signed_only_with_acknowledgement(
    lab_staff, pathologist, make_worker
):
    make_worker()
    slide = _slide_of(lab_staff, other_lab_images(12), "DOM-OTHER-LAB")
    job = _classified(slide, lab_staff)

    assessment = SlideDomainAssessment.objects.get(slide=slide)
    assert (assessment.verdict, assessment.cell_count, assessment.job_id) == (
        DomainVerdict.OUT_OF_DOMAIN,
        12,
        job.pk,
    )
    assert assessment.statistic > assessment.threshold
    event = AuditEvent.objects.get(action=AuditAction.SLIDE_DOMAIN_ASSESSED, object_id=str(slide.pk))
    assert event.after["verdict"] == "out_of_domain" and event.after["job"] == job.pk
    predictions = list(Prediction.objects.filter(job=job))
    assert all(prediction.domain_score is not None for prediction in predictions)

    with pytest.raises(ReviewError, match="outside the model's validated domain"):
        slide_bulk_confirm(actor=pathologist, slide=slide)
    assert not Review.objects.exists()

    rows = list(
        csv.DictReader(
            io.StringIO(rows_to_csv(export_rows(user=pathologist, scope=ExportScope(slide=slide))))
        )
    )
    assert {row["slide_domain_verdict"] for row in rows} == {"out_of_domain"}
    assert all(row["domain_score"] for row in rows)

    for prediction in predictions:
        prediction_review(actor=pathologist, prediction=prediction, label=prediction.label)
    with pytest.raises(ReviewError, match="confirm that you reviewed every cell"):
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=PASSWORD,
            request=reauth_request(),
            count_acknowledged=True,
        )
    slide.refresh_from_db()
    assert slide.status == SlideStatus.IN_REVIEW
    signature = slide_sign(
        actor=pathologist,
        slide=slide,
        password=PASSWORD,
        request=reauth_request(),
        domain_acknowledged=True,
        count_acknowledged=True,
    )
    assert signature.differential["domain"] == {
        "verdict": "out_of_domain",
        "model_version": job.model_version.name,
        "statistic": assessment.statistic,
        "cells": 12,
        "acknowledged": True,
    }
    bundle = slide_fhir_bundle(signature=signature)
    report = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert "outside the validated domain" in report["conclusion"]
    observation = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    assert any("outside the validated domain" in note["text"] for note in observation["note"])


def held_out_pbc_images(count: int) -> list[Path]:
    """PBC test-split cells (never trained or validated on), the classes in turn."""
    per_class = [[s.path for s in pbc_splits()[2] if s.label == label] for label in range(4)]
    return [path for group in zip(*per_class, strict=False) for path in group][:count]


def test_a_training_labs_slide_is_in_domain_and_its_confident_cells_are_bulk_confirmed(
    lab_staff, pathologist, make_worker
):
    make_worker()
    slide = _slide_of(lab_staff, held_out_pbc_images(25), "DOM-PBC")
    job = _classified(slide, lab_staff)

    assessment = SlideDomainAssessment.objects.get(slide=slide)
    assert assessment.verdict == DomainVerdict.IN_DOMAIN, assessment.statistic
    assert not assessment.few_cells
    predictions = list(Prediction.objects.filter(job=job).select_related("model_version"))
    # Each cell is held to PBC's own review threshold (wbc-mnv2-v1.2), not the card's pooled one.
    assert len({p.review_threshold for p in predictions}) == 1
    assert predictions[0].review_threshold != job.model_version.review_threshold
    summary = slide_bulk_confirm(actor=pathologist, slide=slide)
    confident_in_domain = sum(p.in_domain is True and p.confidence >= p.review_threshold for p in predictions)
    assert summary.confirmed_total == confident_in_domain > 0
    assert Review.objects.filter(bulk=True).count() == confident_in_domain


def test_a_kaggle_slide_is_in_domain_but_no_cell_is_accepted_without_review(
    lab_staff, pathologist, make_worker
):
    # Kaggle validation has 50 distinct cells: too few to promise <= 1% errors among accepted cells.
    make_worker()
    slide = _slide_of(lab_staff, shared_test_images(25), "DOM-KAGGLE")
    job = _classified(slide, lab_staff)

    assert SlideDomainAssessment.objects.get(slide=slide).verdict == DomainVerdict.IN_DOMAIN
    assert set(Prediction.objects.filter(job=job).values_list("review_threshold", flat=True)) == {1.0}
    assert slide_bulk_confirm(actor=pathologist, slide=slide).confirmed_total == 0
    assert not Review.objects.exists()
