"""``{% slide_inference_panel slide %}``: submit button, live job progress and the cell grid with
predictions, for the slide page."""

from django import template

from cases.models import SlideStatus
from classifier.models import ModelVersion
from classifier.selectors import slide_cell_cards, slide_latest_job

register = template.Library()


@register.inclusion_tag("classifier/slide_panel.html", takes_context=True)
def slide_inference_panel(context: template.Context, slide) -> dict:  # noqa: ANN001  (a cases.models.Slide)
    user = context["request"].user
    job = slide_latest_job(user=user, slide=slide)
    model_version = job.model_version if job else ModelVersion.objects.filter(is_active=True).first()
    return {
        "slide": slide,
        "job": job,
        "model_version": model_version,
        "cards": slide_cell_cards(user=user, slide=slide, model_version=model_version) if job else [],
        "can_submit": slide.status == SlideStatus.DRAFT and user.has_perm("classifier.add_inferencejob"),
        "csrf_token": context.get("csrf_token"),
        "perms": context.get("perms"),
    }
