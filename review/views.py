"""Pathologist review pages: queue, keyboard review screen, cell exclusions and classification
retries, differential, sign-off, amendment, Grad-CAM and result exports. Views parse input, check
access and call services or selectors."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.models import Slide, SlideStatus
from cases.selectors import (
    cell_image_visible_queryset,
    field_image_visible_queryset,
    patient_visible_queryset,
    slide_visible_queryset,
)
from cases.services import slide_target_count_set, slide_wbc_count_enter
from classifier.adaptation import ADAPTATION_MINIMUM, adaptation_run_unfinished
from classifier.domain import slide_auto_acceptable_ids, slide_domain
from classifier.models import AdaptationRun, CellClass
from classifier.selectors import prediction_visible_queryset
from core.permissions import permission_needed
from review.adaptation import LabCellSelection, lab_adaptation_start, lab_cell_counts
from review.consult_selectors import slide_open_consults
from review.downloads import EXPORT_FORMATS, export_response
from review.exports import ExportScope
from review.forms import (
    AmendForm,
    CountingDefaultForm,
    DateRangeExportForm,
    DifferentialClassForm,
    ExclusionForm,
    FieldCellAddForm,
    IncludeForm,
    LabAdaptationForm,
    QueueFilterForm,
    SignForm,
    SlideTargetForm,
    SlideWbcCountForm,
)
from review.gallery import gallery_context
from review.history import ResultHistory, differential_point, patient_signed_points, result_history
from review.models import DifferentialClass, ExclusionCategory, SlideSignature
from review.presenters import FLAGGED_CELL_MIN_MS, cell_json, cell_urls_maker, class_json, review_json
from review.report_pdf import slide_report_pdf
from review.reports import report_signature, slide_report
from review.selectors import (
    WORKLIST_DEFAULT_SORT,
    WORKLIST_SORTS,
    WORKLIST_STATUSES,
    Differential,
    FieldCell,
    class_names,
    correction_choices,
    counting_default_target,
    differential_classes,
    field_cells,
    review_queue,
    slide_count_target,
    slide_differential,
    slide_review_predictions,
    slide_review_progress,
    slide_signature_history,
    slide_signature_latest,
    slide_unresolved_cells,
    slide_worklist,
)
from review.services import (
    DIFFERENTIAL_CLASS_FIELDS,
    FIELD_BOX_MIN_SIDE,
    GALLERY_MAX_CELLS,
    REVIEWABLE_STATUSES,
    SeenCell,
    StaleSelectionError,
    cell_image_exclude,
    cell_image_include,
    counting_default_target_set,
    differential_class_create,
    differential_class_move,
    differential_class_update,
    field_cell_add_and_classify,
    prediction_review,
    predictions_review_group,
    results_export_record,
    slide_amend,
    slide_bulk_confirm,
    slide_classification_retry,
    slide_sign,
)

QUEUE_PAGE_SIZE = 50
WORKLIST_PAGE_SIZE = 25


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
    page.object_list = list(page.object_list)
    names = class_names() if any(prediction.review_label for prediction in page.object_list) else {}
    for prediction in page.object_list:
        prediction.review_label_name = names.get(prediction.review_label, prediction.review_label)
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
    classes = differential_classes()
    names = {cell_class.code: cell_class.name for cell_class in classes}
    cells = [
        cell_json(
            prediction,
            urls,
            auto_acceptable=prediction.pk in acceptable,
            slide_in_domain=domain.in_domain,
            names=names,
        )
        for prediction in predictions
    ]
    start = _start_index(cells, request.GET.get("cell"))
    progress = slide_review_progress(slide=slide)
    target = slide_count_target(slide=slide)
    corrections = [class_json(cell_class) for cell_class in classes if cell_class.is_active]
    keys = {cell_class.code: cell_class.shortcut for cell_class in classes}
    context = {
        "slide": slide,
        "cells": cells,
        "current": cells[start] if cells else None,
        "review_data": {
            "cells": cells,
            "start": start,
            "locked": slide.is_locked,
            "flagged_min_ms": FLAGGED_CELL_MIN_MS,
            "progress": {**progress.as_dict(), "target": target.as_dict()},
            "classes": corrections,
            "names": names,
        },
        # The model's four, in its order (the probabilities), and every class a cell may be given.
        "model_classes": [
            (value, names.get(value, label), keys.get(value, "")) for value, label in CellClass.choices
        ],
        "corrections": corrections,
        "progress": progress,
        "target": target,
        "target_form": SlideTargetForm(initial={"target": slide.target_wbc_count}),
        "unresolved": slide_unresolved_cells(user=request.user, slide=slide),
        "domain": domain,
        "exclusion_categories": ExclusionCategory.choices,
        # The gallery by class is one click away (?gallery=1): drawn on every load it would double
        # the screen's cost on a large slide (slide_reviewed_cards walks every cell again).
        "gallery_shown": (shown := request.GET.get("gallery") == "1"),
        **((gallery_context(request, slide, mode="review") or {}) if shown else {}),
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
        slide = prediction.cell_image.slide
        review_answer = review_json(
            review.label,
            review.decision,
            review.reason,
            request.user.username,
            review.created_at,
            label_name=class_names().get(review.label, review.label),
            review_id=review.pk,
        )
        progress = {
            **slide_review_progress(slide=slide).as_dict(),
            "target": slide_count_target(slide=slide).as_dict(),
        }
        return JsonResponse({"review": review_answer, "progress": progress})
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
    names = class_names()
    by_class = ", ".join(
        f"{count} {names.get(label, label).lower()}" for label, count in summary.confirmed.items() if count
    )
    messages.success(
        request,
        f"Confirmed {summary.confirmed_total} cells at or above the review threshold"
        f"{f' ({by_class})' if by_class else ''}; {summary.below_threshold} below it still need review, "
        f"{summary.already_reviewed} already had a review.",
    )
    return redirect("review:slide_review", pk=slide.pk)


class GalleryRequestError(ValueError):
    """The gallery's request body is not what its script sends."""


