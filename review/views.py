"""Pathologist review pages: queue, keyboard review screen, cell exclusions and classification
retries, differential, sign-off, amendment, Grad-CAM and result exports. Views parse input, check
access and call services or selectors."""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.models import Slide, SlideStatus
from cases.selectors import cell_image_visible_queryset, patient_visible_queryset, slide_visible_queryset
from classifier.adaptation import ADAPTATION_MINIMUM, adaptation_run_unfinished
from classifier.domain import slide_auto_acceptable_ids, slide_domain
from classifier.models import AdaptationRun, CellClass
from classifier.selectors import prediction_visible_queryset
from core.permissions import permission_needed
from review.adaptation import LabCellSelection, lab_adaptation_start, lab_cell_counts
from review.downloads import EXPORT_FORMATS, export_response
from review.exports import ExportScope
from review.forms import (
    AmendForm,
    DateRangeExportForm,
    ExclusionForm,
    IncludeForm,
    LabAdaptationForm,
    QueueFilterForm,
    SignForm,
)
from review.models import ExclusionCategory
from review.presenters import CLASS_KEYS, FLAGGED_CELL_MIN_MS, cell_json, cell_urls_maker, review_json
from review.selectors import (
    review_queue,
    slide_differential,
    slide_review_predictions,
    slide_review_progress,
    slide_signature_history,
    slide_signature_latest,
    slide_unresolved_cells,
)
from review.services import (
    cell_image_exclude,
    cell_image_include,
    prediction_review,
    slide_amend,
    slide_bulk_confirm,
    slide_classification_retry,
    slide_sign,
)

QUEUE_PAGE_SIZE = 50


# --- Queue and review screen ---------------------------------------------------------------------------


@require_GET
@permission_needed("review.add_review")
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
    slides_out_of_domain = sorted(
        {p.cell_image.slide.accession_number for p in page.object_list if not p.slide_in_domain}
    )
    context = {
        "form": form,
        "page": page,
        "page_query": params.urlencode(),
        "slides_out_of_domain": slides_out_of_domain,
    }
    return render(request, "review/queue.html", context)


@require_GET
@permission_needed("review.add_review")
def slide_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The keyboard review screen; every cell of the slide is in the page, the script moves between
    them and records reviews without reloading."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    predictions = slide_review_predictions(user=request.user, slide=slide)
    urls = cell_urls_maker()
    domain = slide_domain(slide=slide)
    acceptable = slide_auto_acceptable_ids(slide=slide)
    cells = [
        cell_json(
            prediction, urls, auto_acceptable=prediction.pk in acceptable, slide_in_domain=domain.in_domain
        )
        for prediction in predictions
    ]
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
            "flagged_min_ms": FLAGGED_CELL_MIN_MS,
            "progress": progress.as_dict(),
            "classes": [
                {"value": value, "name": CellClass(value).label, "keys": list(keys)}
                for value, keys in CLASS_KEYS.items()
            ],
        },
        "classes": [(value, CellClass(value).label, keys[0]) for value, keys in CLASS_KEYS.items()],
        "progress": progress,
        "unresolved": slide_unresolved_cells(user=request.user, slide=slide),
        "domain": domain,
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
@permission_needed("review.add_review")
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
                "review": review_json(
                    review.label, review.decision, review.reason, request.user.username, review.created_at
                ),
                "progress": slide_review_progress(slide=prediction.cell_image.slide).as_dict(),
            }
        )
    return redirect("review:slide_review", pk=prediction.cell_image.slide_id)


@require_POST
@permission_needed("review.add_review")
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
@permission_needed("review.add_cellexclusion")
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
@permission_needed("review.add_cellexclusion")
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
@permission_needed("review.add_review")
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


# --- Differential, sign-off, amendment -----------------------------------------------------------------


@require_GET
@permission_needed("review.view_review")
def slide_differential_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    context = {
        "slide": slide,
        "differential": slide_differential(slide=slide),
        "progress": slide_review_progress(slide=slide),
        "signatures": slide_signature_history(slide=slide),
        "domain": slide_domain(slide=slide),
    }
    return render(request, "review/differential.html", context)


