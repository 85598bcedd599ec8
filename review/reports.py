"""What a slide's printable report says (a read): one signature of the slide, the patient as signed
for, the specimen, the differential with reference intervals and flags, the change since the
patient's previous signed result, the pathologist's comment, the signatures and amendments, and the
model and domain behind it. The report page and the PDF both render a ``SlideReport``.

The differential rows are whatever the signed differential holds, in its order: a class added to
the lab's list appears on the reports signed after it.
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.base_user import AbstractBaseUser

from audit.models import AuditEvent
from cases.models import Sex, Slide
from cases.selectors import patient_corrections, patient_identity
from review.history import (
    ResultCell,
    ResultPoint,
    classes_in_order,
    delta_points,
    patient_signed_points,
    result_history,
    signature_point,
    signature_reopened,
)
from review.models import SlideSignature
from review.selectors import reference_intervals, signature_visible_queryset, slide_differential

FLAG_LETTERS = {"high": "H", "low": "L"}


@dataclass(frozen=True)
class ReportRow:
    label: str
    name: str
    count: int
    percent: float
    reference_low: float | None
    reference_high: float | None
    flag: str  # "H", "L" or ""
    previous_percent: float | None
    delta: float | None
    delta_flagged: bool

    @property
    def reference_text(self) -> str:
        if self.reference_low is None and self.reference_high is None:
            return ""
        low = "" if self.reference_low is None else f"{self.reference_low:g}"
        high = "" if self.reference_high is None else f"{self.reference_high:g}"
        return f"{low}–{high}"

    @property
    def delta_text(self) -> str:
        return "" if self.delta is None else f"{self.delta:+.1f}"


@dataclass(frozen=True)
class PatientLines:
    mrn: str
    family_name: str
    given_name: str
    date_of_birth: str
    sex: str


@dataclass(frozen=True)
class SlideReport:
    slide: Slide
    signature: SlideSignature
    signatures: list[SlideSignature]  # every version of the slide, newest first
    patient: PatientLines
    corrections: list[AuditEvent]
    rows: list[ReportRow]
    total: int
    excluded: int
    reference_as_signed: bool
    verification_text: str
    domain_text: str
    domain_attention: bool
    model_versions: list[str]
    comment: str
    consults: list[str]  # the second opinions as signed, one line each
    previous: Slide | None
    delta_points: int

    @property
    def status_text(self) -> str:
        newer = [s for s in self.signatures if s.version > self.signature.version]
        if newer:
            return f"Superseded by version {newer[0].version}"
        if signature_reopened(self.signature):
            return "Reopened for amendment: this version no longer stands until the slide is signed again"
        if self.signature.version > 1:
            return f"Amended (version {self.signature.version})"
        return "Final"


def report_signature(
    *, user: AbstractBaseUser, slide: Slide, version: int | None = None
) -> SlideSignature | None:
    """The signature a report prints: the given version, else the newest one; None if there is none."""
    signatures = signature_visible_queryset(user).filter(slide=slide).order_by("-version")
    if version is not None:
        signatures = signatures.filter(version=version)
    return signatures.select_related("slide__patient", "signer").first()


def slide_report(*, user: AbstractBaseUser, signature: SlideSignature) -> SlideReport:
    slide = signature.slide
    differential = signature.differential
    previous = _previous_point(user=user, slide=slide)
    cells = _delta_cells(previous=previous, signature=signature)
    signatures = list(
        signature_visible_queryset(user)
        .filter(slide=slide)
        .select_related("amendment__amended_by")
        .order_by("-version")
    )
    domain = differential.get("domain")
    return SlideReport(
        slide=slide,
        signature=signature,
        signatures=signatures,
        patient=_patient_lines(signature),
        corrections=patient_corrections(patient=slide.patient, since=signature.signed_at),
        rows=_rows(signature, cells),
        total=differential.get("total", 0),
        excluded=differential.get("excluded", 0),
        reference_as_signed="reference_intervals" in differential,
        verification_text=_verification_text(differential.get("verification")),
        domain_text=_domain_text(domain),
        domain_attention=bool(domain) and domain.get("verdict") != "in_domain",
        model_versions=_model_versions(differential),
        comment=signature.comment or "",
        consults=_consult_lines(differential.get("consults") or []),
        previous=previous.slide if previous else None,
        delta_points=delta_points(),
    )


def _previous_point(*, user: AbstractBaseUser, slide: Slide) -> ResultPoint | None:
    earlier = patient_signed_points(user=user, patient=slide.patient, before=slide)
    return earlier[-1] if earlier else None


def _delta_cells(
    *, previous: ResultPoint | None, signature: SlideSignature
) -> dict[str, tuple[ResultCell, float | None]]:
    """Per class: the change since the previous signed result, and that result's percentage."""
    if previous is None:
        return {}
    history = result_history(points=[previous, signature_point(signature)], chart=False)
    current = history.rows[-1]
    return {
        column.label: (cell, previous.percents.get(column.label))
        for column, cell in zip(history.columns, current.cells, strict=True)
    }


