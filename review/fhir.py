"""A signed slide's verified differential as a FHIR R4 (4.0.1) Bundle (plain JSON-ready dicts).

DiagnosticReport, Patient, Specimen, the signer as Practitioner, one Observation per reported class
(LOINC, per 100 leukocytes: the WBC differential's classes as %, per-100-WBC classes such as
nucleated red cells as their own ratio), one per absolute count and one for the WBC count when the
lab entered it, and a Provenance carrying the electronic signature. Only
R4 elements are used; the Bundle claims the R4 base profile in ``meta.profile`` and is served as
``application/fhir+json; fhirVersion=4.0`` (R4's version parameter), so a reader need not guess.
"""

import uuid
from typing import Any

from django.conf import settings

from cases.models import Slide
from cases.selectors import patient_corrections, patient_identity
from classifier.models import CellClass
from review.models import Counting, SlideSignature
from review.selectors import reference_intervals

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
FHIR_VERSION = "4.0.1"
FHIR_MEDIA_TYPE = "application/fhir+json; fhirVersion=4.0"
BUNDLE_PROFILE = f"http://hl7.org/fhir/StructureDefinition/Bundle|{FHIR_VERSION}"

# The codes of signatures from before the lab's class list (their signed differential carries no
# codes): they keep the ones they were first exported with. Newer signatures carry their classes'
# codes as configured when signed (review.DifferentialClass).
LEGACY_LOINC_CODES: dict[str, tuple[str, str]] = {
    CellClass.NEUTROPHIL: ("770-8", "Neutrophils/100 leukocytes in Blood by Automated count"),
    CellClass.LYMPHOCYTE: ("736-9", "Lymphocytes/100 leukocytes in Blood by Automated count"),
    CellClass.MONOCYTE: ("5905-5", "Monocytes/100 leukocytes in Blood by Automated count"),
    CellClass.EOSINOPHIL: ("713-8", "Eosinophils/100 leukocytes in Blood by Automated count"),
}
FLAG_CODES = {"low": ("L", "Low"), "high": ("H", "High")}
WBC_COUNT_CODE = ("6690-2", "Leukocytes [#/volume] in Blood by Automated count")
PERCENT = {"unit": "/100 leukocytes", "system": UCUM, "code": "%"}
PER_100_WBC = {"unit": "/100 WBC", "system": UCUM, "code": "/100{WBCs}"}
PER_LITRE = {"unit": "10^9/L", "system": UCUM, "code": "10*9/L"}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _reference(url: str) -> dict[str, str]:
    return {"reference": url}


def signed_identity(signature: SlideSignature) -> dict[str, Any]:
    """Who the report was signed for: the snapshot taken at signing (the record as it is now for
    signatures from before snapshots were kept)."""
    return signature.patient_identity or patient_identity(signature.slide.patient)


def _patient(signature: SlideSignature) -> dict[str, Any]:
    identity = signed_identity(signature)
    return {
        "resourceType": "Patient",
        "identifier": [{"system": settings.HEMATOVISION_FHIR_MRN_SYSTEM, "value": identity["mrn"]}],
        "name": [{"family": identity["family_name"], "given": [identity["given_name"]]}],
        "gender": identity["sex"],
        "birthDate": identity["date_of_birth"],
    }


def _specimen(slide: Slide, patient_url: str) -> dict[str, Any]:
    return {
        "resourceType": "Specimen",
        "accessionIdentifier": {
            "system": settings.HEMATOVISION_FHIR_ACCESSION_SYSTEM,
            "value": slide.accession_number,
        },
        "type": {"coding": [{"system": SNOMED, "code": "119297000", "display": "Blood specimen"}]},
        "subject": _reference(patient_url),
        "collection": {"collectedDateTime": slide.collected_at.isoformat()},
        "note": [{"text": f"Peripheral blood smear, {slide.get_stain_display()} stain"}],
    }


def _practitioner(signature: SlideSignature) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "identifier": [
            {"system": settings.HEMATOVISION_FHIR_USER_SYSTEM, "value": signature.signer.username}
        ],
        "name": [{"text": signature.signer_full_name}],
    }


def _code(coding: dict[str, str] | None, text: str) -> dict[str, Any]:
    """A LOINC coding where the class has one; else the name alone (never an invented code)."""
    if not coding:
        return {"text": text}
    return {
        "coding": [{"system": LOINC, "code": coding["code"], "display": coding["display"]}],
        "text": coding["display"],
    }


def _signed_classes(signature: SlideSignature) -> list[tuple[str, dict[str, Any]]]:
    """The signed classes, each with what a signature from before the class list lacks (every
    class then counted towards the WBC differential, with the codes and intervals of that time)."""
    intervals = reference_intervals()
    classes = []
    for label, result in signature.differential["classes"].items():
        if "counting" not in result:
            code, display = LEGACY_LOINC_CODES[label]
            low, high = intervals.get(label, (None, None))
            result = {
                **result,
                "name": CellClass(label).label,
                "counting": Counting.WBC,
                "loinc": {"code": code, "display": display},
                "reference_low": low,
                "reference_high": high,
            }
        classes.append((label, result))
    return classes


