"""HTML pages and the small JSON endpoints their progress bars poll. No view runs the model."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.selectors import slide_visible_queryset
from cases.uploads import UploadRejected
from classifier.adaptation import AdaptationError, adaptation_run_cancel
from classifier.domain import confidence_reaches, threshold_validated
from classifier.forms import ModelActivationForm
from classifier.gradcam import gradcam_request
from classifier.model_files import (
    RegisteredFileChanged,
    RegisteredFileMissing,
    image_content_type,
    registered_file_read,
)
from classifier.model_pages import history_entries, model_version_page, model_version_row
from classifier.models import CellClass, GradCamStatus, ModelVersion, QuickClassificationStatus
from classifier.selectors import (
    adaptation_run_progress,
    adaptation_run_visible_queryset,
    inference_job_progress,
    inference_job_visible_queryset,
    metrics_flatten,
    model_version_activations,
    model_version_adaptation_facts,
    model_version_comparison,
    model_version_history,
    model_version_list,
    model_version_names,
    prediction_visible_queryset,
    quick_classification_visible_queryset,
    workers_available,
)
from classifier.services import (
    ModelActivationRefused,
    model_version_activate_confirmed,
    quick_classification_create,
    slide_submit,
)
from core.images import content_type_for_name
from core.permissions import permission_needed


@require_POST
@permission_needed("cases.view_slide", "classifier.add_inferencejob")
def slide_submit_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    try:
        job = slide_submit(actor=request.user, slide=slide)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Slide submitted: {job.total} cells queued for classification.")
    return redirect("cases:slide_detail", pk=slide.pk)


@require_GET
@permission_needed("classifier.view_inferencejob")
def inference_job_progress_view(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_object_or_404(inference_job_visible_queryset(request.user), pk=pk)
    return JsonResponse(inference_job_progress(job))


@require_http_methods(["GET", "POST"])
@permission_needed("classifier.add_quickclassification")
def quick_classify_view(request: HttpRequest) -> HttpResponse:
    """Upload one image; it is classified by a worker, outside any patient record."""
    if request.method == "GET":
        return _quick_classify_form(request)
    upload = request.FILES.get("image")
    if upload is None:
        return _quick_classify_form(request, error="Choose an image.", status=400)
    try:
        quick = quick_classification_create(
            actor=request.user, data=upload.read(), original_filename=upload.name
        )
    except UploadRejected as rejected:
        return _quick_classify_form(request, error=rejected.reason, status=400)
    except ValidationError as error:
        return _quick_classify_form(request, error=" ".join(error.messages), status=409)
    return redirect("classifier:quick_classify_result", pk=quick.pk)


def _quick_classify_form(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {"workers_available": workers_available(), "error": error}
    return render(request, "classifier/quick_classify.html", context, status=status)


@require_GET
@permission_needed("classifier.add_quickclassification")
def quick_classify_result_view(request: HttpRequest, pk: int) -> HttpResponse:
    quick = get_object_or_404(quick_classification_visible_queryset(request.user), pk=pk)
    bars = []
    if quick.probabilities:
        bars = [
            {"label": CellClass(name).label, "percent": round(100 * quick.probabilities[name], 1)}
            for name in CellClass.values
        ]
    waiting = quick.status in (QuickClassificationStatus.QUEUED, QuickClassificationStatus.RUNNING)
    context = {
        "quick": quick,
        "bars": bars,
        "waiting": waiting,
        "workers_available": workers_available() if waiting else True,
        "needs_review": quick.confidence is not None
        and not confidence_reaches(quick.confidence, quick.cell_review_threshold),
        "threshold_validated": threshold_validated(quick.cell_review_threshold),
    }
    return render(request, "classifier/quick_classify_result.html", context)


@require_GET
@permission_needed("classifier.add_quickclassification")
def quick_classify_status_view(request: HttpRequest, pk: int) -> JsonResponse:
    quick = get_object_or_404(quick_classification_visible_queryset(request.user), pk=pk)
    finished = quick.status in (QuickClassificationStatus.SUCCEEDED, QuickClassificationStatus.FAILED)
    return JsonResponse(
        {
            "status": quick.status,
            "status_label": quick.get_status_display(),
            "finished": finished,
            "workers_available": True if finished else workers_available(),
        }
    )


@require_GET
@permission_needed("classifier.add_quickclassification")
def quick_classify_image_view(request: HttpRequest, pk: int) -> FileResponse:
    quick = get_object_or_404(quick_classification_visible_queryset(request.user), pk=pk)
    content_type = content_type_for_name(quick.image.name)
    response = FileResponse(quick.image.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@permission_needed("classifier.view_modelversion")
def model_version_list_view(request: HttpRequest) -> HttpResponse:
    registered, activations = model_version_names(), model_version_activations()
    rows = [
        model_version_row(model_version, registered, activations.get(model_version.pk))
        for model_version in model_version_list()
    ]
    return render(request, "classifier/model_version_list.html", {"rows": rows})


@require_GET
@permission_needed("classifier.view_modelversion")
def model_version_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    model_version = get_object_or_404(model_version_list(), pk=pk)
    context = {
        "page": model_version_page(model_version, model_version_names()),
        "history": history_entries(model_version, model_version_history(model_version)),
        "metric_lines": metrics_flatten(model_version.metrics or {}),
    }
    return render(request, "classifier/model_version_detail.html", context)


@require_GET
@permission_needed("classifier.view_modelversion")
def model_version_image_view(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """A figure of the registered model directory: only image files recorded at registration,
    served only while their sha256 is still the recorded one."""
    model_version = get_object_or_404(model_version_list(), pk=pk)
    content_type = image_content_type(name)
    if content_type is None:
        raise Http404("The Models page serves only the model's registered figures.")
    try:
        data = registered_file_read(model_version, name)
    except RegisteredFileMissing as missing:
        raise Http404(str(missing)) from missing
    except RegisteredFileChanged as changed:
        return HttpResponse(str(changed), status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
@permission_needed("classifier.view_modelversion", "classifier.change_modelversion")
def model_version_activate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Activate a version, or roll back to an earlier one, after re-entering the password."""
    model_version = get_object_or_404(model_version_list(), pk=pk)
    form = ModelActivationForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            model_version_activate_confirmed(
                actor=request.user,
                model_version=model_version,
                password=form.cleaned_data["password"],
                request=request,
            )
        except ModelActivationRefused as error:
            form.add_error("password", " ".join(error.messages))
        else:
            messages.success(request, f"{model_version.name} now classifies every new job.")
            return redirect("classifier:model_version_list")
    if request.method == "POST":
        status = 400
    active = ModelVersion.objects.filter(is_active=True).first()
    context = {
        "model_version": model_version,
        "active": active,
        "rollback": active is not None and model_version.registered_at < active.registered_at,
        "form": form,
    }
    return render(request, "classifier/model_version_activate.html", context, status=status)


