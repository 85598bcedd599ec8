from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from core.home import home_sections_render
from core.readiness import readiness_check


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"sections": home_sections_render(request=request)})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: answers without login and reveals nothing but "ok"."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness for orchestrators and ``make run``: database, broker, a worker answering, the
    active model verified. 200 when all pass, else 503 naming what failed (no login needed; the
    answer names components, never addresses or secrets)."""
    readiness = readiness_check()
    body = {"status": "ready" if readiness.ready else "not ready", "checked": list(readiness.checked)}
    if not readiness.ready:
        body["problems"] = readiness.problems
    return JsonResponse(body, status=200 if readiness.ready else 503)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 404 handler: an API path that matches no URL answers JSON like the rest of the API."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