def _base_observation(
    signature: SlideSignature, urls: dict[str, str], code: dict[str, Any]
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}],
        "code": code,
        "subject": _reference(urls["patient"]),
        "specimen": _reference(urls["specimen"]),
        "effectiveDateTime": signature.slide.collected_at.isoformat(),
        "issued": signature.signed_at.isoformat(),
        "performer": [_reference(urls["practitioner"])],
    }


def _observation(
    *, label: str, result: dict[str, Any], urls: dict[str, str], signature: SlideSignature
) -> dict[str, Any]:
    """A class's share of the white cells counted: % for the WBC differential's classes, per 100
    WBC for the others that are reported (nucleated red cells, smudge cells)."""
    per_100 = result["counting"] == Counting.PER_100_WBC
    unit = PER_100_WBC if per_100 else PERCENT
    total = signature.differential["total"]
    counted = (
        f"{result['count']} per {total} white cells counted (not part of the WBC total)"
        if per_100
        else f"{result['count']} of {total} cells counted"
    )
    observation = _base_observation(
        signature, urls, _code(result.get("loinc"), f"{result['name']}/100 leukocytes in Blood")
    )
    observation["valueQuantity"] = {"value": result["percent"], **unit}
    observation["note"] = [
        {"text": counted},
        *(
            [{"text": verification_note}]
            if (verification_note := _verification_note(signature, label))
            else []
        ),
        *([{"text": domain_note}] if (domain_note := _domain_note(signature)) else []),
    ]
    low, high = result.get("reference_low"), result.get("reference_high")
    if low is not None or high is not None:
        observation["referenceRange"] = [
            {
                bound: {"value": value, **unit}
                for bound, value in (("low", low), ("high", high))
                if value is not None
            }
        ]
    if result.get("flag") in FLAG_CODES:
        flag_code, flag_display = FLAG_CODES[result["flag"]]
        observation["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": flag_code, "display": flag_display}]}
        ]
    return observation


def _absolute_observation(
    *, result: dict[str, Any], urls: dict[str, str], signature: SlideSignature
) -> dict[str, Any]:
    """A class's absolute count: its share of the white cells counted times the entered WBC count."""
    code = _code(result.get("absolute_loinc"), f"{result['name']} [#/volume] in Blood")
    observation = _base_observation(signature, urls, code)
    observation["valueQuantity"] = {"value": result["absolute"], **PER_LITRE}
    wbc = signature.differential["wbc_count"]["value"]
    total = signature.differential["total"]
    observation["note"] = [
        {"text": f"Calculated: {result['count']} of {total} white cells counted × WBC count {wbc:g} ×10^9/L"}
    ]
    return observation


def _wbc_count_observation(*, urls: dict[str, str], signature: SlideSignature) -> dict[str, Any]:
    code, display = WBC_COUNT_CODE
    observation = _base_observation(signature, urls, _code({"code": code, "display": display}, display))
    observation["valueQuantity"] = {"value": signature.differential["wbc_count"]["value"], **PER_LITRE}
    observation["note"] = [{"text": "Entered by the laboratory from its analyser for this specimen"}]
    return observation


