"""The domain gate in the app (classifier.domain): the worker stores each cell's domain score and
the slide's verdict when a job finishes; the verdict and the decision function decide what is
auto-acceptable, in Python and in SQL alike. The tiny model's domain score is the mean square of
its four features, so thresholds far above or below it put every cell in or out of domain."""

import pytest
from django.db.models import BooleanField, ExpressionWrapper

from audit.models import AuditAction, AuditEvent
from classifier import services, tasks
from classifier.domain import (
    prediction_auto_acceptable_q,
    slide_auto_acceptable_ids,
    slide_domain,
    slide_domain_decision,
)
from classifier.models import DomainVerdict, Prediction, SlideDomainAssessment
from classifier.services import model_version_register
from ml.domain import REVIEW_EVERYTHING, DomainThresholds
from ml.testing import make_tiny_model_dir
from tests.factories import (
    inference_job_make,
    model_version_make,
    prediction_make,
    slide_domain_assessment_make,
)

pytestmark = pytest.mark.django_db

EVERYTHING_IN = DomainThresholds(cell=1e9, slide=1e9)
NOTHING_IN = DomainThresholds(cell=-1.0, slide=-1.0)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr(tasks.inference_job_run_task, "delay", lambda *args: None)


def _version(models_root, name: str, domain: DomainThresholds | None, review_threshold: float = 0.0):
    directory = make_tiny_model_dir(
        models_root / name, version=name, domain=domain, review_threshold=review_threshold
    )
    version = model_version_register(directory=directory)
    services.model_version_activate(actor=None, model_version=version)
    return version


def _classify(slide, actor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.slide_submit(actor=actor, slide=slide)
    return services.inference_job_run(job_id=job.pk)


def test_a_finished_job_stores_cell_scores_and_the_slides_verdict_with_its_audit_event(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks
):
    version = _version(models_root, "tiny-in", EVERYTHING_IN)
    job = _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)

    predictions = list(Prediction.objects.filter(job=job))
    assert len(predictions) == 5 and all(p.in_domain is True and p.domain_score >= 0 for p in predictions)
    assessment = SlideDomainAssessment.objects.get(slide=slide_with_cells)
    assert (assessment.verdict, assessment.cell_count, assessment.few_cells) == ("in_domain", 5, True)
    assert (assessment.model_version, assessment.job, assessment.threshold) == (version, job, 1e9)
    event = AuditEvent.objects.get(action=AuditAction.SLIDE_DOMAIN_ASSESSED)
    assert event.object_type == "cases.slide" and event.object_id == str(slide_with_cells.pk)
    assert event.after["verdict"] == "in_domain" and event.after["few_cells"] is True
    assert slide_auto_acceptable_ids(slide=slide_with_cells) == {p.pk for p in predictions}


def test_cells_far_from_the_domain_make_the_slide_out_of_domain_and_nothing_acceptable(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks
):
    _version(models_root, "tiny-out", NOTHING_IN)
    job = _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)

    assert not Prediction.objects.filter(job=job, in_domain=True).exists()
    domain = slide_domain(slide=slide_with_cells)
    assert domain.verdict == DomainVerdict.OUT_OF_DOMAIN and domain.needs_attention
    assert slide_auto_acceptable_ids(slide=slide_with_cells) == set()


def test_a_model_without_domain_statistics_makes_every_slide_domain_unknown_never_in_domain(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks
):
    _version(models_root, "tiny-none", None)
    job = _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)

    assert set(Prediction.objects.filter(job=job).values_list("domain_score", "in_domain")) == {(None, None)}
    domain = slide_domain(slide=slide_with_cells)
    assert domain.verdict == DomainVerdict.UNKNOWN and domain.needs_attention and not domain.in_domain
    assert slide_auto_acceptable_ids(slide=slide_with_cells) == set()


