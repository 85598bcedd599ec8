"""REST endpoints of pathologist review: record a review, exclude a cell from the differential,
retry the classification of a slide's unclassified cells, and download results (CSV, JSON, FHIR).

Included by ``hematovision_site.api_urls`` under /api/ (URL names in the ``api`` namespace).
"""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.selectors import cell_image_visible_queryset, patient_visible_queryset, slide_visible_queryset
from classifier.adaptation import ADAPTATION_MINIMUM, adaptation_run_cancel
from classifier.selectors import adaptation_run_visible_queryset, prediction_visible_queryset
from classifier.serializers import AdaptationRunSerializer
from core.api import ActionPermissions
from review.adaptation import LabCellSelection, lab_adaptation_start, lab_cell_counts
from review.downloads import export_response
from review.exports import ExportScope
from review.forms import DateRangeExportForm
from review.models import ExclusionCategory, ReviewDecision
from review.services import (
    cell_image_exclude,
    cell_image_include,
    prediction_review,
    slide_classification_retry,
)


class MethodPermissions(BasePermission):
    """Each view declares ``required_permissions = {method: (permission, ...)}``; other methods are
    refused."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        required = getattr(view, "required_permissions", {}).get(request.method.lower())
        if required is None:
            return False
        return bool(request.user and request.user.is_authenticated and request.user.has_perms(required))


EXPORT_RESPONSES = {
    (200, "text/csv"): OpenApiTypes.STR,
    (200, "application/json"): OpenApiTypes.OBJECT,
    (200, "application/fhir+json"): OpenApiTypes.OBJECT,
}


def _format_parameter(choices: list[str]) -> OpenApiParameter:
    return OpenApiParameter("as", str, enum=choices, default="csv", description="File format")


def _export_format(request: Request, allowed: tuple[str, ...]) -> str:
    requested = request.query_params.get("as", "csv")
    if requested not in allowed:
        raise serializers.ValidationError({"as": [f"Choose one of {', '.join(allowed)}."]})
    return requested


class SlideExportView(APIView):
    """Every cell of the slide with prediction, probabilities, model version, review and reviewer
    (CSV or JSON), or the FHIR R4 Bundle of a signed slide. Each download is audited."""

    permission_classes = [MethodPermissions]
    required_permissions = {"get": ("cases.view_slide", "review.view_review")}

    @extend_schema(
        parameters=[_format_parameter(["csv", "json", "fhir"])],
        responses={
            **EXPORT_RESPONSES,
            409: OpenApiResponse(
                inline_serializer("FhirNeedsSignature", {"detail": serializers.CharField()}),
                description="FHIR was asked for a slide that is not signed.",
            ),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
        export_format = _export_format(request, ("csv", "json", "fhir"))
        return export_response(request=request, scope=ExportScope(slide=slide), export_format=export_format)


class PatientExportView(APIView):
    """Every cell of every slide of the patient (CSV or JSON). Each download is audited."""

    permission_classes = [MethodPermissions]
    required_permissions = {"get": ("cases.view_patient", "review.view_review")}

    @extend_schema(parameters=[_format_parameter(["csv", "json"])], responses=EXPORT_RESPONSES)
    def get(self, request: Request, pk: int) -> HttpResponse:
        patient = get_object_or_404(patient_visible_queryset(request.user), pk=pk)
        export_format = _export_format(request, ("csv", "json"))
        return export_response(
            request=request, scope=ExportScope(patient=patient), export_format=export_format
        )


class RangeExportView(APIView):
    """Every cell of every slide collected between two dates, inclusive (CSV or JSON)."""

    permission_classes = [MethodPermissions]
    required_permissions = {"get": ("cases.view_slide", "review.view_review")}

    @extend_schema(
        parameters=[
            OpenApiParameter("collected_from", OpenApiTypes.DATE, required=True),
            OpenApiParameter("collected_to", OpenApiTypes.DATE, required=True),
            _format_parameter(["csv", "json"]),
        ],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request) -> HttpResponse:
        form = DateRangeExportForm(
            {**request.query_params.dict(), "export_format": request.query_params.get("as", "csv")}
        )
        if not form.is_valid():
            raise serializers.ValidationError(form.errors)
        data = form.cleaned_data
        scope = ExportScope(collected_from=data["collected_from"], collected_to=data["collected_to"])
        return export_response(request=request, scope=scope, export_format=data["export_format"])


class ReviewCreateSerializer(serializers.Serializer):
    label = serializers.CharField(
        max_length=16,
        help_text="The code of one of the lab's active classes (GET /review/classes/ lists them): the "
        "model's four (EOSINOPHIL, LYMPHOCYTE, MONOCYTE, NEUTROPHIL) and others such as BLAST or NRBC",
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")


ReviewSerializer = inline_serializer(
    "Review",
    {
        "id": serializers.IntegerField(),
        "prediction": serializers.IntegerField(),
        "label": serializers.CharField(),
        "decision": serializers.ChoiceField(choices=ReviewDecision.choices),
        "reason": serializers.CharField(),
        "reviewer": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "supersedes": serializers.IntegerField(allow_null=True),
    },
)


class PredictionReviewView(APIView):
    """Record a pathologist's final label for one cell; a correction needs a reason."""

    permission_classes = [MethodPermissions]
    required_permissions = {"post": ("classifier.view_prediction", "review.add_review")}

    @extend_schema(request=ReviewCreateSerializer, responses={201: ReviewSerializer})
    def post(self, request: Request, pk: int) -> Response:
        prediction = get_object_or_404(prediction_visible_queryset(request.user), pk=pk)
        serializer = ReviewCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = prediction_review(actor=request.user, prediction=prediction, **serializer.validated_data)
        body = {
            "id": review.pk,
            "prediction": review.prediction_id,
            "label": review.label,
            "decision": review.decision,
            "reason": review.reason,
            "reviewer": request.user.get_username(),
            "created_at": review.created_at,
            "supersedes": review.supersedes_id,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class CellExclusionCreateSerializer(serializers.Serializer):
    excluded = serializers.BooleanField(default=True, help_text="False withdraws the cell's exclusion")
    category = serializers.ChoiceField(
        choices=ExclusionCategory.choices, required=False, default="", help_text="Required when excluding"
    )
    reason = serializers.CharField(max_length=2000)

    def validate(self, data: dict) -> dict:
        if data["excluded"] and not data["category"]:
            raise serializers.ValidationError({"category": ["Say why the cell is excluded."]})
        return data


CellExclusionSerializer = inline_serializer(
    "CellExclusion",
    {
        "id": serializers.IntegerField(),
        "cell_image": serializers.IntegerField(),
        "excluded": serializers.BooleanField(),
        "category": serializers.CharField(),
        "reason": serializers.CharField(),
        "decided_by": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "supersedes": serializers.IntegerField(allow_null=True),
    },
)


class CellImageExclusionView(APIView):
    """Exclude a cell from its slide's differential (artefact, smudge cell, unreadable image; a
    reason is required), or withdraw the exclusion with ``excluded: false``. Excluded cells are not
    counted and no longer hold up sign-off; every decision is kept and audited."""

    permission_classes = [MethodPermissions]
    required_permissions = {"post": ("cases.view_cellimage", "review.add_cellexclusion")}

    @extend_schema(request=CellExclusionCreateSerializer, responses={201: CellExclusionSerializer})
    def post(self, request: Request, pk: int) -> Response:
        cell_image = get_object_or_404(cell_image_visible_queryset(request.user), pk=pk)
        serializer = CellExclusionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["excluded"]:
            exclusion = cell_image_exclude(
                actor=request.user, cell_image=cell_image, category=data["category"], reason=data["reason"]
            )
        else:
            exclusion = cell_image_include(actor=request.user, cell_image=cell_image, reason=data["reason"])
        body = {
            "id": exclusion.pk,
            "cell_image": exclusion.cell_image_id,
            "excluded": exclusion.excluded,
            "category": exclusion.category,
            "reason": exclusion.reason,
            "decided_by": request.user.get_username(),
            "created_at": exclusion.created_at,
            "supersedes": exclusion.supersedes_id,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class SlideClassificationRetryView(APIView):
    """Classify again, with the active model, the slide's cells that have no prediction and are
    not excluded (the model could not read them, or no model was active)."""

    permission_classes = [MethodPermissions]
    required_permissions = {"post": ("cases.view_slide", "review.add_review")}

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "ClassificationRetry",
                {"job": serializers.IntegerField(), "total": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        slide = get_object_or_404(slide_visible_queryset(request.user), pk=pk)
        job = slide_classification_retry(actor=request.user, slide=slide)
        return Response({"job": job.pk, "total": job.total}, status=status.HTTP_202_ACCEPTED)


# --- Adapting the model to the lab ---------------------------------------------------------------------


class LabAdaptationStartSerializer(serializers.Serializer):
    signed_only = serializers.BooleanField(default=True, help_text="Only cells of signed slides")
    date_from = serializers.DateField(required=False, allow_null=True, help_text="Final review on or after")
    date_to = serializers.DateField(required=False, allow_null=True, help_text="Final review on or before")

    def validate(self, data: dict) -> dict:
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError("The start date is after the end date.")
        return data

    def selection(self) -> LabCellSelection:
        data = self.validated_data
        return LabCellSelection(
            signed_only=data["signed_only"], date_from=data.get("date_from"), date_to=data.get("date_to")
        )


LabCellCountsSerializer = inline_serializer(
    "LabCellCounts",
    {
        "class_counts": serializers.DictField(child=serializers.IntegerField()),
        "total": serializers.IntegerField(),
        "slides": serializers.IntegerField(),
        "minimum_per_class": serializers.IntegerField(),
        "refusal": serializers.CharField(
            help_text="Why an adaptation would be refused; empty when it would run"
        ),
    },
)


class AdaptationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Adapt the active model to the lab from its verified cells (admins): count the cells, start a
    run (202; trained by the worker of the training queue), poll it, cancel it. The result is a
    candidate model version (``/api/model-versions/?candidate=true``), activated with a password."""

    serializer_class = AdaptationRunSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("classifier.view_adaptationrun",),
        "retrieve": ("classifier.view_adaptationrun",),
        "create": ("classifier.view_adaptationrun", "classifier.add_adaptationrun"),
        "lab_cells": ("classifier.view_adaptationrun", "classifier.add_adaptationrun"),
        "cancel": ("classifier.view_adaptationrun", "classifier.change_adaptationrun"),
    }
    filter_backends: list = []

    def get_queryset(self):  # noqa: ANN201
        return adaptation_run_visible_queryset(self.request.user)

    @extend_schema(request=LabAdaptationStartSerializer, responses={202: AdaptationRunSerializer})
    def create(self, request: Request) -> Response:
        serializer = LabAdaptationStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = lab_adaptation_start(actor=request.user, selection=serializer.selection())
        return Response(AdaptationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[LabAdaptationStartSerializer], responses=LabCellCountsSerializer)
    @action(detail=False, methods=["get"], url_path="lab-cells")
    def lab_cells(self, request: Request) -> Response:
        """The verified cells per class a run with this selection would train on."""
        serializer = LabAdaptationStartSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        counts = lab_cell_counts(selection=serializer.selection())
        return Response(
            {
                "class_counts": counts.counts,
                "total": counts.total,
                "slides": counts.slides,
                "minimum_per_class": ADAPTATION_MINIMUM,
                "refusal": counts.refusal,
            }
        )

    @extend_schema(request=None, responses=AdaptationRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """A queued run is cancelled at once, a running one at its next training step."""
        run = adaptation_run_cancel(actor=request.user, run=self.get_object())
        return Response(AdaptationRunSerializer(run).data)