def _observations(signature: SlideSignature, urls: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The report's Observations: the WBC count (when entered), each reported class, and each
    class's absolute count (when the WBC count was entered)."""
    observations = []
    if signature.differential.get("wbc_count"):
        observations.append((_urn(), _wbc_count_observation(urls=urls, signature=signature)))
    for label, result in _signed_classes(signature):
        if result["counting"] == Counting.NOT_REPORTED:
            continue
        observations.append(
            (_urn(), _observation(label=label, result=result, urls=urls, signature=signature))
        )
        if result.get("absolute") is not None:
            observations.append(
                (_urn(), _absolute_observation(result=result, urls=urls, signature=signature))
            )
    return observations


def _diagnostic_report(
    signature: SlideSignature, urls: dict[str, str], observation_urls: list[str]
) -> dict[str, Any]:
    slide = signature.slide
    return {
        "resourceType": "DiagnosticReport",
        "identifier": [
            {
                "system": settings.HEMATOVISION_FHIR_ACCESSION_SYSTEM,
                "value": f"{slide.accession_number}-v{signature.version}",
            }
        ],
        # A report re-signed after an amendment replaces an earlier final one.
        "status": "final" if signature.version == 1 else "amended",
        "category": [{"coding": [{"system": DIAGNOSTIC_SERVICE, "code": "HM", "display": "Hematology"}]}],
        "code": {"text": "White blood cell differential, AI-assisted, pathologist verified"},
        "subject": _reference(urls["patient"]),
        "specimen": [_reference(urls["specimen"])],
        "effectiveDateTime": slide.collected_at.isoformat(),
        "issued": signature.signed_at.isoformat(),
        "resultsInterpreter": [_reference(urls["practitioner"])],
        "result": [_reference(url) for url in observation_urls],
        "conclusion": _conclusion(signature),
    }


def _domain_note(signature: SlideSignature) -> str:
    """What the report says when the slide was outside the model's validated domain ("" inside it).
    Signatures from before the domain gate carry no domain and say nothing."""
    domain = signature.differential.get("domain")
    if not domain or domain["verdict"] == "in_domain":
        return ""
    what = (
        "outside the validated domain of" if domain["verdict"] == "out_of_domain" else "of unknown domain for"
    )
    return (
        f"The slide's cells were {what} the classification model {domain['model_version']}; every cell "
        f"was reviewed individually by the signing pathologist, who acknowledged it."
    )


def _thresholds_text(verification: dict) -> str:
    thresholds = verification.get("bulk_thresholds") or []
    return f" at threshold {', '.join(f'{value:g}' for value in thresholds)}" if thresholds else ""


def _verification_note(signature: SlideSignature, label: str | None = None) -> str:
    """How the counted cells (of one class, or all) were verified: individually by the pathologist,
    or confirmed in bulk at the model's review threshold. Signatures from before it was kept
    carry no verification and say nothing."""
    verification = signature.differential.get("verification")
    if not verification:
        return ""
    counts = verification["classes"].get(label, {}) if label else verification
    individual, bulk = counts.get("individual", 0), counts.get("bulk", 0)
    if not individual and not bulk:
        return ""
    text = f"Verification: {individual} cell{'s' if individual != 1 else ''} verified individually"
    if bulk:
        text += f", {bulk} confirmed in bulk{_thresholds_text(verification)} without being viewed one by one"
    return f"{text}."


def _conclusion(signature: SlideSignature) -> str:
    """The pathologist's interpretation first (when there is one), then how the result was made."""
    text = f"{signature.comment} " if signature.comment else ""
    text += f"{signature.meaning.capitalize()} by {signature.signer_full_name}. "
    text += f"{signature.differential['total']} cells counted"
    # Signatures from before exclusions existed have no such key.
    excluded = signature.differential.get("excluded", 0)
    if excluded:
        text += f"; {excluded} excluded from the differential (artefact, smudge cell or unreadable image)"
    text += "."
    target = signature.differential.get("target")
    if target and not target["reached"]:
        text += (
            f" Below the target count of {target['count']} white cells"
            f"{', acknowledged by the signer' if target.get('acknowledged') else ''}."
        )
    not_reported = [
        f"{result['name'].lower()} ({result['count']})"
        for result in signature.differential["classes"].values()
        if result.get("counting") == Counting.NOT_REPORTED and result["count"]
    ]
    if not_reported:
        text += f" Also seen, not reported: {', '.join(not_reported)}."
    verification_note = _verification_note(signature)
    if verification_note:
        text += f" {verification_note}"
    domain_note = _domain_note(signature)
    if domain_note:
        text += f" {domain_note}"
    return text + consult_note(signature) + correction_note(signature)


def consult_note(signature: SlideSignature) -> str:
    """The consults of the slide as signed: the second opinion, and its agreement with the review."""
    notes = []
    for consult in signature.differential.get("consults", []):
        agreement = consult["agreement"]
        text = f" Consult {consult['id']} ({consult['status']}) with {consult['consultant']}"
        if agreement["compared"]:
            text += f": {agreement['agreed']} of {agreement['compared']} cells agree with the primary review"
            if agreement["kappa"] is not None:
                text += f" (Cohen's kappa {agreement['kappa']:.2f})"
        text += f"; opinion: {consult['opinion']}" if consult["opinion"] else "; no opinion at signing"
        notes.append(text.rstrip(".") + ".")
    return "".join(notes)


def correction_note(signature: SlideSignature) -> str:
    """The corrections of the patient record made after this signature, for the report to name."""
    corrections = patient_corrections(patient=signature.slide.patient, since=signature.signed_at)
    return "".join(
        f" The patient record was corrected after signing ({event.created_at.date().isoformat()}, "
        f"{event.actor_username}: {event.reason}); this report names the patient as signed for."
        for event in corrections
    )


def _provenance(signature: SlideSignature, urls: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [_reference(urls["report"])],
        "recorded": signature.signed_at.isoformat(),
        "agent": [{"who": _reference(urls["practitioner"])}],
        "signature": [
            {
                "type": [
                    {
                        "system": SIGNATURE_TYPE,
                        "code": "1.2.840.10065.1.12.1.5",
                        "display": "Verification Signature",
                    }
                ],
                "when": signature.signed_at.isoformat(),
                "who": _reference(urls["practitioner"]),
            }
        ],
    }


def slide_fhir_bundle(*, signature: SlideSignature) -> dict[str, Any]:
    """The Bundle (type collection) of one signature of a slide."""
    slide = signature.slide
    urls = {name: _urn() for name in ("patient", "specimen", "practitioner", "report")}
    observations = _observations(signature, urls)
    resources = [
        (urls["report"], _diagnostic_report(signature, urls, [url for url, _ in observations])),
        (urls["patient"], _patient(signature)),
        (urls["specimen"], _specimen(slide, urls["patient"])),
        (urls["practitioner"], _practitioner(signature)),
        *observations,
        (_urn(), _provenance(signature, urls)),
    ]
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [BUNDLE_PROFILE]},
        "type": "collection",
        "timestamp": signature.signed_at.isoformat(),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources],
    }