@require_http_methods(["GET", "POST"])
@permission_needed("review.add_slidesignature")
def slide_sign_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    if slide.is_locked:
        return _slide_signed_already(request, slide)
    domain = slide_domain(slide=slide)
    form = SignForm(request.POST or None, domain_attention=domain.needs_attention)
    status = 200
    if form.is_valid():
        try:
            signature = slide_sign(
                actor=request.user,
                slide=slide,
                password=form.cleaned_data["password"],
                request=request,
                domain_acknowledged=form.cleaned_data.get("acknowledge_domain", False),
            )
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
        "domain": domain,
    }
    return render(request, "review/sign.html", context, status=status)


def _slide_signed_already(request: HttpRequest, slide: Slide) -> HttpResponse:
    """A signed slide's sign page: its signature, no password box; a POST is refused (409)."""
    context = {
        "slide": slide,
        "signature": slide_signature_latest(slide=slide),
        "differential": slide_differential(slide=slide),
        "domain": slide_domain(slide=slide),
    }
    return render(request, "review/sign.html", context, status=409 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@permission_needed("review.add_slideamendment")
def slide_amend_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    form = AmendForm(request.POST or None)
    status = 200
    if form.is_valid():
        try:
            slide_amend(
                actor=request.user,
                slide=slide,
                reason=form.cleaned_data["reason"],
                password=form.cleaned_data["password"],
                request=request,
            )
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


# --- Exports -------------------------------------------------------------------------------------------


def _export_format(request: HttpRequest) -> str:
    requested = request.GET.get("as", "csv")
    return requested if requested in EXPORT_FORMATS else ""


@require_GET
@permission_needed("review.view_review")
def slide_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    export_format = _export_format(request)
    if not export_format:
        return HttpResponse("Choose as=csv, json or fhir.", status=400, content_type="text/plain")
    return export_response(request=request, scope=ExportScope(slide=slide), export_format=export_format)


@require_GET
@permission_needed("review.view_review")
def patient_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_visible_queryset(request.user), pk=pk)
    export_format = _export_format(request)
    if export_format not in ("csv", "json"):
        return HttpResponse("Choose as=csv or json.", status=400, content_type="text/plain")
    return export_response(request=request, scope=ExportScope(patient=patient), export_format=export_format)


@require_GET
@permission_needed("review.view_review")
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


# --- Adapting the model to the lab ---------------------------------------------------------------------


def _lab_adaptation_form(request: HttpRequest) -> LabAdaptationForm:
    """The selection from the query string (or the POST); a first visit has signed slides only."""
    data = request.POST if request.method == "POST" else request.GET
    if "selection" not in data:
        return LabAdaptationForm({"signed_only": True, "selection": "1"})
    return LabAdaptationForm(data)


@require_http_methods(["GET", "POST"])
@permission_needed("classifier.view_adaptationrun", "classifier.add_adaptationrun")
def lab_adaptation_view(request: HttpRequest) -> HttpResponse:
    """Admin page: the lab's verified cells per class, and starting an adaptation from them."""
    form = _lab_adaptation_form(request)
    counts = None
    status = 200
    if form.is_valid():
        selection = LabCellSelection(
            **{name: form.cleaned_data[name] for name in ("signed_only", "date_from", "date_to")}
        )
        if request.method == "POST":
            try:
                run = lab_adaptation_start(actor=request.user, selection=selection)
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
                status = 409
            else:
                messages.success(request, f"Adaptation run {run.pk} queued on the training worker.")
                return redirect("classifier:adaptation_run_detail", pk=run.pk)
        counts = lab_cell_counts(selection=selection)
    elif request.method == "POST":
        status = 400
    context = {
        "form": form,
        "counts": counts,
        "minimum": ADAPTATION_MINIMUM,
        "unfinished": adaptation_run_unfinished(),
        "runs": AdaptationRun.objects.select_related("result_model_version", "started_by")[:10],
    }
    return render(request, "review/lab_adaptation.html", context, status=status)