def _rows(signature: SlideSignature, cells: dict[str, tuple[ResultCell, float | None]]) -> list[ReportRow]:
    differential = signature.differential
    intervals = differential.get("reference_intervals")
    if intervals is None:  # signed before the intervals were kept with the signature
        intervals = {label: list(interval) for label, interval in reference_intervals().items()}
    names = {row.label: row.name for row in slide_differential(slide=signature.slide).rows}
    classes = differential.get("classes", {})
    rows = []
    for label in classes_in_order(list(classes), list(names)):
        result = classes[label]
        low, high = intervals.get(label, (None, None))
        cell, previous_percent = cells.get(label, (None, None))
        rows.append(
            ReportRow(
                label=label,
                name=names.get(label) or label.replace("_", " ").capitalize(),
                count=result.get("count", 0),
                percent=result.get("percent", 0.0),
                reference_low=low,
                reference_high=high,
                flag=FLAG_LETTERS.get(result.get("flag", ""), ""),
                previous_percent=previous_percent,
                delta=cell.delta if cell else None,
                delta_flagged=bool(cell and cell.delta_flagged),
            )
        )
    return rows


def _patient_lines(signature: SlideSignature) -> PatientLines:
    """The patient as signed for (the record as it is now for signatures from before that was kept)."""
    identity = signature.patient_identity or patient_identity(signature.slide.patient)
    born = identity.get("date_of_birth", "")
    sex = identity.get("sex", "")
    return PatientLines(
        mrn=identity.get("mrn", ""),
        family_name=identity.get("family_name", ""),
        given_name=identity.get("given_name", ""),
        date_of_birth=born.isoformat() if isinstance(born, date) else str(born),
        sex=Sex(sex).label if sex in Sex.values else str(sex),
    )


def _verification_text(verification: dict | None) -> str:
    if not verification:
        return ""
    individual, bulk = verification.get("individual", 0), verification.get("bulk", 0)
    text = f"{individual} cell{'s' if individual != 1 else ''} verified individually"
    if bulk:
        thresholds = ", ".join(f"{value:g}" for value in verification.get("bulk_thresholds") or [])
        at = f" at review threshold {thresholds}" if thresholds else ""
        text += f"; {bulk} confirmed in bulk{at} without being viewed one by one"
    return text + "."


def _domain_text(domain: dict | None) -> str:
    if not domain:
        return "Not recorded (signed before the domain gate)."
    model = domain.get("model_version") or "the model"
    verdict = domain.get("verdict")
    if verdict == "in_domain":
        return f"Inside the validated domain of {model} ({domain.get('cells', 0)} cells assessed)."
    what = "Outside the validated domain of" if verdict == "out_of_domain" else "Domain unknown for"
    acknowledged = (
        " Every cell was reviewed individually; the signer acknowledged it."
        if domain.get("acknowledged")
        else ""
    )
    return f"{what} {model}: the model's confidences do not hold for this slide.{acknowledged}"


def _model_versions(differential: dict) -> list[str]:
    names = differential.get("model_versions")
    if names:
        return list(names)
    domain = differential.get("domain") or {}
    return [domain["model_version"]] if domain.get("model_version") else []


def _consult_lines(consults: list[dict]) -> list[str]:
    """The consults the signature kept (``review.consult_selectors.slide_consults_summary``), in
    words: who gave the second opinion, its status, the agreement and the opinion."""
    lines = []
    for consult in consults:
        agreement = consult.get("agreement") or {}
        line = f"Consult {consult.get('id')} ({consult.get('status')}), {consult.get('consultant')}"
        if consult.get("question"):
            line += f", asked by {consult.get('requested_by')}: “{consult['question']}”"
        if agreement.get("compared"):
            line += f"; agreement {agreement.get('agreed')} of {agreement['compared']} cells"
            if agreement.get("kappa") is not None:
                line += f", Cohen's κ {agreement['kappa']:.2f}"
        line += f"; opinion: “{consult['opinion']}”" if consult.get("opinion") else "; no opinion at signing"
        lines.append(line + ".")
    return lines
