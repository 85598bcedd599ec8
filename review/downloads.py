"""Result exports as HTTP downloads, each recorded in the audit trail; shared by the HTML pages
and the API."""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse

from cases.models import SlideStatus
from review.exports import ExportScope, export_rows, rows_to_csv, rows_to_json
from review.fhir import FHIR_MEDIA_TYPE, slide_fhir_bundle
from review.selectors import slide_signature_latest
from review.services import results_export_record

EXPORT_FORMATS = ("csv", "json", "fhir")


def export_response(*, request: HttpRequest, scope: ExportScope, export_format: str) -> HttpResponse:
    """The file for a scope, recorded in the audit trail (shared by the HTML and API views)."""
    if export_format == "fhir":
        return _fhir_response(request=request, scope=scope)
    rows = export_rows(user=request.user, scope=scope)
    results_export_record(
        actor=request.user, scope=scope.describe(), export_format=export_format, cell_count=len(rows)
    )
    if export_format == "json":
        response = HttpResponse(rows_to_json(rows, scope=scope), content_type="application/json")
    else:
        response = HttpResponse(rows_to_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{scope.file_stem()}.{export_format}"'
    return response


def _fhir_response(*, request: HttpRequest, scope: ExportScope) -> HttpResponse:
    signature = slide_signature_latest(slide=scope.slide) if scope.slide is not None else None
    if signature is None or scope.slide.status != SlideStatus.SIGNED:
        return JsonResponse({"detail": "A FHIR report exists only for a signed slide."}, status=409)
    bundle = slide_fhir_bundle(signature=signature)
    results_export_record(
        actor=request.user,
        scope={**scope.describe(), "signature_version": signature.version},
        export_format="fhir",
        cell_count=signature.differential["total"],
    )
    response = HttpResponse(json.dumps(bundle, indent=2), content_type=FHIR_MEDIA_TYPE)
    response["Content-Disposition"] = (
        f'attachment; filename="{scope.file_stem()}-v{signature.version}.fhir.json"'
    )
    return response
