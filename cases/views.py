from collections.abc import Callable
from typing import TypeVar

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from cases.forms import CellImageDeleteForm, PatientForm, SearchForm, SlideForm
from cases.models import ImageKind, Slide, SlideStatus
from cases.panels import PanelPage, panels_render
from cases.selectors import (
    cell_image_list,
    cell_image_visible_queryset,
    field_image_visible_queryset,
    patient_list,
    patient_visible_queryset,
    slide_list,
    slide_visible_queryset,
)
from cases.services import (
    PATIENT_EDITABLE_FIELDS,
    SLIDE_EDITABLE_FIELDS,
    SlideLockedError,
    cell_image_delete,
    cell_image_delete_refusal,
    cell_images_upload,
    patient_create,
    patient_update,
    slide_create,
    slide_update,
)
from cases.uploads import FIELD_MIN_SHORT_SIDE
from core.images import IMAGE_FORMATS
from core.permissions import permission_needed

T = TypeVar("T")
PAGE_SIZE = 25


def _page(request: HttpRequest, queryset: QuerySet) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _page_query(request: HttpRequest) -> str:
    """The current filters, for the pagination links."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _changes(form: forms.Form, field_names: tuple[str, ...]) -> dict:
    return {name: form.cleaned_data[name] for name in field_names}


def _run_service(form: forms.Form, service: Callable[[], T]) -> T | None:
    """Run a service for a valid form; a ValidationError it raises goes back into the form."""
    try:
        return service()
    except ValidationError as error:
        form.add_error(None, error)
        return None


@require_GET
@permission_needed("cases.view_patient")
def patient_list_view(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET)
    term = search.cleaned_data["q"] if search.is_valid() else ""
    page = _page(request, patient_list(user=request.user, search=term))
    context = {"page": page, "term": term, "page_query": _page_query(request)}
    return render(request, "cases/patient_list.html", context)


@require_http_methods(["GET", "POST"])
@permission_needed("cases.add_patient")
def patient_create_view(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    if form.is_valid():
        fields = _changes(form, PATIENT_EDITABLE_FIELDS)
        patient = _run_service(form, lambda: patient_create(actor=request.user, **fields))
        if patient:
            messages.success(request, "Patient created.")
            return redirect("cases:patient_detail", pk=patient.pk)
    return render(request, "cases/form.html", {"form": form, "title": "New patient"})


@require_GET
@permission_needed("cases.view_patient")
def patient_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_visible_queryset(request.user), pk=pk)
    slides = slide_list(user=request.user, patient=patient)
    panels = panels_render(page=PanelPage.PATIENT, request=request, obj=patient)
    return render(
        request, "cases/patient_detail.html", {"patient": patient, "slides": slides, "panels": panels}
    )


@require_http_methods(["GET", "POST"])
@permission_needed("cases.change_patient")
def patient_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_visible_queryset(request.user), pk=pk)
    form = PatientForm(request.POST or None, instance=patient)
    if form.is_valid():
        changes = _changes(form, PATIENT_EDITABLE_FIELDS)
        reason = form.cleaned_data["correction_reason"]
        if _run_service(
            form,
            lambda: patient_update(actor=request.user, patient=patient, changes=changes, reason=reason),
        ):
            messages.success(request, "Patient updated.")
            return redirect("cases:patient_detail", pk=patient.pk)
    return render(request, "cases/form.html", {"form": form, "title": f"Edit {patient}"})


@require_GET
@permission_needed("cases.view_slide")
def slide_list_view(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET)
    term = search.cleaned_data["q"] if search.is_valid() else ""
    status = request.GET.get("status", "") if request.GET.get("status") in SlideStatus.values else ""
    page = _page(request, slide_list(user=request.user, search=term, status=status))
    context = {
        "page": page,
        "term": term,
        "status": status,
        "statuses": SlideStatus.choices,
        "page_query": _page_query(request),
    }
    return render(request, "cases/slide_list.html", context)


@require_http_methods(["GET", "POST"])
@permission_needed("cases.add_slide")
def slide_create_view(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_visible_queryset(request.user), pk=patient_pk)
    form = SlideForm(request.POST or None)
    if form.is_valid():
        slide = _run_service(
            form, lambda: slide_create(actor=request.user, patient=patient, **form.cleaned_data)
        )
        if slide:
            messages.success(request, "Slide created.")
            return redirect("cases:slide_detail", pk=slide.pk)
    return render(request, "cases/form.html", {"form": form, "title": f"New slide for {patient}"})


@require_GET
@permission_needed("cases.view_slide")
def slide_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    panels = panels_render(page=PanelPage.SLIDE, request=request, obj=slide)
    show_image_grid = not any(panel.shows_cells for panel in panels)
    context = {
        "slide": slide,
        "panels": panels,
        "show_image_grid": show_image_grid,
        "can_delete_images": request.user.has_perm("cases.delete_cellimage")
        and not cell_image_delete_refusal(slide),
    }
    if show_image_grid:
        context["cell_images"] = cell_image_list(user=request.user, slide=slide)
    return render(request, "cases/slide_detail.html", context)


def slide_locked_reason(slide: Slide) -> str:
    return (
        f"Slide {slide.accession_number} is signed, so it is read-only: its details and images cannot "
        "change until a pathologist reopens it by an amendment, with a reason."
    )


def _slide_read_only(request: HttpRequest, slide: Slide) -> HttpResponse:
    """A signed slide's edit form, every field disabled and no button; a POST is refused (409)."""
    form = SlideForm(instance=slide)
    form.read_only()
    context = {"form": form, "title": f"Slide {slide}", "locked_reason": slide_locked_reason(slide)}
    return render(request, "cases/form.html", context, status=409 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@permission_needed("cases.change_slide")
def slide_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    if slide.is_locked:
        return _slide_read_only(request, slide)
    form = SlideForm(request.POST or None, instance=slide)
    if form.is_valid():
        changes = _changes(form, SLIDE_EDITABLE_FIELDS)
        if _run_service(form, lambda: slide_update(actor=request.user, slide=slide, changes=changes)):
            messages.success(request, "Slide updated.")
            return redirect("cases:slide_detail", pk=slide.pk)
    return render(request, "cases/form.html", {"form": form, "title": f"Edit slide {slide}"})


@require_http_methods(["GET", "POST"])
@permission_needed("cases.add_cellimage")
def cell_image_upload_view(request: HttpRequest, slide_pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=slide_pk)
    context = {
        "slide": slide,
        "accept": ",".join(f".{image_format.extension}" for image_format in IMAGE_FORMATS.values())
        + ",.jpeg,.tiff,.zip",
        "max_file_megabytes": settings.HEMATOVISION_UPLOAD_MAX_FILE_BYTES // (1024 * 1024),
        "locked_reason": slide_locked_reason(slide) if slide.is_locked else "",
        "kinds": ImageKind.choices,
        "kind": request.POST.get("kind", ImageKind.AUTO),
        "field_min_short_side": FIELD_MIN_SHORT_SIDE,
        "can_delete": request.user.has_perm("cases.delete_cellimage")
        and not cell_image_delete_refusal(slide),
    }
    if slide.is_locked:
        status = 409 if request.method == "POST" else 200
        return render(request, "cases/cell_image_upload.html", context, status=status)
    if request.method == "GET":
        return render(request, "cases/cell_image_upload.html", context)
    files = request.FILES.getlist("files")
    error = "" if files else "Choose at least one file."
    if context["kind"] not in ImageKind.values:
        error = f"Choose what the images are: one of {', '.join(ImageKind.values)}."
    if error:
        return render(request, "cases/cell_image_upload.html", {**context, "error": error}, status=400)
    try:
        outcomes = cell_images_upload(actor=request.user, slide=slide, files=files, kind=context["kind"])
    except SlideLockedError as error:
        return render(
            request, "cases/cell_image_upload.html", {**context, "error": error.message}, status=409
        )
    accepted = sum(outcome.accepted for outcome in outcomes)
    status = 200 if accepted else 400
    return render(
        request,
        "cases/cell_image_upload.html",
        {**context, "outcomes": outcomes, "accepted": accepted},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@permission_needed("cases.delete_cellimage")
def cell_image_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm with a reason, then delete a wrongly uploaded image of a draft slide; once the slide
    is submitted the page says why it cannot be done (a POST is refused, 409)."""
    cell_image = get_object_or_404(cell_image_visible_queryset(request.user).select_related("slide"), pk=pk)
    slide = cell_image.slide
    form = CellImageDeleteForm(request.POST or None)
    refusal = cell_image_delete_refusal(slide)
    context = {"cell_image": cell_image, "slide": slide, "form": form, "refusal": refusal}
    if request.method == "GET":
        return render(request, "cases/cell_image_delete.html", context)
    if refusal:
        return render(request, "cases/cell_image_delete.html", context, status=409)
    if not form.is_valid():
        return render(request, "cases/cell_image_delete.html", context, status=400)
    name = cell_image.original_filename
    try:
        cell_image_delete(actor=request.user, cell_image=cell_image, reason=form.cleaned_data["reason"])
    except ValidationError as error:  # the slide was submitted meanwhile
        context["refusal"] = " ".join(error.messages)
        return render(request, "cases/cell_image_delete.html", context, status=409)
    messages.success(request, f"{name} was deleted from slide {slide.accession_number}.")
    back = "cases:cell_image_upload" if form.cleaned_data["return_to"] == "upload" else "cases:slide_detail"
    return redirect(back, slide.pk)


@require_GET
@permission_needed("cases.view_cellimage")
def cell_image_file_view(request: HttpRequest, pk: int) -> FileResponse:
    """Streams a stored image after the access check; media has no public URL."""
    cell_image = get_object_or_404(cell_image_visible_queryset(request.user), pk=pk)
    response = FileResponse(
        cell_image.file.open("rb"), content_type=IMAGE_FORMATS[cell_image.image_format].content_type
    )
    response["Content-Disposition"] = (
        f'inline; filename="cell-{cell_image.pk}.{IMAGE_FORMATS[cell_image.image_format].extension}"'
    )
    response["Cache-Control"] = f"private, max-age={settings.HEMATOVISION_CELL_IMAGE_CACHE_SECONDS}"
    return response


@require_GET
@permission_needed("cases.view_cellimage")
def field_image_file_view(request: HttpRequest, pk: int) -> FileResponse:
    """Streams a stored microscope field after the access check; media has no public URL."""
    field_image = get_object_or_404(field_image_visible_queryset(request.user), pk=pk)
    image_format = IMAGE_FORMATS[field_image.image_format]
    response = FileResponse(field_image.file.open("rb"), content_type=image_format.content_type)
    response["Content-Disposition"] = f'inline; filename="field-{field_image.pk}.{image_format.extension}"'
    response["Cache-Control"] = f"private, max-age={settings.HEMATOVISION_CELL_IMAGE_CACHE_SECONDS}"
    return response
