"""The review app's panels on the pages of ``cases`` (registered in ``apps.py``): review progress
and sign-off, the cell gallery by class, and the patient's result exports."""

from django.http import HttpRequest

from cases.models import Patient, Slide, SlideStatus
from cases.panels import Panel, PanelPage
from cases.selectors import patient_corrections
from review.gallery import gallery_context
from review.selectors import slide_review_progress, slide_signature_history


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
    }


def slide_cells_context(request: HttpRequest, slide: Slide) -> dict | None:
    """The cell gallery by class; ``cards`` tells the page the panel shows the cells."""
    context = gallery_context(request, slide, mode="slide")
    return {**context, "cards": context["gallery"].groups} if context else None


def patient_exports_context(request: HttpRequest, patient: Patient) -> dict | None:
    return {"patient": patient} if request.user.has_perm("review.view_review") else None


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
        name="cells",
        order=30,
        template_name="review/slide_cells.html",
        context=slide_cells_context,
        shows_cells=True,
    ),
    Panel(
        page=PanelPage.PATIENT,
        name="exports",
        order=10,
        template_name="review/patient_exports.html",
        context=patient_exports_context,
    ),
)
