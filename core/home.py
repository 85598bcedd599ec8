"""Sections of the home page that apps contribute: ``core`` knows no app, so each app registers
its section (a template and the context it needs) in ``AppConfig.ready()``. A section whose
context function returns ``None`` is not shown to that user."""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.template.loader import render_to_string


@dataclass(frozen=True)
class HomeSection:
    name: str
    order: int  # smaller first
    template_name: str
    context: Callable[[HttpRequest], dict | None]


_sections: dict[str, HomeSection] = {}


def home_section_register(section: HomeSection) -> None:
    """Idempotent by name, so a second ``ready()`` (tests, autoreload) does not double it."""
    _sections[section.name] = section


def home_sections_render(*, request: HttpRequest) -> list[str]:
    rendered = []
    for section in sorted(_sections.values(), key=lambda s: s.order):
        context = section.context(request)
        if context is not None:
            rendered.append(render_to_string(section.template_name, context, request=request))
    return rendered
