"""What the review screen's script reads: cells, reviews and exclusions as JSON-ready dicts."""

from collections.abc import Callable
from datetime import datetime

from django.urls import reverse

from classifier.confidence import confidence_percent, threshold_percent
from classifier.domain import threshold_validated
from classifier.models import CellClass, Prediction
from review.models import CellExclusion, DifferentialClass, review_verification

# The model's four classes answer to their initial too, besides the key the class list gives them.
MODEL_CLASS_INITIALS = {
    CellClass.EOSINOPHIL: "e",
    CellClass.LYMPHOCYTE: "l",
    CellClass.MONOCYTE: "m",
    CellClass.NEUTROPHIL: "n",
}


def class_json(cell_class: DifferentialClass) -> dict:
    """A class the review screen offers: its keys (shortcut, and a model class's initial)."""
    keys = [key for key in (cell_class.shortcut, MODEL_CLASS_INITIALS.get(cell_class.code, "")) if key]
    return {
        "value": cell_class.code,
        "name": cell_class.name,
        "keys": keys,
        "counting": cell_class.counting,
        "model": cell_class.is_model_class,
    }


# How long a flagged cell is on screen before Enter, Space or C may confirm it (review.js).
FLAGGED_CELL_MIN_MS = 700


def review_json(
    review_label: str,
    decision: str,
    reason: str,
    reviewer: str,
    created_at: datetime,
    *,
    label_name: str,
    bulk: bool = False,
    bulk_threshold: float | None = None,
    review_id: int | None = None,
) -> dict:
    return {
        "id": review_id,
        "label": review_label,
        "label_name": label_name,
        "decision": decision,
        "reason": reason,
        "reviewer": reviewer,
        "at": created_at.isoformat(),
        "bulk": bulk,
        "verification": review_verification(bulk=bulk, bulk_threshold=bulk_threshold),
    }


def exclusion_json(exclusion: CellExclusion) -> dict:
    return {
        "excluded": exclusion.excluded,
        "category": exclusion.category,
        "category_name": exclusion.get_category_display(),
        "reason": exclusion.reason,
        "by": exclusion.decided_by.username,
        "at": exclusion.created_at.isoformat(),
    }


def url_maker(name: str) -> Callable[[int], str]:
    """``reverse(name, args=[pk])`` resolved once: a 100-cell review screen needs 600 cell URLs, and
    reversing each one took a quarter of the page's time."""
    marker = "2147483647"
    head, tail = reverse(name, args=[int(marker)]).rsplit(marker, 1)
    return lambda pk: f"{head}{int(pk)}{tail}"


CELL_URLS = {
    "image_url": ("cases:cell_image_file", "cell_image_id"),
    "review_url": ("review:prediction_review", "pk"),
    "gradcam_url": ("review:prediction_gradcam", "pk"),
    "gradcam_request_url": ("review:prediction_gradcam_request", "pk"),
    "exclude_url": ("review:cell_image_exclude", "cell_image_id"),
    "include_url": ("review:cell_image_include", "cell_image_id"),
}


def cell_urls_maker() -> Callable[[Prediction], dict[str, str]]:
    makers = {key: (url_maker(name), attribute) for key, (name, attribute) in CELL_URLS.items()}
    return lambda prediction: {
        key: make(getattr(prediction, attribute)) for key, (make, attribute) in makers.items()
    }


def flag_reason(prediction: Prediction, *, auto_acceptable: bool, slide_in_domain: bool) -> str:
    """Why a cell waits for a person ("" when it may be accepted without review)."""
    if auto_acceptable:
        return ""
    if prediction.in_domain is None:
        return "domain unknown"
    if not prediction.in_domain:
        return "cell out of domain"
    if not slide_in_domain:
        return "slide out of domain"
    if not threshold_validated(prediction.cell_review_threshold):
        return "no validated review threshold for cells like this one"
    threshold = threshold_percent(prediction.confidence, prediction.cell_review_threshold)
    return f"below review threshold {threshold}"


def cell_json(
    prediction: Prediction,
    urls: Callable[[Prediction], dict[str, str]],
    *,
    auto_acceptable: bool,
    slide_in_domain: bool,
    names: dict[str, str],
) -> dict:
    """``names``: every class's name by code (``review.selectors.class_names``)."""
    history = [
        review_json(
            review.label,
            review.decision,
            review.reason,
            review.reviewer.username,
            review.created_at,
            label_name=names.get(review.label, review.label),
            bulk=review.bulk,
            bulk_threshold=review.bulk_threshold,
            review_id=review.pk,
        )
        for review in prediction.history
    ]
    exclusions = [exclusion_json(exclusion) for exclusion in prediction.exclusions]
    return {
        "id": prediction.pk,
        "cell_image_id": prediction.cell_image_id,
        "filename": prediction.cell_image.original_filename,
        # A cell located on (or added to) a whole field: the field view, with its box on the field.
        "field_url": reverse("review:field_detail", args=[prediction.cell_image.field_image_id])
        if prediction.cell_image.field_image_id
        else "",
        **urls(prediction),
        "gradcam_status": prediction.gradcam_status,
        "label": prediction.label,
        "label_name": names.get(prediction.label, prediction.label),
        "probabilities": prediction.probabilities,
        "confidence": prediction.confidence,
        # As compared with the review threshold: never "97.2 %" for a cell flagged below 97.2 %.
        "confidence_text": confidence_percent(prediction.confidence, prediction.cell_review_threshold),
        "flagged": not auto_acceptable,
        "flag_reason": flag_reason(
            prediction, auto_acceptable=auto_acceptable, slide_in_domain=slide_in_domain
        ),
        "domain_score": prediction.domain_score,
        "in_domain": prediction.in_domain,
        "model_version": prediction.model_version.name,
        "review": history[0] if history else None,
        "history": history,
        "excluded": prediction.excluded,
        "exclusions": exclusions,
    }