def test_the_sql_rule_agrees_with_the_decision_function(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks
):
    version = _version(models_root, "tiny-half", EVERYTHING_IN, review_threshold=0.3)
    _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)

    predictions, decision = slide_domain_decision(slide=slide_with_cells, model_version=version)
    in_python = {p.pk for p, cell in zip(predictions, decision.cells, strict=True) if cell.auto_acceptable}
    annotated = Prediction.objects.annotate(
        ok=ExpressionWrapper(prediction_auto_acceptable_q(), output_field=BooleanField())
    )
    in_sql = set(annotated.filter(ok=True).values_list("pk", flat=True))
    assert in_python == in_sql == slide_auto_acceptable_ids(slide=slide_with_cells)
    assert {p.pk for p in predictions if p.confidence >= 0.3} == in_python


def test_a_newer_verdict_replaces_an_older_one_for_the_same_model(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks
):
    version = _version(models_root, "tiny-twice", EVERYTHING_IN)
    job = _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)
    SlideDomainAssessment.objects.create(
        slide=slide_with_cells,
        model_version=version,
        job=job,
        verdict="out_of_domain",
        cell_count=5,
        few_cells=True,
    )

    assert slide_domain(slide=slide_with_cells).verdict == "out_of_domain"
    assert slide_auto_acceptable_ids(slide=slide_with_cells) == set()
    assert not Prediction.objects.filter(prediction_auto_acceptable_q()).exists()


def test_an_assessment_is_never_changed(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks
):
    _version(models_root, "tiny-fixed", EVERYTHING_IN)
    _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)
    assessment = SlideDomainAssessment.objects.get()

    assessment.verdict = "out_of_domain"
    with pytest.raises(PermissionError):
        assessment.save()


def _source_version(models_root, name: str, source_review_threshold: float):
    """A model whose card threshold (0.0) would accept everything; its one source has its own."""
    directory = make_tiny_model_dir(
        models_root / name,
        version=name,
        domain=EVERYTHING_IN,
        review_threshold=0.0,
        source_review_threshold=source_review_threshold,
    )
    version = model_version_register(directory=directory)
    services.model_version_activate(actor=None, model_version=version)
    return version


def _acceptable_in_python_and_sql(slide, version) -> tuple[set[int], set[int]]:
    predictions, decision = slide_domain_decision(slide=slide, model_version=version)
    in_python = {p.pk for p, cell in zip(predictions, decision.cells, strict=True) if cell.auto_acceptable}
    in_sql = set(Prediction.objects.filter(prediction_auto_acceptable_q()).values_list("pk", flat=True))
    return in_python, in_sql


@pytest.mark.parametrize("source_threshold", [0.5, REVIEW_EVERYTHING])
def test_each_cell_is_held_to_its_sources_review_threshold_in_python_and_sql(
    models_root, slide_with_cells, lab_staff, django_capture_on_commit_callbacks, source_threshold
):
    # The tiny model's confidences are about 0.31: the card's 0.0 would accept all five cells.
    version = _source_version(models_root, "tiny-source", source_threshold)
    _classify(slide_with_cells, lab_staff, django_capture_on_commit_callbacks)

    predictions = list(Prediction.objects.filter(model_version=version))
    assert len(predictions) == 5 and {p.review_threshold for p in predictions} == {source_threshold}
    assert all(0.0 <= p.confidence < 0.5 for p in predictions)
    assert slide_domain(slide=slide_with_cells).in_domain
    assert _acceptable_in_python_and_sql(slide_with_cells, version) == (set(), set())
    assert slide_auto_acceptable_ids(slide=slide_with_cells) == set()


def test_a_prediction_stored_without_its_own_threshold_is_held_to_its_models(slide_with_cells):
    # Rows written before predictions kept their threshold: the model version's applies.
    version = model_version_make("old-rows", review_threshold=0.9)
    cells = list(slide_with_cells.cell_images.order_by("id"))
    job = inference_job_make(slide_with_cells, version, cells[0].uploaded_by, status="succeeded")
    low = prediction_make(cells[0], version, confidence=0.85, job=job)
    high = prediction_make(cells[1], version, confidence=0.95, job=job)
    slide_domain_assessment_make(slide_with_cells, job)

    assert (low.review_threshold, low.cell_review_threshold) == (None, 0.9)
    assert _acceptable_in_python_and_sql(slide_with_cells, version) == ({high.pk}, {high.pk})
