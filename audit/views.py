from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.exports import audit_events_csv_lines
from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from audit.selectors import audit_event_list
from audit.services import audit_trail_export_record
from core.permissions import permission_needed

PAGE_SIZE = 50


def _filtered_events(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    form = AuditFilterForm(request.GET or None)
    filters = form.selector_filters() if form.is_valid() else {}
    return form, audit_event_list(user=request.user, **filters)


@require_GET
@permission_needed("audit.view_auditevent")
def event_list_view(request: HttpRequest) -> HttpResponse:
    form, events = _filtered_events(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {"form": form, "page": page, "page_query": params.urlencode()}
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "audit/event_list.html", context, status=status)


@require_GET
@permission_needed("audit.view_auditevent")
def event_export_csv_view(request: HttpRequest) -> HttpResponse:
    form, events = _filtered_events(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            "Invalid filters: " + form.errors.as_text(), status=400, content_type="text/plain"
        )
    export_event = audit_trail_export_record(
        actor=request.user,
        filters={key: value for key, value in request.GET.items() if key in form.fields},
        event_count=events.count(),
    )
    # The export's own event is not part of what was exported.
    rows = events.filter(id__lt=export_event.pk).iterator(chunk_size=2000)
    response = StreamingHttpResponse(audit_events_csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = f"audit-{timezone.now():%Y%m%dT%H%M%SZ}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
