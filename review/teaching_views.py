"""Teaching pages: pathologists build, assign and read proficiency sets; trainees take them.

A trainee's pages and image URLs name only the set, its items (by position) and the attempt:
never a patient, slide or cell image id.
"""

import csv
import io
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classifier.gradcam import gradcam_request
from core.csv_safety import csv_cell_escape
from core.permissions import any_permission_needed, permission_needed
from review.presenters import class_json
from review.scoped_images import cell_image_pixels_response, gradcam_png_or_status
from review.selectors import differential_classes
from review.teaching_forms import AssignForm, ProficiencySetForm
from review.teaching_models import ProficiencyAttempt
from review.teaching_selectors import (
    CONFUSION_COLUMN_NAMES,
    RESULT_COLUMNS,
    proficiency_attempt_answers,
    proficiency_attempt_own_queryset,
    proficiency_attempt_result,
    proficiency_attempt_visible_queryset,
    proficiency_item_for_image,
    proficiency_result_rows,
    proficiency_set_assigned_queryset,
    proficiency_set_items,
    proficiency_set_managed_queryset,
    proficiency_set_results,
    proficiency_source_predictions,
    proficiency_trainee_history,
)
from review.teaching_services import (
    proficiency_answer_record,
    proficiency_attempt_finish,
    proficiency_attempt_finish_if_expired,
    proficiency_attempt_start,
    proficiency_results_export_record,
    proficiency_set_assign,
    proficiency_set_create,
)

TAKE = "review.add_proficiencyattempt"
TEACH = "review.view_proficiencyset"


# Trainees and pathologists (each page then scopes what the user may see).
teaching_user_needed = any_permission_needed(TAKE, TEACH)


# --- Pathologists -------------------------------------------------------------------------------------------


@require_GET
@permission_needed(TEACH)
def set_list_view(request: HttpRequest) -> HttpResponse:
    sets = (
        proficiency_set_managed_queryset(request.user)
        .annotate(cell_count=Count("items"))
        .order_by("-created_at")
    )
    return render(request, "review/teaching/set_list.html", {"sets": sets})


@require_http_methods(["GET", "POST"])
@permission_needed("review.add_proficiencyset")
def set_create_view(request: HttpRequest) -> HttpResponse:
    form = ProficiencySetForm(request.POST or None)
    status = 200
    if form.is_valid():
        try:
            proficiency_set = proficiency_set_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                criteria=form.criteria(),
                size=form.cleaned_data["size"],
                time_limit_minutes=form.cleaned_data["time_limit_minutes"],
            )
        except ValidationError as error:
            form.add_error(None, error)
            status = 400
        else:
            messages.success(
                request, f"Set “{proficiency_set.name}” built with {proficiency_set.items.count()} cells."
            )
            return redirect("teaching:set_detail", pk=proficiency_set.pk)
    elif form.is_bound:
        status = 400
    matching = proficiency_source_predictions(criteria=form.criteria()).count() if form.is_valid() else None
    return render(
        request, "review/teaching/set_create.html", {"form": form, "matching": matching}, status=status
    )


@require_GET
@permission_needed(TEACH)
def set_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    proficiency_set = get_object_or_404(proficiency_set_managed_queryset(request.user), pk=pk)
    results, most_missed = proficiency_set_results(proficiency_set=proficiency_set)
    context = {
        "set": proficiency_set,
        "items": proficiency_set_items(proficiency_set=proficiency_set),
        "assignments": proficiency_set.assignments.select_related("trainee", "group", "assigned_by"),
        "assign_form": AssignForm(),
        "results": results,
        "most_missed": most_missed[:10],
        "can_assign": request.user.has_perm("review.add_proficiencyset"),
    }
    return render(request, "review/teaching/set_detail.html", context)