def _gallery_request(body: bytes) -> tuple[list[SeenCell], str | None, str, frozenset[int]]:
    """``{"action": "confirm"|"reclassify", "label", "reason", "cells": [{"prediction": id,
    "review": id|null}], "flagged_acknowledged": [id]}`` → what ``predictions_review_group`` takes."""
    try:
        data = json.loads(body)
        action, cells = data["action"], data["cells"]
        seen = [SeenCell(_id(cell["prediction"]), _id(cell["review"], optional=True)) for cell in cells]
        acknowledged = frozenset(_id(value) for value in data.get("flagged_acknowledged", []))
        reason = data.get("reason", "")
        label = data.get("label") if action == "reclassify" else None
    except (ValueError, KeyError, TypeError) as error:
        raise GalleryRequestError("The request is not a gallery action.") from error
    if action not in ("confirm", "reclassify") or not isinstance(reason, str) or len(reason) > 2000:
        raise GalleryRequestError("The request is not a gallery action.")
    if action == "reclassify" and not isinstance(label, str):
        raise GalleryRequestError("Choose the class to move the cells to.")
    return seen, label, reason, acknowledged


def _id(value: object, *, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not an id")
    return value


@require_POST
@permission_needed("review.add_review")
def slide_gallery_review_view(request: HttpRequest, pk: int) -> JsonResponse:
    """Confirm or reclassify the cells selected in the gallery, all or nothing (JSON in and out).
    400: refused (no reason, flagged cells not acknowledged, bad request); 404: a cell that is not
    one of this slide's for this user; 409: a selected cell changed meanwhile."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    try:
        cells, label, reason, acknowledged = _gallery_request(request.body)
    except GalleryRequestError as error:
        return JsonResponse({"error": str(error)}, status=400)
    ids = {cell.prediction_id for cell in cells}
    if len(ids) <= GALLERY_MAX_CELLS:
        visible = prediction_visible_queryset(request.user).filter(cell_image__slide=slide, pk__in=ids)
        if visible.count() != len(ids):
            return JsonResponse({"error": "A selected cell is not on this slide."}, status=404)
    try:
        summary = predictions_review_group(
            actor=request.user,
            slide=slide,
            cells=cells,
            label=label,
            reason=reason,
            flagged_acknowledged=acknowledged,
        )
    except StaleSelectionError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=409)
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    message = _gallery_message(len(summary.recorded), summary.unchanged, label)
    messages.success(request, message)
    progress = slide_review_progress(slide=slide).as_dict()
    return JsonResponse(
        {
            "recorded": len(summary.recorded),
            "unchanged": summary.unchanged,
            "message": message,
            "progress": progress,
        }
    )


def _gallery_message(recorded: int, unchanged: int, label: str | None) -> str:
    what = f"moved to {dict(correction_choices())[label]}" if label else "confirmed"
    text = f"{recorded} cell{'s' if recorded != 1 else ''} {what}"
    return f"{text}; {unchanged} already had that class." if unchanged else f"{text}."


def _back_to_review(request: HttpRequest, slide_id: int) -> HttpResponse:
    """The review screen, on the cell the form was posted from (``cell``: a prediction id), or
    the field view the form was posted from (``field``: a field image id)."""
    field = request.POST.get("field", "")
    if field.isdigit():
        return redirect("review:field_detail", pk=int(field))
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
    target = slide_count_target(slide=slide)
    open_consults = slide_open_consults(slide=slide)
    # After an amendment, the comment starts from the one the slide was signed with before.
    previous = slide_signature_latest(slide=slide)
    form = SignForm(
        request.POST or None,
        domain_attention=domain.needs_attention,
        below_target="" if target.reached else target.summary,
        open_consults=bool(open_consults),
        initial={"comment": previous.comment or ""} if previous else None,
    )
    status = 200
    if form.is_valid():
        try:
            signature = slide_sign(
                actor=request.user,
                slide=slide,
                password=form.cleaned_data["password"],
                request=request,
                domain_acknowledged=form.cleaned_data.get("acknowledge_domain", False),
                count_acknowledged=form.cleaned_data.get("acknowledge_count", False),
                consults_acknowledged=form.cleaned_data.get("acknowledge_consults", False),
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            form.add_error(None, error)
            status = 400
        else:
            messages.success(
                request, f"Slide signed (version {signature.version}) by {signature.signer_full_name}."
            )
            return redirect("cases:slide_detail", pk=slide.pk)
    differential = slide_differential(slide=slide)
    context = {
        "slide": slide,
        "form": form,
        "differential": differential,
        "progress": slide_review_progress(slide=slide),
        "domain": domain,
        "history": _history_with_this_slide(request, slide, differential),
        "target": target,
        "open_consults": open_consults,
    }
    return render(request, "review/sign.html", context, status=status)


def _history_with_this_slide(request: HttpRequest, slide: Slide, differential: Differential) -> ResultHistory:
    """The patient's results signed before this slide, then this slide's as it stands now."""
    earlier = patient_signed_points(user=request.user, patient=slide.patient, before=slide)
    names = {row.label: row.name for row in differential.rows}
    return result_history(
        points=[*earlier, differential_point(slide=slide, differential=differential)], names=names
    )


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


# --- Report, worklist ----------------------------------------------------------------------------------


def _report_signature(request: HttpRequest, slide: Slide) -> SlideSignature | None:
    """The version asked for (``?version=N``), else the newest; None when there is no such one."""
    version = request.GET.get("version", "")
    if version and not version.isdigit():
        return None
    return report_signature(user=request.user, slide=slide, version=int(version) if version else None)


@require_GET
@permission_needed("review.view_slidesignature")
def slide_report_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The printable report of the slide's newest signature (``?version=N``: an earlier one)."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    signature = _report_signature(request, slide)
    if signature is None:
        return render(request, "review/report.html", {"slide": slide, "report": None}, status=404)
    context = {"slide": slide, "report": slide_report(user=request.user, signature=signature)}
    return render(request, "review/report.html", context)


@require_GET
@permission_needed("review.view_slidesignature")
def slide_report_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The same report as a PDF; every download is recorded in the audit trail."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    signature = _report_signature(request, slide)
    if signature is None:
        return HttpResponse(
            "This slide has no signed report (of that version).", status=404, content_type="text/plain"
        )
    report = slide_report(user=request.user, signature=signature)
    content = slide_report_pdf(report)
    results_export_record(
        actor=request.user,
        scope={**ExportScope(slide=slide).describe(), "signature_version": signature.version},
        export_format="pdf",
        cell_count=report.total,
    )
    response = HttpResponse(content, content_type="application/pdf")
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", slide.accession_number)
    response["Content-Disposition"] = f'inline; filename="report-{stem}-v{signature.version}.pdf"'
    return response


@require_GET
@permission_needed("review.add_review")
def worklist_view(request: HttpRequest) -> HttpResponse:
    """Slides awaiting a pathologist: urgent first, longest waiting first, sortable by column."""
    status = request.GET.get("status", "")
    sort = request.GET.get("sort", WORKLIST_DEFAULT_SORT)
    slides = slide_worklist(user=request.user, status=status, sort=sort)
    page = Paginator(slides, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "page_query": params.urlencode(),
        "status": status if status in (*WORKLIST_STATUSES, SlideStatus.SIGNED) else "",
        "statuses": [(value, SlideStatus(value).label) for value in (*WORKLIST_STATUSES, SlideStatus.SIGNED)],
        "sort": sort if sort.removeprefix("-") in WORKLIST_SORTS else WORKLIST_DEFAULT_SORT,
        "columns": _worklist_columns(request, sort),
    }
    return render(request, "review/worklist.html", context)


@dataclass(frozen=True)
class SortColumn:
    key: str
    label: str
    url: str  # this column sorted; again (when it is already sorted) in reverse
    direction: str  # "ascending", "descending" (as the heading's aria-sort says) or "" when not sorted


def _worklist_columns(request: HttpRequest, sort: str) -> dict[str, SortColumn]:
    current = sort if sort.removeprefix("-") in WORKLIST_SORTS else WORKLIST_DEFAULT_SORT
    columns = {}
    for key, (label, _) in WORKLIST_SORTS.items():
        params = request.GET.copy()
        params.pop("page", None)
        params["sort"] = f"-{key}" if current == key else key
        direction = ""
        if current.removeprefix("-") == key:
            direction = "descending" if current.startswith("-") else "ascending"
        columns[key] = SortColumn(key, label, f"?{params.urlencode()}", direction)
    return columns


# --- Counting rules of a slide: target count, WBC count -------------------------------------------------


def _back_to_slide(request: HttpRequest, slide: Slide) -> HttpResponse:
    """Where the counting forms were posted from: the review screen or the slide page."""
    if request.POST.get("back") == "review":
        return redirect("review:slide_review", pk=slide.pk)
    return redirect("cases:slide_detail", pk=slide.pk)


def _form_error_message(form: forms.Form) -> str:
    return " ".join(message for messages_ in form.errors.values() for message in messages_)


@require_POST
@permission_needed("cases.change_slide_target_count")
def slide_target_count_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the slide's target WBC count (empty: back to the lab's default)."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    form = SlideTargetForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error_message(form))
        return _back_to_slide(request, slide)
    target = form.cleaned_data["target"]
    _run_review_action(
        request,
        lambda: slide_target_count_set(
            actor=request.user, slide=slide, target=target, reason=form.cleaned_data["reason"]
        ),
        f"Target for {slide.accession_number}: {target} WBC."
        if target
        else f"Target for {slide.accession_number}: the lab's default ({counting_default_target()} WBC).",
    )
    return _back_to_slide(request, slide)


@require_POST
@permission_needed("cases.change_slide")
def slide_wbc_count_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Enter the specimen's WBC count (×10⁹/L) from the analyser; changing one needs a reason."""
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    form = SlideWbcCountForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error_message(form))
        return _back_to_slide(request, slide)
    count = form.cleaned_data["wbc_count"]
    _run_review_action(
        request,
        lambda: slide_wbc_count_enter(
            actor=request.user, slide=slide, wbc_count=count, reason=form.cleaned_data["reason"]
        ),
        f"WBC count of {slide.accession_number}: {count} ×10⁹/L."
        if count is not None
        else f"WBC count of {slide.accession_number} removed.",
    )
    return _back_to_slide(request, slide)


