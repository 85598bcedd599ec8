"""Pathologist review pages: queue, keyboard review screen, cell exclusions and classification
retries, differential, sign-off, amendment, Grad-CAM and result exports. Views parse input, check
access and call services or selectors."""

import json
from collections.abc import Callable
from datetime import date, datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import permission_needed
from cases.models import Slide, SlideStatus
from cases.selectors import cell_image_visible_queryset, patient_visible_queryset, slide_visible_queryset
from classifier.exports import ExportScope, export_rows, rows_to_csv, rows_to_json
from classifier.fhir import FHIR_MEDIA_TYPE, slide_fhir_bundle
from classifier.models import CellClass, CellExclusion, ExclusionCategory, GradCamStatus, Prediction
from classifier.review_selectors import (
    CONFIDENCE_BANDS,
    QueueFilters,
    review_queue,
    slide_differential,
    slide_review_predictions,
    slide_review_progress,
    slide_signature_history,
    slide_signature_latest,
    slide_unresolved_cells,
)
from classifier.review_services import (
    cell_image_exclude,
    cell_image_include,
    gradcam_request,
    prediction_review,
    results_export_record,
    slide_amend,
    slide_bulk_confirm,
    slide_classification_retry,
    slide_sign,
)
from classifier.selectors import prediction_visible_queryset

QUEUE_PAGE_SIZE = 50
EXPORT_FORMATS = ("csv", "json", "fhir")
CLASS_KEYS = {
    CellClass.EOSINOPHIL: ("1", "e"),
    CellClass.LYMPHOCYTE: ("2", "l"),
    CellClass.MONOCYTE: ("3", "m"),
    CellClass.NEUTROPHIL: ("4", "n"),
}


# --- Queue and review screen ------------------------------------------------------------------------------


