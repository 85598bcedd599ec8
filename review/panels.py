"""The review app's panels on the pages of ``cases`` (registered in ``apps.py``): review progress
and sign-off, the cell gallery by class, and the patient's earlier results with their exports."""

from django.http import HttpRequest

from cases.models import Patient, Slide, SlideStatus
from cases.panels import Panel, PanelPage
from cases.selectors import patient_corrections
from review.forms import SlideTargetForm, SlideWbcCountForm
from review.gallery import gallery_context
from review.history import patient_signed_points, result_history
from review.selectors import (
    slide_count_target,
    slide_fields,
    slide_review_progress,
    slide_signature_history,
)


def slide_review_context(request: HttpRequest, slide: Slide) -> dict | None:
    user = request.user
    if not user.has_perm("review.view_review"):
        return None
    progress = slide_review_progress(slide=slide)
    signatures = slide_signature_history(slide=slide)
    signature = signatures[0] if signatures else None
    return {
        "slide": slide,
        "progress": progress,
        "signature": signature,
        "signature_corrections": patient_corrections(patient=slide.patient, since=signature.signed_at)
        if signature is not None and slide.status == SlideStatus.SIGNED
        else [],
        "signatures": signatures,
        "can_review": user.has_perm("review.add_review"),
        "can_sign": user.has_perm("review.add_slidesignature")
        and slide.status == SlideStatus.IN_REVIEW
        and progress.complete,
        "can_amend": user.has_perm("review.add_slideamendment") and slide.status == SlideStatus.SIGNED,
        "can_export": True,
        "target": slide_count_target(slide=slide),
        "can_set_target": user.has_perm("cases.change_slide_target_count") and not slide.is_locked,
        "can_enter_wbc_count": user.has_perm("cases.change_slide") and not slide.is_locked,
        "target_form": SlideTargetForm(),
        "wbc_count_form": SlideWbcCountForm(),
    }


def slide_cells_context(request: HttpRequest, slide: Slide) -> dict | None:
    """The cell gallery by class; ``cards`` tells the page the panel shows the cells."""
    context = gallery_context(request, slide, mode="slide")
    return {**context, "cards": context["gallery"].groups} if context else None


def patient_results_context(request: HttpRequest, patient: Patient) -> dict | None:
    """The patient's signed results (table, trend, delta flags) and their exports."""
    user = request.user
    if not (user.has_perm("review.view_review") and user.has_perm("review.view_slidesignature")):
        return None
    return {
        "patient": patient,
        "history": result_history(points=patient_signed_points(user=user, patient=patient)),
    }


def slide_fields_context(request: HttpRequest, slide: Slide) -> dict | None:
    """The slide's whole microscope fields, each with what the worker found on it."""
    fields = list(slide_fields(user=request.user, slide=slide))
    if not fields:
        return None
    return {"fields": fields, "can_open": request.user.has_perm("classifier.view_prediction")}


PANELS = (
    Panel(
        page=PanelPage.SLIDE,
        name="review",
        order=10,
        template_name="review/slide_panel.html",
        context=slide_review_context,
    ),
    Panel(
        page=PanelPage.SLIDE,
        name="fields",
        order=25,
        template_name="review/slide_fields.html",
        context=slide_fields_context,
    ),
    Panel(
        page=PanelPage.SLIDE,
        name="cells",
        order=30,
        template_name="review/slide_cells.html",
        context=slide_cells_context,
        shows_cells=True,
    ),
    Panel(
        page=PanelPage.PATIENT,
        name="results",
        order=10,
        template_name="review/patient_results.html",
        context=patient_results_context,
    ),
)