# --- The lab's class list and default target (admins; others read it) ----------------------------------


@require_GET
@permission_needed("review.view_differentialclass")
def differential_class_list_view(request: HttpRequest) -> HttpResponse:
    default_target = counting_default_target()
    context = {
        "classes": differential_classes(),
        "default_target": default_target,
        "counting_form": CountingDefaultForm(initial={"default_target": default_target}),
    }
    return render(request, "review/class_list.html", context)


@require_http_methods(["GET", "POST"])
@permission_needed("review.add_differentialclass")
def differential_class_create_view(request: HttpRequest) -> HttpResponse:
    form = DifferentialClassForm(request.POST or None)
    if form.is_valid():
        fields = {name: form.cleaned_data[name] for name in DIFFERENTIAL_CLASS_FIELDS}
        code, name = form.cleaned_data["code"], fields.pop("name")
        created = _form_service(
            form, lambda: differential_class_create(actor=request.user, code=code, name=name, **fields)
        )
        if created:
            messages.success(request, f"Class {created.name} added to the end of the list.")
            return redirect("review:class_list")
    return render(request, "cases/form.html", {"form": form, "title": "New class"})


@require_http_methods(["GET", "POST"])
@permission_needed("review.change_differentialclass")
def differential_class_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    cell_class = get_object_or_404(DifferentialClass, pk=pk)
    form = DifferentialClassForm(request.POST or None, instance=cell_class)
    if form.is_valid():
        changes = {name: form.cleaned_data[name] for name in DIFFERENTIAL_CLASS_FIELDS}
        updated = _form_service(
            form,
            lambda: differential_class_update(
                actor=request.user, cell_class=cell_class, changes=changes, reason=form.cleaned_data["reason"]
            ),
        )
        if updated:
            messages.success(request, f"Class {updated.name} saved.")
            return redirect("review:class_list")
    return render(request, "cases/form.html", {"form": form, "title": f"Class {cell_class.code}"})


