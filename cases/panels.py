"""Pages of this app that the apps built on it fill in: they contribute panels (a template and
the context it needs), so ``cases`` shows their work without importing them.

An app registers its panels in ``AppConfig.ready()``; a page renders the panels registered for
it in order. A panel whose context function returns ``None`` is not shown to that user.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.db.models import Model
from django.http import HttpRequest
from django.template.loader import render_to_string


class PanelPage(StrEnum):
    SLIDE = "slide"
    PATIENT = "patient"


@dataclass(frozen=True)
class Panel:
    page: PanelPage
    name: str
    order: int  # smaller first
    template_name: str
    # (request, the page's object) → the template's context, or None to hide the panel.
    context: Callable[[HttpRequest, Model], dict | None]
    # A panel that shows the slide's cells itself replaces the page's plain image grid.
    shows_cells: bool = False


@dataclass(frozen=True)
class RenderedPanel:
    name: str
    html: str
    shows_cells: bool


_panels: dict[tuple[PanelPage, str], Panel] = {}


def panel_register(panel: Panel) -> None:
    """Idempotent by (page, name), so a second ``ready()`` (tests, autoreload) does not double it."""
    _panels[(panel.page, panel.name)] = panel


def panels_render(*, page: PanelPage, request: HttpRequest, obj: Model) -> list[RenderedPanel]:
    rendered = []
    for panel in sorted((p for p in _panels.values() if p.page == page), key=lambda p: p.order):
        context = panel.context(request, obj)
        if context is None:
            continue
        html = render_to_string(panel.template_name, context, request=request)
        rendered.append(RenderedPanel(panel.name, html, panel.shows_cells and bool(context.get("cards"))))
    return rendered
