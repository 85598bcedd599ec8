"""Result exports: every cell of the chosen slides with its prediction, review and reviewer (or why
it has none, or why it is excluded from the differential), as CSV or JSON. Reading only; the views
record each export in the audit trail."""

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Patient, Slide
from cases.selectors import cell_image_visible_queryset, patient_identity, slide_visible_queryset
from classifier.models import PROBABILITY_FIELDS, Prediction, PredictionFailure, SlideDomainAssessment
from core.csv_safety import csv_cell_escape
from review.models import CellExclusion, Counting, SlideSignature, review_verification
from review.selectors import counting_default_target, current_predictions, differential_classes

# Characters that make a spreadsheet treat a cell as a formula (CWE-1236); tab and carriage return
# too, as some spreadsheets strip them before parsing.

COLUMNS = (
    "patient_mrn",
    "patient_name",
    "slide_accession_number",
    "slide_status",
    "slide_collected_at",
    # Counting rules: the slide's target, its analyser WBC count (×10⁹/L) and the white cells verified.
    "slide_target_wbc_count",
    "slide_wbc_count",
    "slide_wbc_counted",
    "cell_image_id",
    "original_filename",
    # Where a cell of a whole field came from: the field, the box (field pixels, top-left corner
    # and size), the locator's score and "located" or "added" (by a pathologist); empty for a
    # cell image uploaded on its own ("uploaded").
    "cell_source",
    "field_image_id",
    "field_image_filename",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "locator_score",
    "model_version",
    "predicted_label",
    *PROBABILITY_FIELDS.values(),
    "confidence",
    "domain_score",
    "cell_in_domain",
    "slide_domain_verdict",
    "final_label",
    "final_label_name",
    # How the final class counts (wbc, per_100_wbc, none), its value in the slide (% of the white
    # cells counted, or per 100 of them) and its absolute count (×10⁹/L, with a WBC count).
    "final_label_counting",
    "final_label_percent",
    "final_label_absolute",
    "review_decision",
    "verification",
    "review_reason",
    "reviewer",
    "reviewed_at",
    "classification_failure",
    "excluded",
    "exclusion_category",
    "exclusion_reason",
    "excluded_by",
    "excluded_at",
    "signature_version",
    "signed_by",
    "signed_at",
    "signature_meaning",
    # Who the signed report names (the record as at signing) and whether it was corrected since.
    "signed_patient_mrn",
    "signed_patient_name",
    "signed_patient_date_of_birth",
    "patient_corrected_after_signing",
)


@dataclass(frozen=True)
class ExportScope:
    """Which slides an export covers; ``describe`` goes into the audit event and the file name."""

    slide: Slide | None = None
    patient: Patient | None = None
    collected_from: date | None = None
    collected_to: date | None = None

    def describe(self) -> dict[str, Any]:
        if self.slide is not None:
            return {"slide_id": self.slide.pk, "accession_number": self.slide.accession_number}
        if self.patient is not None:
            return {"patient_id": self.patient.pk, "mrn": self.patient.mrn}
        return {"collected_from": str(self.collected_from), "collected_to": str(self.collected_to)}

    def file_stem(self) -> str:
        if self.slide is not None:
            return f"slide-{self.slide.accession_number}"
        if self.patient is not None:
            return f"patient-{self.patient.mrn}"
        return f"cells-{self.collected_from}-to-{self.collected_to}"


def _scope_slides(user: AbstractBaseUser, scope: ExportScope) -> QuerySet[Slide]:
    slides = slide_visible_queryset(user)
    if scope.slide is not None:
        return slides.filter(pk=scope.slide.pk)
    if scope.patient is not None:
        return slides.filter(patient=scope.patient)
    start = timezone.make_aware(datetime.combine(scope.collected_from, time.min))
    end = timezone.make_aware(datetime.combine(scope.collected_to, time.max))
    return slides.filter(collected_at__range=(start, end))