def _form_service(form: forms.Form, service: Callable[[], object]) -> object | None:
    """Run a service for a valid form; a ValidationError it raises goes back into the form."""
    try:
        return service()
    except ValidationError as error:
        form.add_error(None, error)
        return None


@require_POST
@permission_needed("review.change_differentialclass")
def differential_class_move_view(request: HttpRequest, pk: int) -> HttpResponse:
    cell_class = get_object_or_404(DifferentialClass, pk=pk)
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
    if offset is None:
        messages.error(request, "Move a class up or down.")
    else:
        differential_class_move(actor=request.user, cell_class=cell_class, offset=offset)
    return redirect("review:class_list")


@require_POST
@permission_needed("review.change_countingsettings")
def counting_default_target_view(request: HttpRequest) -> HttpResponse:
    form = CountingDefaultForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error_message(form))
    else:
        target = form.cleaned_data["default_target"]
        _run_review_action(
            request,
            lambda: counting_default_target_set(actor=request.user, target=target),
            f"Slides without a target of their own now count {target} white cells.",
        )
    return redirect("review:class_list")


# --- Whole fields -----------------------------------------------------------------------------------------


@require_GET
@permission_needed("cases.view_cellimage", "classifier.view_prediction")
def field_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A whole field with a box and label on each of its cells (SVG, each box a link); for a
    pathologist, "not a white cell" per box and a form (or a drawn box) to add a missed cell."""
    field_image = get_object_or_404(field_image_visible_queryset(request.user), pk=pk)
    slide = field_image.slide
    can_review = request.user.has_perm("review.add_review")
    cells = field_cells(user=request.user, field_image=field_image)
    context = {
        "slide": slide,
        "field": field_image,
        "cells": [(cell, _field_cell_link(cell, slide, can_review)) for cell in cells],
        "can_review": can_review,
        "can_change": can_review and not slide.is_locked and slide.status in REVIEWABLE_STATUSES,
        "add_form": FieldCellAddForm(),
        "not_white_cell": ExclusionCategory.NOT_WHITE_CELL,
        "box_min_side": FIELD_BOX_MIN_SIDE,
    }
    return render(request, "review/field_detail.html", context)


def _field_cell_link(cell: FieldCell, slide: Slide, can_review: bool) -> str:
    """Where a box leads: the cell on the review screen for a pathologist, else the cell's image."""
    if can_review and cell.prediction is not None:
        return f"{reverse('review:slide_review', args=[slide.pk])}?cell={cell.prediction.pk}"
    return reverse("cases:cell_image_file", args=[cell.cell_image.pk])


@require_POST
@permission_needed("review.add_review")
def field_cell_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a cell the locator missed: a box (field pixels) drawn or typed on the field view."""
    field_image = get_object_or_404(field_image_visible_queryset(request.user), pk=pk)
    form = FieldCellAddForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the box as whole numbers of field pixels: x, y, width and height.")
        return redirect("review:field_detail", pk=field_image.pk)
    data = form.cleaned_data
    _run_review_action(
        request,
        lambda: field_cell_add_and_classify(
            actor=request.user,
            field_image=field_image,
            box=(data["x"], data["y"], data["width"], data["height"]),
            reason=data["reason"],
        ),
        "The cell is added to the slide; a worker classifies it now.",
    )
    return redirect("review:field_detail", pk=field_image.pk)


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
