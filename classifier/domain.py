"""The domain gate in the app: which slides and cells lie inside the model's validated domain.

The rule itself is ``ml.domain.decide_auto_accept`` (through the adapter), the same function the
evaluation reports with. A slide's verdict is decided when one of its jobs finishes, over every
cell that model version classified on the slide, and stored as an append-only assessment; a model
without domain statistics makes every slide *domain unknown*, which is never auto-acceptable.
"""

from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThan

from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import Slide
from classifier.adapter import (
    MIN_SLIDE_CELLS,
    REVIEW_EVERYTHING,
    CellEvidence,
    DomainThresholds,
    SlideDecision,
    decide_auto_accept,
    is_confident,
)
from classifier.models import DomainVerdict, InferenceJob, ModelVersion, Prediction, SlideDomainAssessment


def threshold_validated(review_threshold: float) -> bool:
    """Whether a review threshold can be reached at all (REVIEW_EVERYTHING: every cell is reviewed)."""
    return review_threshold < REVIEW_EVERYTHING


def confidence_reaches(confidence: float, review_threshold: float) -> bool:
    """The one comparison of a confidence with its review threshold (``ml.domain.is_confident``)."""
    return is_confident(confidence, review_threshold)


def model_version_domain_thresholds(model_version: ModelVersion) -> DomainThresholds | None:
    if not model_version.has_domain_statistics:
        return None
    return DomainThresholds(
        cell=model_version.domain_cell_threshold, slide=model_version.domain_slide_threshold
    )


def _slide_predictions(slide: Slide, model_version: ModelVersion) -> QuerySet[Prediction]:
    return Prediction.objects.filter(cell_image__slide=slide, model_version=model_version).order_by("id")


def slide_domain_decision(
    *, slide: Slide, model_version: ModelVersion, predictions: list[Prediction] | None = None
) -> tuple[list[Prediction], SlideDecision]:
    """The slide's cells (predicted by ``model_version``) and the decision for each of them."""
    if predictions is None:
        predictions = list(_slide_predictions(slide, model_version))
    evidence = [CellEvidence(p.confidence, p.domain_score, p.review_threshold) for p in predictions]
    decision = decide_auto_accept(
        evidence,
        review_threshold=model_version.review_threshold,
        thresholds=model_version_domain_thresholds(model_version),
    )
    return predictions, decision


def slide_domain_assess(*, job: InferenceJob, actor_username: str) -> SlideDomainAssessment:
    """Worker side, when ``job`` finishes: the slide's verdict for the job's model version, audited."""
    model_version = job.model_version
    _, decision = slide_domain_decision(slide=job.slide, model_version=model_version)
    assessment = SlideDomainAssessment.objects.create(
        slide=job.slide,
        model_version=model_version,
        job=job,
        verdict=decision.verdict.value,
        statistic=decision.statistic,
        threshold=model_version.domain_slide_threshold,
        cell_count=decision.cell_count,
        few_cells=decision.few_cells,
    )
    audit_event_record(
        action=AuditAction.SLIDE_DOMAIN_ASSESSED,
        actor=None,
        actor_username=actor_username,
        target=job.slide,
        after={
            "verdict": assessment.verdict,
            "statistic": assessment.statistic,
            "threshold": assessment.threshold,
            "cells": assessment.cell_count,
            "few_cells": assessment.few_cells,
            "model_version": model_version.name,
            "job": job.pk,
        },
    )
    return assessment


@dataclass(frozen=True)
class SlideDomain:
    """What the pages say about a slide's domain (``assessment`` None: not classified yet)."""

    assessment: SlideDomainAssessment | None

    @property
    def verdict(self) -> str:
        return self.assessment.verdict if self.assessment else DomainVerdict.UNKNOWN

    @property
    def in_domain(self) -> bool:
        return self.verdict == DomainVerdict.IN_DOMAIN

    @property
    def reliable_from(self) -> int:
        """Fewer cells than this make the verdict rest on what there is."""
        return MIN_SLIDE_CELLS

    @property
    def needs_attention(self) -> bool:
        """Classified, and not in domain: the banner, no bulk confirmation, acknowledgement at sign-off."""
        return self.assessment is not None and not self.in_domain


def slide_domain(*, slide: Slide, model_version: ModelVersion | None = None) -> SlideDomain:
    """The newest assessment of the slide (for ``model_version`` when given)."""
    assessments = SlideDomainAssessment.objects.filter(slide=slide).select_related("model_version")
    if model_version is not None:
        assessments = assessments.filter(model_version=model_version)
    return SlideDomain(assessments.order_by("-id").first())


def slide_in_domain_exists(slide_ref: str, model_version_ref: str) -> Exists:
    """SQL: the newest assessment of the referenced slide for the referenced model version is in domain."""
    # Inside the assessment subquery: OuterRef here is the assessment row.
    newer = SlideDomainAssessment.objects.filter(
        slide=OuterRef("slide"), model_version=OuterRef("model_version"), pk__gt=OuterRef("pk")
    )
    return Exists(
        SlideDomainAssessment.objects.filter(
            slide=OuterRef(slide_ref),
            model_version=OuterRef(model_version_ref),
            verdict=DomainVerdict.IN_DOMAIN,
        ).filter(~Exists(newer))
    )


def prediction_confident_q() -> Q:
    """SQL: the confidence reaches the cell's review threshold (its own, else its model's), and that
    threshold is not REVIEW_EVERYTHING (``ml.domain.is_confident``)."""
    threshold = Coalesce(F("review_threshold"), F("model_version__review_threshold"))
    return Q(LessThan(threshold, Value(REVIEW_EVERYTHING))) & Q(
        GreaterThanOrEqual(F("confidence"), threshold)
    )


def prediction_auto_acceptable_q() -> Q:
    """The SQL form of ``decide_auto_accept`` for stored predictions: confident, the cell in domain
    and its slide's newest verdict (for the prediction's model version) in domain."""
    return (
        prediction_confident_q()
        & Q(in_domain=True)
        & Q(slide_in_domain_exists("cell_image__slide", "model_version"))
    )


def slide_auto_acceptable_ids(*, slide: Slide) -> set[int]:
    """The slide's predictions that may be accepted without review: the decision function accepts
    them and their model version's stored verdict for the slide is in domain."""
    by_version: dict[int, list[Prediction]] = {}
    versions: dict[int, ModelVersion] = {}
    for prediction in (
        Prediction.objects.filter(cell_image__slide=slide).select_related("model_version").order_by("id")
    ):
        by_version.setdefault(prediction.model_version_id, []).append(prediction)
        versions[prediction.model_version_id] = prediction.model_version
    accepted: set[int] = set()
    for version_id, predictions in by_version.items():
        version = versions[version_id]
        if not slide_domain(slide=slide, model_version=version).in_domain:
            continue
        _, decision = slide_domain_decision(slide=slide, model_version=version, predictions=predictions)
        accepted |= {
            p.pk for p, cell in zip(predictions, decision.cells, strict=True) if cell.auto_acceptable
        }
    return accepted
