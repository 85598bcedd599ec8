"""The classifier's panel on the slide page (registered in ``apps.py``): the submit button and
the live progress of the slide's latest job."""

from django.http import HttpRequest

from cases.models import Slide, SlideStatus
from cases.panels import Panel, PanelPage
from cases.selectors import cell_image_visible_queryset
from classifier.domain import slide_domain
from classifier.selectors import inference_job_fields, inference_job_progress, slide_classification


def slide_classification_context(request: HttpRequest, slide: Slide) -> dict:
    user = request.user
    job, model_version = slide_classification(user=user, slide=slide)
    can_see_predictions = user.has_perm("classifier.view_prediction")
    return {
        "slide": slide,
        "job": job,
        "model_version": model_version,
        "cell_count": (
            cell_image_visible_queryset(user).filter(slide=slide).count()
            if job and can_see_predictions
            else 0
        ),
        "elapsed_seconds": inference_job_progress(job)["elapsed_seconds"] if job and job.started_at else None,
        "can_submit": slide.status == SlideStatus.DRAFT and user.has_perm("classifier.add_inferencejob"),
        "domain": slide_domain(slide=slide, model_version=model_version) if job else None,
        "job_fields": inference_job_fields(job) if job else None,
    }


PANELS = (
    Panel(
        page=PanelPage.SLIDE,
        name="classification",
        order=20,
        template_name="classifier/slide_panel.html",
        context=slide_classification_context,
    ),
)