def _signatures_by_slide(slide_ids: Iterable[int]) -> dict[int, SlideSignature]:
    """The latest signature of each slide that is signed now (an amended one is reopened)."""
    latest: dict[int, SlideSignature] = {}
    for signature in SlideSignature.objects.filter(slide_id__in=slide_ids, slide__status="signed").order_by(
        "version"
    ):
        latest[signature.slide_id] = signature
    return latest


def _newest_by_cell(rows: QuerySet) -> dict[int, Any]:
    """Each cell's newest row of ``rows`` (ordered by id, so later rows win)."""
    return {row.cell_image_id: row for row in rows.order_by("id")}


def export_rows(*, user: AbstractBaseUser, scope: ExportScope) -> list[dict[str, Any]]:
    """One row per cell image in scope (five queries in all), ordered by slide and cell."""
    slides = _scope_slides(user, scope)
    cells = list(
        cell_image_visible_queryset(user)
        .filter(slide__in=slides)
        .select_related("slide__patient", "field_image")
        .order_by("slide__collected_at", "slide_id", "id")
    )
    predictions = {
        prediction.cell_image_id: prediction
        for prediction in current_predictions(
            Prediction.objects.filter(cell_image__in=[cell.pk for cell in cells])
        ).select_related("model_version")
    }
    cell_ids = [cell.pk for cell in cells]
    exclusions = _newest_by_cell(
        CellExclusion.objects.filter(cell_image__in=cell_ids).select_related("decided_by")
    )
    failures = _newest_by_cell(PredictionFailure.objects.filter(cell_image__in=cell_ids))
    signatures = _signatures_by_slide({cell.slide_id for cell in cells})
    verdicts = _domain_verdicts({cell.slide_id for cell in cells})
    corrected = _last_correction_by_patient({cell.slide.patient_id for cell in cells})
    rows = [
        _row(cell, predictions.get(cell.pk), signatures.get(cell.slide_id), verdicts, corrected)
        | _exclusion_columns(exclusions.get(cell.pk))
        # A failure that a retry has since overcome is history, not the cell's state.
        | (
            {}
            if cell.pk in predictions or cell.pk not in failures
            else {"classification_failure": failures[cell.pk].reason}
        )
        for cell in cells
    ]
    _add_counting_columns(rows, {cell.slide_id: cell.slide for cell in cells})
    return rows


