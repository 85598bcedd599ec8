"""``{% slide_review_panel slide %}``: review progress, signature and its history, and the review,
sign, amend and export buttons, for the slide page."""

from django import template

from cases.models import Slide, SlideStatus
from classifier.review_selectors import slide_review_progress, slide_signature_history

register = template.Library()


@register.inclusion_tag("review/slide_panel.html", takes_context=True)
def slide_review_panel(context: template.Context, slide: Slide) -> dict:
    user = context["request"].user
    if not user.has_perm("classifier.view_review"):
        return {"hidden": True}
    progress = slide_review_progress(slide=slide)
    signatures = slide_signature_history(slide=slide)
    return {
        "slide": slide,
        "progress": progress,
        "signature": signatures[0] if signatures else None,
        "signatures": signatures,
        "can_review": user.has_perm("classifier.add_review"),
        "can_sign": user.has_perm("classifier.add_slidesignature")
        and slide.status == SlideStatus.IN_REVIEW
        and progress.complete,
        "can_amend": user.has_perm("classifier.add_slideamendment") and slide.status == SlideStatus.SIGNED,
        "can_export": True,
    }
