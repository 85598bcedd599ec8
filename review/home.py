"""The pathologist's worklist on the home page (registered in ``apps.py``): its first slides, urgent
first and longest waiting first, with a link to the whole list."""

from django.conf import settings
from django.http import HttpRequest

from core.home import HomeSection
from review.selectors import slide_worklist


def home_worklist_context(request: HttpRequest) -> dict | None:
    if not request.user.has_perm("review.add_review"):
        return None
    slides = slide_worklist(user=request.user)
    return {"slides": list(slides[: settings.HEMATOVISION_WORKLIST_HOME_SIZE]), "total": slides.count()}


HOME_SECTIONS = (
    HomeSection(
        name="worklist",
        order=5,
        template_name="review/home_worklist.html",
        context=home_worklist_context,
    ),
)