def _add_counting_columns(rows: list[dict[str, Any]], slides: dict[int, Slide]) -> None:
    """Each row's slide counting columns and its final class's share, from the rows themselves
    (every cell of a slide is in the export): the same numbers as the slide's differential."""
    classes = {cell_class.code: cell_class for cell_class in differential_classes()}
    default_target = counting_default_target()
    by_slide: dict[str, Counter] = {}
    for row in rows:
        if row["final_label"] and not row["excluded"]:
            by_slide.setdefault(row["slide_accession_number"], Counter())[row["final_label"]] += 1
    for row in rows:
        slide = slides[row.pop("_slide_id")]
        counts = by_slide.get(slide.accession_number, Counter())
        counted = sum(
            n for code, n in counts.items() if code in classes and classes[code].counting == Counting.WBC
        )
        row |= {
            "slide_target_wbc_count": slide.target_wbc_count or default_target,
            "slide_wbc_count": slide.wbc_count,
            "slide_wbc_counted": counted,
        }
        cell_class = classes.get(row["final_label"] or "")
        if cell_class is None:
            continue
        row |= {"final_label_name": cell_class.name, "final_label_counting": cell_class.counting}
        if cell_class.counting != Counting.NOT_REPORTED and counted:
            share = Decimal(counts[cell_class.code]) / counted
            row["final_label_percent"] = float((100 * share).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
            if slide.wbc_count is not None:
                row["final_label_absolute"] = float(
                    (slide.wbc_count * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                )


def _last_correction_by_patient(patient_ids: Iterable[int]) -> dict[int, datetime]:
    """When each patient's identity was last corrected (a correction happens only once signed)."""
    events = AuditEvent.objects.filter(
        action=AuditAction.PATIENT_CORRECTED,
        object_type=Patient._meta.label_lower,
        object_id__in=[str(pk) for pk in patient_ids],
    ).values_list("object_id", "created_at")
    return {int(object_id): created_at for object_id, created_at in events.order_by("id")}


def _exclusion_columns(exclusion: CellExclusion | None) -> dict[str, Any]:
    if exclusion is None or not exclusion.excluded:
        return {"excluded": False}
    return {
        "excluded": True,
        "exclusion_category": exclusion.category,
        "exclusion_reason": exclusion.reason,
        "excluded_by": exclusion.decided_by.username,
        "excluded_at": exclusion.created_at.isoformat(),
    }


def _domain_verdicts(slide_ids: Iterable[int]) -> dict[tuple[int, int], str]:
    """The newest domain verdict per (slide, model version)."""
    assessments = SlideDomainAssessment.objects.filter(slide__in=list(slide_ids)).order_by("id")
    return {(a.slide_id, a.model_version_id): a.verdict for a in assessments}


def _row(
    cell: CellImage,
    prediction: Prediction | None,
    signature: SlideSignature | None,
    verdicts: dict[tuple[int, int], str],
    corrected: dict[int, datetime],
) -> dict[str, Any]:
    slide, patient = cell.slide, cell.slide.patient
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row |= {
        "patient_mrn": patient.mrn,
        "patient_name": f"{patient.family_name}, {patient.given_name}",
        "slide_accession_number": slide.accession_number,
        "slide_status": slide.status,
        "slide_collected_at": slide.collected_at.isoformat(),
        "cell_image_id": cell.pk,
        "original_filename": cell.original_filename,
        "_slide_id": cell.slide_id,
        "cell_source": cell.source,
    }
    if cell.field_image is not None:
        row |= {
            "field_image_id": cell.field_image_id,
            "field_image_filename": cell.field_image.original_filename,
            "box_x": cell.box_x,
            "box_y": cell.box_y,
            "box_w": cell.box_w,
            "box_h": cell.box_h,
            "locator_score": cell.locator_score,
        }
    if prediction is not None:
        row |= {
            "model_version": prediction.model_version.name,
            "predicted_label": prediction.label,
            **{name: getattr(prediction, name) for name in PROBABILITY_FIELDS.values()},
            "confidence": prediction.confidence,
            "domain_score": prediction.domain_score,
            "cell_in_domain": prediction.in_domain,
            "slide_domain_verdict": verdicts.get((cell.slide_id, prediction.model_version_id), "unknown"),
            "final_label": prediction.review_label,
            "review_decision": prediction.review_decision,
            # "individual" or "bulk at threshold 0.972": a person looked at the cell, or not.
            "verification": review_verification(
                bulk=prediction.review_bulk, bulk_threshold=prediction.review_bulk_threshold
            )
            if prediction.review_id
            else None,
            "review_reason": prediction.review_reason,
            "reviewer": prediction.reviewer_username,
            "reviewed_at": prediction.review_created_at.isoformat() if prediction.review_created_at else None,
        }
    if signature is not None:
        row |= {
            "signature_version": signature.version,
            "signed_by": signature.signer_full_name,
            "signed_at": signature.signed_at.isoformat(),
            "signature_meaning": signature.meaning,
        }
        identity = signature.patient_identity or patient_identity(patient)
        row |= {
            "signed_patient_mrn": identity["mrn"],
            "signed_patient_name": f"{identity['family_name']}, {identity['given_name']}",
            "signed_patient_date_of_birth": identity["date_of_birth"],
            "patient_corrected_after_signing": corrected.get(patient.pk, signature.signed_at)
            > signature.signed_at,
        }
    return row


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([csv_cell_escape(row[column]) for column in COLUMNS])
    return buffer.getvalue()


def rows_to_json(rows: list[dict[str, Any]], *, scope: ExportScope) -> str:
    document = {
        "exported_at": timezone.now().isoformat(),
        "scope": scope.describe(),
        "cell_count": len(rows),
        "cells": rows,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, indent=2)
