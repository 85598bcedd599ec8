"""Consult pages: the request (from a slide in review), the inbox, the consultant's review of the
cells and opinion, the requester's view of agreement and the closing.

A consultant reaches a slide only here: every page and image looks the consult up through
``consult_selectors`` (addressed to them, not closed, inside the window) and answers 404 otherwise.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.selectors import slide_visible_queryset
from classifier.models import CellClass, Prediction
from core.permissions import any_permission_needed, permission_needed
from review.consult_forms import ConsultRequestForm, OpinionForm
from review.consult_models import Consult, ConsultStatus
from review.consult_selectors import (
    consult_agreement,
    consult_as_consultant_queryset,
    consult_as_pathologist_queryset,
    consult_cell_rows,
    consult_shows_primary,
    consult_visible,
    inbox_messages,
)
from review.consult_services import (
    consult_answer,
    consult_close,
    consult_label_record,
    consult_request,
    inbox_message_read,
)
from review.scoped_images import cell_image_pixels_response
from review.selectors import current_predictions

ANSWER = "review.add_consultlabel"
REQUEST = "review.add_consult"


# Pathologists and consultants (each page then scopes what the user may see).
consult_user_needed = any_permission_needed(ANSWER, REQUEST)


def _consult(request: HttpRequest, pk: int) -> Consult:
    consult = consult_visible(user=request.user, pk=pk)
    if consult is None:
        raise Http404("No such consult open to you.")
    return consult


def _as_consultant(request: HttpRequest, consult: Consult) -> bool:
    return consult_as_consultant_queryset(request.user).filter(pk=consult.pk).exists()


@require_GET
@consult_user_needed
def inbox_view(request: HttpRequest) -> HttpResponse:
    context = {
        "inbox": list(inbox_messages(user=request.user)[:50]),
        "to_answer": consult_as_consultant_queryset(request.user).order_by("access_until"),
        "requested": consult_as_pathologist_queryset(request.user).filter(requested_by=request.user),
    }
    return render(request, "review/consults/inbox.html", context)


def _slide_predictions(slide) -> list[Prediction]:  # noqa: ANN001
    return list(
        current_predictions(Prediction.objects.filter(cell_image__slide=slide))
        .filter(excluded=False)
        .select_related("cell_image")
        .order_by("cell_image_id")
    )


@require_http_methods(["GET", "POST"])
@permission_needed(REQUEST)
def consult_request_view(request: HttpRequest, pk: int) -> HttpResponse:
    slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
    form = ConsultRequestForm(
        request.POST or None, requester=request.user, predictions=_slide_predictions(slide)
    )
    status = 200
    if form.is_valid():
        try:
            consult = consult_request(
                actor=request.user,
                slide=slide,
                consultant=form.cleaned_data["consultant"],
                question=form.cleaned_data["question"],
                access_until=form.access_until(),
                blind=form.cleaned_data["blind"],
                prediction_ids=form.prediction_ids(),
            )
        except ValidationError as error:
            form.add_error(None, error)
            status = 400
        else:
            messages.success(request, f"Consult sent to {consult.consultant.display_name}.")
            return redirect("consults:consult_detail", pk=consult.pk)
    elif form.is_bound:
        status = 400
    return render(request, "review/consults/request.html", {"slide": slide, "form": form}, status=status)


@require_GET
@consult_user_needed
def consult_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    consult = _consult(request, pk)
    inbox_message_read(user=request.user, consult=consult)
    rows = consult_cell_rows(consult=consult)
    as_consultant = _as_consultant(request, consult)
    context = {
        "consult": consult,
        "rows": rows,
        "agreement": consult_agreement(rows),
        "as_consultant": as_consultant,
        "show_primary": consult_shows_primary(consult=consult, as_consultant=as_consultant),
        "can_label": as_consultant and consult.status == ConsultStatus.OPEN,
        "can_close": consult.requested_by_id == request.user.pk and consult.status != ConsultStatus.CLOSED,
        "classes": CellClass.choices,
        "opinion_form": OpinionForm(),
    }
    return render(request, "review/consults/detail.html", context)


@require_POST
@permission_needed(ANSWER)
def consult_labels_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the consultant's labels of the cells posted (``label-<cell id>``, ``comment-<cell id>``)."""
    consult = get_object_or_404(consult_as_consultant_queryset(request.user), pk=pk)
    saved = 0
    try:
        for cell in consult.cells.all():
            label = request.POST.get(f"label-{cell.pk}", "")
            if label:
                consult_label_record(
                    actor=request.user,
                    consult=consult,
                    consult_cell=cell,
                    label=label,
                    comment=request.POST.get(f"comment-{cell.pk}", ""),
                )
                saved += 1
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{saved} label{'s' if saved != 1 else ''} saved.")
    return redirect("consults:consult_detail", pk=pk)


@require_POST
@permission_needed(ANSWER)
def consult_answer_view(request: HttpRequest, pk: int) -> HttpResponse:
    consult = get_object_or_404(consult_as_consultant_queryset(request.user), pk=pk)
    form = OpinionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write your opinion: answering a consult needs one.")
        return redirect("consults:consult_detail", pk=pk)
    try:
        consult_answer(actor=request.user, consult=consult, opinion=form.cleaned_data["opinion"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Opinion sent; the requester is notified.")
    return redirect("consults:consult_detail", pk=pk)


@require_POST
@permission_needed(REQUEST)
def consult_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    consult = get_object_or_404(consult_as_pathologist_queryset(request.user), pk=pk)
    try:
        consult_close(actor=request.user, consult=consult)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("consults:consult_detail", pk=pk)
    messages.success(request, "Consult closed; the consultant's access has ended.")
    return redirect("cases:slide_detail", pk=consult.slide_id)


@require_GET
@consult_user_needed
def consult_cell_image_view(request: HttpRequest, pk: int, cell_pk: int) -> HttpResponse:
    consult = _consult(request, pk)
    cell = get_object_or_404(consult.cells.select_related("prediction__cell_image"), pk=cell_pk)
    return cell_image_pixels_response(cell.prediction.cell_image)
