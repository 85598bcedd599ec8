"""The consults panel on the slide page, and the home page's teaching and consult sections
(registered in ``apps.py``)."""

from django.http import HttpRequest

from cases.models import Slide
from cases.panels import Panel, PanelPage
from core.home import HomeSection
from review.consult_selectors import (
    consult_agreement,
    consult_as_consultant_queryset,
    consult_cell_rows,
    inbox_unread_count,
    slide_consults,
)
from review.consult_services import CONSULT_SLIDE_STATUSES
from review.teaching_selectors import proficiency_set_assigned_queryset


def slide_consults_context(request: HttpRequest, slide: Slide) -> dict | None:
    if not request.user.has_perm("review.add_consult"):
        return None
    consults = []
    for consult in slide_consults(slide=slide):
        rows = consult_cell_rows(consult=consult)
        consults.append({"consult": consult, "rows": rows, "agreement": consult_agreement(rows)})
    return {"slide": slide, "consults": consults, "can_request": slide.status in CONSULT_SLIDE_STATUSES}


def teaching_home_context(request: HttpRequest) -> dict | None:
    user = request.user
    if user.has_perm("review.add_proficiencyattempt"):
        return {"role": "trainee", "assigned": proficiency_set_assigned_queryset(user).count()}
    if user.has_perm("review.view_proficiencyset"):
        return {"role": "teacher"}
    return None


def consults_home_context(request: HttpRequest) -> dict | None:
    user = request.user
    if not (user.has_perm("review.add_consultlabel") or user.has_perm("review.add_consult")):
        return None
    return {
        "unread": inbox_unread_count(user=user),
        "to_answer": consult_as_consultant_queryset(user).count(),
    }


CONSULT_PANELS = (
    Panel(
        page=PanelPage.SLIDE,
        name="consults",
        order=15,
        template_name="review/consults/slide_panel.html",
        context=slide_consults_context,
    ),
)
HOME_SECTIONS = (
    HomeSection(
        name="teaching", order=40, template_name="review/teaching/home.html", context=teaching_home_context
    ),
    HomeSection(
        name="consults", order=41, template_name="review/consults/home.html", context=consults_home_context
    ),
)