class QueueFilterForm(forms.Form):
    slide = forms.ModelChoiceField(
        queryset=Slide.objects.none(), required=False, empty_label="All awaiting review"
    )
    label = forms.ChoiceField(choices=[("", "Any class"), *CellClass.choices], required=False)
    band = forms.ChoiceField(
        choices=[("", "Any confidence"), *((key, text) for key, (text, _) in CONFIDENCE_BANDS.items())],
        required=False,
    )
    reviewed = forms.ChoiceField(
        choices=[("", "Reviewed or not"), ("no", "Not reviewed"), ("yes", "Reviewed")], required=False
    )

    def __init__(self, *args, slides: QuerySet[Slide], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slide"].queryset = slides

    def filters(self) -> QueueFilters:
        if not self.is_valid():
            return QueueFilters()
        data = self.cleaned_data
        reviewed = {"yes": True, "no": False}.get(data["reviewed"])
        return QueueFilters(slide=data["slide"], label=data["label"], band=data["band"], reviewed=reviewed)


@require_GET
@permission_needed("classifier.add_review")
def review_queue_view(request: HttpRequest) -> HttpResponse:
    """Cells to verify across slides (or one), least confident first."""
    slides = (
        slide_visible_queryset(request.user).exclude(status=SlideStatus.DRAFT).order_by("accession_number")
    )
    form = QueueFilterForm(request.GET or None, slides=slides)
    queue = review_queue(user=request.user, filters=form.filters())
    page = Paginator(queue, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {"form": form, "page": page, "page_query": params.urlencode()}
    return render(request, "review/queue.html", context)


def _review_json(review_label: str, decision: str, reason: str, reviewer: str, created_at: datetime) -> dict:
    return {
        "label": review_label,
        "label_name": CellClass(review_label).label,
        "decision": decision,
        "reason": reason,
        "reviewer": reviewer,
        "at": created_at.isoformat(),
    }


def _exclusion_json(exclusion: CellExclusion) -> dict:
    return {
        "excluded": exclusion.excluded,
        "category": exclusion.category,
        "category_name": exclusion.get_category_display(),
        "reason": exclusion.reason,
        "by": exclusion.decided_by.username,
        "at": exclusion.created_at.isoformat(),
    }


def _url_maker(name: str) -> Callable[[int], str]:
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


def _cell_urls_maker() -> Callable[[Prediction], dict[str, str]]:
    makers = {key: (_url_maker(name), attribute) for key, (name, attribute) in CELL_URLS.items()}
    return lambda prediction: {
        key: make(getattr(prediction, attribute)) for key, (make, attribute) in makers.items()
    }


def _cell_json(prediction: Prediction, urls: Callable[[Prediction], dict[str, str]]) -> dict:
    history = [
        _review_json(
            review.label, review.decision, review.reason, review.reviewer.username, review.created_at
        )
        for review in prediction.history
    ]
    exclusions = [_exclusion_json(exclusion) for exclusion in prediction.exclusions]
    return {
        "id": prediction.pk,
        "cell_image_id": prediction.cell_image_id,
        "filename": prediction.cell_image.original_filename,
        **urls(prediction),
        "gradcam_status": prediction.gradcam_status,
        "label": prediction.label,
        "label_name": CellClass(prediction.label).label,
        "probabilities": prediction.probabilities,
        "confidence": prediction.confidence,
        "flagged": prediction.confidence < prediction.model_version.review_threshold,
        "model_version": prediction.model_version.name,
        "review": history[0] if history else None,
        "history": history,
        "excluded": prediction.excluded,
        "exclusions": exclusions,
    }


@require_GET
@permission_needed("classifier.add_review")
def slide_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The keyboard review screen; every cell of the slide is in the page, the script moves between
    them and records reviews without reloading."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    predictions = slide_review_predictions(user=request.user, slide=slide)
    urls = _cell_urls_maker()
    cells = [_cell_json(prediction, urls) for prediction in predictions]
    start = _start_index(cells, request.GET.get("cell"))
    progress = slide_review_progress(slide=slide)
    context = {
        "slide": slide,
        "cells": cells,
        "current": cells[start] if cells else None,
        "review_data": {
            "cells": cells,
            "start": start,
            "locked": slide.is_locked,
            "progress": progress.as_dict(),
            "classes": [
                {"value": value, "name": CellClass(value).label, "keys": list(keys)}
                for value, keys in CLASS_KEYS.items()
            ],
        },
        "classes": [(value, CellClass(value).label, keys[0]) for value, keys in CLASS_KEYS.items()],
        "progress": progress,
        "unresolved": slide_unresolved_cells(user=request.user, slide=slide),
        "exclusion_categories": ExclusionCategory.choices,
    }
    return render(request, "review/slide_review.html", context)


def _start_index(cells: list[dict], requested: str | None) -> int:
    for index, cell in enumerate(cells):
        if str(cell["id"]) == requested:
            return index
    return next(
        (index for index, cell in enumerate(cells) if cell["review"] is None and not cell["excluded"]), 0
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
@permission_needed("classifier.add_review")
def prediction_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Record one review; answers JSON to the review screen's script, a redirect to a plain form."""
    prediction = get_object_or_404(prediction_visible_queryset(request.user), pk=pk)
    try:
        review = prediction_review(
            actor=request.user,
            prediction=prediction,
            label=request.POST.get("label", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as error:
        if _wants_json(request):
            return JsonResponse({"error": " ".join(error.messages)}, status=400)
        messages.error(request, " ".join(error.messages))
        return redirect(f"{reverse('review:slide_review', args=[prediction.cell_image.slide_id])}?cell={pk}")
    if _wants_json(request):
        return JsonResponse(
            {
                "review": _review_json(
                    review.label, review.decision, review.reason, request.user.username, review.created_at
                ),
                "progress": slide_review_progress(slide=prediction.cell_image.slide).as_dict(),
            }
        )
    return redirect("review:slide_review", pk=prediction.cell_image.slide_id)


@require_POST
@permission_needed("classifier.add_review")
def slide_bulk_confirm_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    try:
        summary = slide_bulk_confirm(actor=request.user, slide=slide)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("review:slide_review", pk=slide.pk)
    by_class = ", ".join(
        f"{count} {CellClass(label).label.lower()}" for label, count in summary.confirmed.items() if count
    )
    messages.success(
        request,
        f"Confirmed {summary.confirmed_total} cells at or above the review threshold"
        f"{f' ({by_class})' if by_class else ''}; {summary.below_threshold} below it still need review, "
        f"{summary.already_reviewed} already had a review.",
    )
    return redirect("review:slide_review", pk=slide.pk)


class ExclusionForm(forms.Form):
    category = forms.ChoiceField(choices=ExclusionCategory.choices)
    reason = forms.CharField(max_length=2000)


class IncludeForm(forms.Form):
    reason = forms.CharField(max_length=2000)


def _back_to_review(request: HttpRequest, slide_id: int) -> HttpResponse:
    """The review screen, on the cell the form was posted from (``cell``: a prediction id)."""
    url = reverse("review:slide_review", args=[slide_id])
    cell = request.POST.get("cell", "")
    return redirect(f"{url}?cell={cell}" if cell.isdigit() else f"{url}#unresolved")


def _run_review_action(request: HttpRequest, action: Callable[[], object], success: str) -> None:
    try:
        action()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success)


@require_POST
@permission_needed("classifier.add_cellexclusion")
def cell_image_exclude_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Exclude a cell from the differential (category and reason required)."""
    cell_image = get_object_or_404(cell_image_visible_queryset(request.user), pk=pk)
    form = ExclusionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose why the cell is excluded and type the reason: both are required.")
        return _back_to_review(request, cell_image.slide_id)
    data = form.cleaned_data
    _run_review_action(
        request,
        lambda: cell_image_exclude(
            actor=request.user, cell_image=cell_image, category=data["category"], reason=data["reason"]
        ),
        f"{cell_image.original_filename} is excluded from the differential.",
    )
    return _back_to_review(request, cell_image.slide_id)


@require_POST
@permission_needed("classifier.add_cellexclusion")
def cell_image_include_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw a cell's exclusion (reason required); it counts again."""
    cell_image = get_object_or_404(cell_image_visible_queryset(request.user), pk=pk)
    form = IncludeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Type why the cell counts again: a reason is required.")
        return _back_to_review(request, cell_image.slide_id)
    _run_review_action(
        request,
        lambda: cell_image_include(
            actor=request.user, cell_image=cell_image, reason=form.cleaned_data["reason"]
        ),
        f"{cell_image.original_filename} counts in the differential again.",
    )
    return _back_to_review(request, cell_image.slide_id)


@require_POST
@permission_needed("classifier.add_review")
def slide_classification_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the slide's unclassified cells for the active model again."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    try:
        job = slide_classification_retry(actor=request.user, slide=slide)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{job.total} cells queued for classification again (job {job.pk}).")
    return redirect(f"{reverse('review:slide_review', args=[slide.pk])}#unresolved")


# --- Differential, sign-off, amendment --------------------------------------------------------------------


@require_GET
@permission_needed("classifier.view_review")
def slide_differential_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    context = {
        "slide": slide,
        "differential": slide_differential(slide=slide),
        "progress": slide_review_progress(slide=slide),
        "signatures": slide_signature_history(slide=slide),
    }
    return render(request, "review/differential.html", context)


class SignForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True})
    )


@require_http_methods(["GET", "POST"])
@permission_needed("classifier.add_slidesignature")
def slide_sign_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    form = SignForm(request.POST or None)
    status = 200
    if form.is_valid():
        try:
            signature = slide_sign(actor=request.user, slide=slide, password=form.cleaned_data["password"])
        except ValidationError as error:
            form.add_error(None, error)
            status = 400
        else:
            messages.success(
                request, f"Slide signed (version {signature.version}) by {signature.signer_full_name}."
            )
            return redirect("cases:slide_detail", pk=slide.pk)
    context = {
        "slide": slide,
        "form": form,
        "differential": slide_differential(slide=slide),
        "progress": slide_review_progress(slide=slide),
    }
    return render(request, "review/sign.html", context, status=status)


class AmendForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


@require_http_methods(["GET", "POST"])
@permission_needed("classifier.add_slideamendment")
def slide_amend_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    form = AmendForm(request.POST or None)
    status = 200
    if form.is_valid():
        try:
            slide_amend(actor=request.user, slide=slide, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error)
            status = 400
        else:
            messages.success(
                request, "Slide reopened for amendment; the earlier signature stays in its history."
            )
            return redirect("review:slide_review", pk=slide.pk)
    context = {"slide": slide, "form": form, "signature": slide_signature_latest(slide=slide)}
    return render(request, "review/amend.html", context, status=status)


# --- Grad-CAM ----------------------------------------------------------------------------------------------


@require_GET
@permission_needed("classifier.view_gradcam")
def prediction_gradcam_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The stored overlay (PNG) when a worker has made it; otherwise 202 with its status."""
    prediction = get_object_or_404(prediction_visible_queryset(request.user), pk=pk)
    gradcam = getattr(prediction, "gradcam", None)
    if gradcam is None or gradcam.status != GradCamStatus.SUCCEEDED:
        return JsonResponse(
            {"status": gradcam.status if gradcam else "absent", "error": gradcam.error if gradcam else ""},
            status=202,
        )
    response = FileResponse(gradcam.image.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
@permission_needed("classifier.view_gradcam")
def prediction_gradcam_request_view(request: HttpRequest, pk: int) -> JsonResponse:
    """Queue the overlay for a worker (nothing is computed in the request)."""
    prediction = get_object_or_404(prediction_visible_queryset(request.user), pk=pk)
    gradcam = gradcam_request(prediction=prediction)
    return JsonResponse({"status": gradcam.status}, status=202)


# --- Exports ---------------------------------------------------------------------------------------------


def _export_format(request: HttpRequest) -> str:
    requested = request.GET.get("as", "csv")
    return requested if requested in EXPORT_FORMATS else ""


def export_response(*, request: HttpRequest, scope: ExportScope, export_format: str) -> HttpResponse:
    """The file for a scope, recorded in the audit trail (shared by the HTML and API views)."""
    if export_format == "fhir":
        return _fhir_response(request=request, scope=scope)
    rows = export_rows(user=request.user, scope=scope)
    results_export_record(
        actor=request.user, scope=scope.describe(), export_format=export_format, cell_count=len(rows)
    )
    if export_format == "json":
        response = HttpResponse(rows_to_json(rows, scope=scope), content_type="application/json")
    else:
        response = HttpResponse(rows_to_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{scope.file_stem()}.{export_format}"'
    return response


def _fhir_response(*, request: HttpRequest, scope: ExportScope) -> HttpResponse:
    signature = slide_signature_latest(slide=scope.slide) if scope.slide is not None else None
    if signature is None or scope.slide.status != SlideStatus.SIGNED:
        return JsonResponse({"detail": "A FHIR report exists only for a signed slide."}, status=409)
    bundle = slide_fhir_bundle(signature=signature)
    results_export_record(
        actor=request.user,
        scope={**scope.describe(), "signature_version": signature.version},
        export_format="fhir",
        cell_count=signature.differential["total"],
    )
    response = HttpResponse(json.dumps(bundle, indent=2), content_type=FHIR_MEDIA_TYPE)
    response["Content-Disposition"] = (
        f'attachment; filename="{scope.file_stem()}-v{signature.version}.fhir.json"'
    )
    return response


@require_GET
@permission_needed("classifier.view_review")
def slide_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    export_format = _export_format(request)
    if not export_format:
        return HttpResponse("Choose as=csv, json or fhir.", status=400, content_type="text/plain")
    return export_response(request=request, scope=ExportScope(slide=slide), export_format=export_format)


@require_GET
@permission_needed("classifier.view_review")
def patient_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_visible_queryset(request.user), pk=pk)
    export_format = _export_format(request)
    if export_format not in ("csv", "json"):
        return HttpResponse("Choose as=csv or json.", status=400, content_type="text/plain")
    return export_response(request=request, scope=ExportScope(patient=patient), export_format=export_format)


class DateRangeExportForm(forms.Form):
    collected_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    collected_to = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    export_format = forms.ChoiceField(choices=[("csv", "CSV"), ("json", "JSON")], initial="csv")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("collected_from"), data.get("collected_to")
        if isinstance(start, date) and isinstance(end, date) and start > end:
            raise ValidationError("The start date is after the end date.")
        return data


@require_GET
@permission_needed("classifier.view_review")
def range_export_view(request: HttpRequest) -> HttpResponse:
    """Without dates, the form; with valid dates, the cells of every slide collected in the range."""
    form = DateRangeExportForm(request.GET or None)
    if not form.is_valid():
        return render(
            request, "review/export_range.html", {"form": form}, status=400 if form.is_bound else 200
        )
    data = form.cleaned_data
    scope = ExportScope(collected_from=data["collected_from"], collected_to=data["collected_to"])
    return export_response(request=request, scope=scope, export_format=data["export_format"])