@require_GET
@permission_needed("classifier.view_modelversion")
def model_version_compare_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Parent vs this adapted version on the lab's held-out cells and the source validation sets."""
    model_version = get_object_or_404(model_version_list().select_related("parent"), pk=pk)
    context = {
        "model_version": model_version,
        "rows": model_version_comparison(model_version),
        "facts": model_version_adaptation_facts(model_version),
    }
    return render(request, "classifier/model_version_compare.html", context)


# --- Adaptation runs -------------------------------------------------------------------------------------


@require_GET
@permission_needed("classifier.view_adaptationrun")
def adaptation_run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(adaptation_run_visible_queryset(request.user), pk=pk)
    return render(request, "classifier/adaptation_run_detail.html", {"run": run})


@require_GET
@permission_needed("classifier.view_adaptationrun")
def adaptation_run_progress_view(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(adaptation_run_visible_queryset(request.user), pk=pk)
    return JsonResponse(adaptation_run_progress(run))


@require_POST
@permission_needed("classifier.view_adaptationrun", "classifier.change_adaptationrun")
def adaptation_run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(adaptation_run_visible_queryset(request.user), pk=pk)
    try:
        adaptation_run_cancel(actor=request.user, run=run)
    except AdaptationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Adaptation run {run.pk}: cancellation requested.")
    return redirect("classifier:adaptation_run_detail", pk=run.pk)


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