@require_POST
@permission_needed("review.add_proficiencyset")
def set_assign_view(request: HttpRequest, pk: int) -> HttpResponse:
    proficiency_set = get_object_or_404(proficiency_set_managed_queryset(request.user), pk=pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose trainees or groups from the lists.")
        return redirect("teaching:set_detail", pk=pk)
    try:
        created = proficiency_set_assign(
            actor=request.user,
            proficiency_set=proficiency_set,
            trainees=form.cleaned_data["trainees"],
            groups=form.cleaned_data["groups"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Assigned to {len(created)} more trainee(s) or group(s).")
    return redirect("teaching:set_detail", pk=pk)


@require_GET
@permission_needed(TEACH)
def set_results_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    proficiency_set = get_object_or_404(proficiency_set_managed_queryset(request.user), pk=pk)
    rows = proficiency_result_rows(proficiency_set=proficiency_set)
    proficiency_results_export_record(
        actor=request.user, proficiency_set=proficiency_set, row_count=len(rows)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESULT_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell_escape(row[column]) for column in RESULT_COLUMNS])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="proficiency-set-{proficiency_set.pk}-results.csv"'
    )
    return response


# --- Trainees -----------------------------------------------------------------------------------------------


@require_GET
@permission_needed(TAKE)
def my_sets_view(request: HttpRequest) -> HttpResponse:
    sets = list(
        proficiency_set_assigned_queryset(request.user)
        .annotate(cell_count=Count("items"))
        .order_by("-created_at")
    )
    attempts = list(proficiency_attempt_own_queryset(request.user).order_by("-started_at"))
    for attempt in attempts:
        if not attempt.finished:
            proficiency_attempt_finish_if_expired(attempt=attempt)
    for proficiency_set in sets:
        proficiency_set.my_attempts = [a for a in attempts if a.proficiency_set_id == proficiency_set.pk]
        proficiency_set.open_attempt = next((a for a in proficiency_set.my_attempts if not a.finished), None)
    history = proficiency_trainee_history(trainee=request.user)
    return render(request, "review/teaching/my_sets.html", {"sets": sets, "history": history})


@require_POST
@permission_needed(TAKE)
def attempt_start_view(request: HttpRequest, pk: int) -> HttpResponse:
    proficiency_set = get_object_or_404(proficiency_set_assigned_queryset(request.user), pk=pk)
    attempt = proficiency_attempt_start(actor=request.user, proficiency_set=proficiency_set)
    return redirect("teaching:attempt_take", pk=attempt.pk)


def _own_attempt(request: HttpRequest, pk: int) -> ProficiencyAttempt:
    return get_object_or_404(proficiency_attempt_own_queryset(request.user), pk=pk)


@require_GET
@permission_needed(TAKE)
def attempt_take_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The keyboard screen: every cell of the set in the page, answers posted in the background;
    no reference and no model answer until the attempt is finished."""
    attempt = _own_attempt(request, pk)
    if proficiency_attempt_finish_if_expired(attempt=attempt) or attempt.finished:
        return redirect("teaching:attempt_result", pk=attempt.pk)
    answers = proficiency_attempt_answers(attempt=attempt)
    image_url = item_url_maker("teaching:item_image", attempt.proficiency_set_id)
    items = [
        {
            "id": item.pk,
            "position": item.position,
            "image_url": image_url(item.pk),
            "answer": answers[item.pk].label if item.pk in answers else None,
            "unsure": answers[item.pk].unsure if item.pk in answers else False,
        }
        for item in proficiency_set_items(proficiency_set=attempt.proficiency_set)
    ]
    # The model's four classes, with the keys the review screen gives them.
    classes = [class_json(cell_class) for cell_class in differential_classes() if cell_class.is_model_class]
    data = {
        "items": items,
        "answer_url": reverse("teaching:attempt_answer", args=[attempt.pk]),
        "deadline": attempt.deadline.isoformat() if attempt.deadline else None,
        "classes": classes,
    }
    context = {
        "attempt": attempt,
        "set": attempt.proficiency_set,
        "take_data": data,
        "classes": [(item["value"], item["name"], (item["keys"] or [""])[0]) for item in classes],
    }
    return render(request, "review/teaching/attempt_take.html", context)


def item_url_maker(name: str, set_id: int) -> Callable[[int], str]:
    """``reverse(name, args=[set_id, item_id])`` resolved once for all the items of a set."""
    marker = 2147483646
    head, tail = reverse(name, args=[set_id, marker]).rsplit(str(marker), 1)
    return lambda item_id: f"{head}{int(item_id)}{tail}"


@require_POST
@permission_needed(TAKE)
def attempt_answer_view(request: HttpRequest, pk: int) -> JsonResponse:
    attempt = _own_attempt(request, pk)
    item_id = request.POST.get("item", "")
    item = attempt.proficiency_set.items.filter(pk=item_id).first() if item_id.isdigit() else None
    if item is None:
        return JsonResponse({"error": "No such cell in this set."}, status=400)
    try:
        answer = proficiency_answer_record(
            actor=request.user,
            attempt=attempt,
            item=item,
            label=request.POST.get("label", ""),
            unsure=request.POST.get("unsure") in ("1", "true", "on"),
        )
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"item": item.pk, "label": answer.label, "unsure": answer.unsure})


@require_POST
@permission_needed(TAKE)
def attempt_finish_view(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = _own_attempt(request, pk)
    try:
        proficiency_attempt_finish(actor=request.user, attempt=attempt)
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
    return redirect("teaching:attempt_result", pk=attempt.pk)


@require_GET
@teaching_user_needed
def attempt_result_view(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = get_object_or_404(proficiency_attempt_visible_queryset(request.user), pk=pk)
    proficiency_attempt_finish_if_expired(attempt=attempt)
    if not attempt.finished:
        if attempt.trainee_id == request.user.pk:
            return redirect("teaching:attempt_take", pk=attempt.pk)
        raise Http404("This attempt is still in progress.")
    result = proficiency_attempt_result(attempt=attempt)
    image_url = item_url_maker("teaching:item_image", attempt.proficiency_set_id)
    gradcam_url = item_url_maker("teaching:item_gradcam", attempt.proficiency_set_id)
    gradcam_request_url = item_url_maker("teaching:item_gradcam_request", attempt.proficiency_set_id)
    missed = [
        {
            "missed": entry,
            "image_url": image_url(entry.item.pk),
            "gradcam_url": gradcam_url(entry.item.pk),
            "gradcam_request_url": gradcam_request_url(entry.item.pk),
        }
        for entry in result.missed
    ]
    context = {
        "attempt": attempt,
        "set": attempt.proficiency_set,
        "result": result,
        "missed": missed,
        "confusion_columns": CONFUSION_COLUMN_NAMES,
        "history": proficiency_trainee_history(trainee=attempt.trainee),
    }
    return render(request, "review/teaching/attempt_result.html", context)


# --- Cell images and Grad-CAM through the set --------------------------------------------------------------


def _item(request: HttpRequest, set_pk: int, pk: int, *, after_finish: bool = False):  # noqa: ANN202
    item = proficiency_item_for_image(user=request.user, set_id=set_pk, item_id=pk, after_finish=after_finish)
    if item is None:
        raise Http404("No such cell in a set you may see.")
    return item


@require_GET
@teaching_user_needed
def item_image_view(request: HttpRequest, set_pk: int, pk: int) -> HttpResponse:
    return cell_image_pixels_response(_item(request, set_pk, pk).cell_image)


@require_GET
@teaching_user_needed
def item_gradcam_view(request: HttpRequest, set_pk: int, pk: int) -> HttpResponse:
    return gradcam_png_or_status(_item(request, set_pk, pk, after_finish=True).prediction)


@require_POST
@teaching_user_needed
def item_gradcam_request_view(request: HttpRequest, set_pk: int, pk: int) -> JsonResponse:
    """Queue the overlay for a worker (nothing is computed in the request)."""
    gradcam = gradcam_request(prediction=_item(request, set_pk, pk, after_finish=True).prediction)
    return JsonResponse({"status": gradcam.status}, status=202)
