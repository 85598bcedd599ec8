"""``{% slide_inference slide as inference %}`` then ``{% slide_inference_panel slide inference %}``:
submit button, live job progress and the cell grid with predictions and reviews, for the slide page."""

from django import template

from cases.models import SlideStatus
from classifier.models import ModelVersion
from classifier.selectors import inference_job_progress, slide_cell_cards, slide_latest_job

register = template.Library()


@register.simple_tag(takes_context=True)
def slide_inference(context: template.Context, slide) -> dict:  # noqa: ANN001  (a cases.models.Slide)
    """The slide's latest job, its model version and the cell cards: ``{% slide_inference slide as
    inference %}``, so the page can show the plain image grid only when there are no cards."""
    user = context["request"].user
    job = slide_latest_job(user=user, slide=slide)
    model_version = job.model_version if job else ModelVersion.objects.filter(is_active=True).first()
    return {
        "job": job,
        "model_version": model_version,
        "cards": slide_cell_cards(user=user, slide=slide, model_version=model_version) if job else [],
    }


@register.inclusion_tag("classifier/slide_panel.html", takes_context=True)
def slide_inference_panel(context: template.Context, slide, inference: dict) -> dict:  # noqa: ANN001
    user = context["request"].user
    job = inference["job"]
    return {
        "slide": slide,
        **inference,
        "elapsed_seconds": inference_job_progress(job)["elapsed_seconds"] if job and job.started_at else None,
        "can_submit": slide.status == SlideStatus.DRAFT and user.has_perm("classifier.add_inferencejob"),
        "csrf_token": context.get("csrf_token"),
        "perms": context.get("perms"),
    }
