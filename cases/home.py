"""The slides-by-status section of the home page (registered in ``apps.py``)."""

from django.http import HttpRequest

from cases.selectors import slide_status_counts
from core.home import HomeSection


def slide_counts_context(request: HttpRequest) -> dict | None:
    user = request.user
    # No role yet, or a trainee's or outside consultant's: nothing of the lab's work to count.
    if not (user.has_perm("cases.view_slide") or user.has_perm("accounts.view_user")):
        return None
    return {"counts": slide_status_counts(user=user), "can_open": user.has_perm("cases.view_slide")}


HOME_SECTIONS = (
    HomeSection(
        name="slide-counts",
        order=10,
        template_name="cases/home_slide_counts.html",
        context=slide_counts_context,
    ),
)
