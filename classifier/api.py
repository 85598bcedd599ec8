"""REST endpoints of the inference pipeline. Submitting and classifying answer 202 with a job
to poll; no request runs the model."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import LOCKED_OUT_RESPONSE
from cases.selectors import slide_visible_queryset
from cases.uploads import UploadRejected
from classifier.domain import slide_domain
from classifier.models import ModelVersion
from classifier.selectors import (
    inference_job_visible_queryset,
    model_version_list,
    quick_classification_visible_queryset,
    slide_predictions,
)
from classifier.serializers import (
    InferenceJobCreateSerializer,
    InferenceJobSerializer,
    ModelActivationSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    QuickClassificationCreateSerializer,
    QuickClassificationSerializer,
    SlideDomainAssessmentSerializer,
)
from classifier.services import (
    inference_job_create,
    model_version_activate_confirmed,
    quick_classification_create,
    slide_submit,
)
from core.api import ActionPermissions


class SlideInferenceViewSet(viewsets.GenericViewSet):
    """Submit a slide for classification and read its predictions."""

    permission_classes = [ActionPermissions]
    required_permissions = {
        "submit": ("cases.view_slide", "classifier.add_inferencejob"),
        "predictions": ("cases.view_slide", "classifier.view_prediction"),
        "domain": ("cases.view_slide", "classifier.view_prediction"),
    }
    # Only looks a slide up by id: the default ordering filter needs fields this view does not
    # have, and answered ?ordering=x with a server error.
    filter_backends: list = []

    def get_queryset(self):  # noqa: ANN201
        return slide_visible_queryset(self.request.user)

    @extend_schema(request=None, responses={202: InferenceJobSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Draft → submitted; queues a job classifying every cell image of the slide."""
        job = slide_submit(actor=request.user, slide=self.get_object())
        return Response(InferenceJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("model_version", str, description="Only this model version's")],
        responses=PredictionSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def predictions(self, request: Request, pk: str) -> Response:
        """Every prediction of the slide's cells, one per (cell image, model version)."""
        slide = self.get_object()
        name = request.query_params.get("model_version")
        model_version = get_object_or_404(ModelVersion, name=name) if name else None
        predictions = slide_predictions(user=request.user, slide=slide, model_version=model_version)
        page = self.paginate_queryset(predictions)
        return self.get_paginated_response(PredictionSerializer(page, many=True).data)

    @extend_schema(responses={200: SlideDomainAssessmentSerializer})
    @action(detail=True, methods=["get"])
    def domain(self, request: Request, pk: str) -> Response:
        """The slide's domain verdict: whether its cells lie inside the model's validated domain
        (decided when its latest job finished). 404 while the slide has none."""
        assessment = slide_domain(slide=self.get_object()).assessment
        if assessment is None:
            return Response(
                {"detail": "The slide has no domain verdict yet."}, status=status.HTTP_404_NOT_FOUND
            )
        return Response(SlideDomainAssessmentSerializer(assessment).data)


class InferenceJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Inference jobs: poll one for progress; create one to re-run a slide with a model version."""

    serializer_class = InferenceJobSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("classifier.view_inferencejob",),
        "retrieve": ("classifier.view_inferencejob",),
        "create": ("classifier.view_inferencejob", "classifier.add_inferencejob"),
    }
    filterset_fields = ["slide", "status"]

    def get_queryset(self):  # noqa: ANN201
        return inference_job_visible_queryset(self.request.user).order_by("-created_at", "-id")

    @extend_schema(request=InferenceJobCreateSerializer, responses={202: InferenceJobSerializer})
    def create(self, request: Request) -> Response:
        serializer = InferenceJobCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        slide = serializer.validated_data["slide"]
        if slide.status == "draft":
            raise ValidationError({"slide": ["Submit the slide first (POST /api/slides/{id}/submit/)."]})
        job = inference_job_create(
            actor=request.user, slide=slide, model_version=serializer.validated_data.get("model_version")
        )
        if job is None:
            raise ValidationError({"slide": ["That model version has classified every cell image."]})
        return Response(InferenceJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Registered model versions; admins choose the active one (or roll back to an earlier one)
    with their password. ``?candidate=true`` lists the adapted versions not yet activated."""

    serializer_class = ModelVersionSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("classifier.view_modelversion",),
        "retrieve": ("classifier.view_modelversion",),
        "activate": ("classifier.view_modelversion", "classifier.change_modelversion"),
    }
    filter_backends: list = []

    def get_queryset(self):  # noqa: ANN201
        versions = model_version_list().select_related("parent")
        candidate = self.request.query_params.get("candidate")
        if candidate in ("true", "false"):
            versions = versions.filter(is_candidate=candidate == "true")
        return versions

    @extend_schema(
        parameters=[
            OpenApiParameter("candidate", bool, description="Only candidates (true) or only the others")
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=ModelActivationSerializer, responses={200: ModelVersionSerializer, 429: LOCKED_OUT_RESPONSE}
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        """Activate this version (a candidate, or an earlier version: a roll-back) with the admin's
        password; a wrong password is 400, audited and counted by the login lockout."""
        model_version = self.get_object()
        serializer = ModelActivationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model_version = model_version_activate_confirmed(
            actor=request.user,
            model_version=model_version,
            password=serializer.validated_data["password"],
            request=request._request,
        )
        return Response(ModelVersionSerializer(model_version).data)


class QuickClassificationViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Classify one image outside any clinical record; poll the returned status_url."""

    serializer_class = QuickClassificationSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "retrieve": ("classifier.add_quickclassification",),
        "create": ("classifier.add_quickclassification",),
    }
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):  # noqa: ANN201
        return quick_classification_visible_queryset(self.request.user)

    @extend_schema(
        request={"multipart/form-data": QuickClassificationCreateSerializer},
        responses={202: QuickClassificationSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = QuickClassificationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["image"]
        try:
            quick = quick_classification_create(
                actor=request.user, data=upload.read(), original_filename=upload.name
            )
        except UploadRejected as rejected:
            raise ValidationError({"image": [rejected.reason]}) from rejected
        body = QuickClassificationSerializer(quick, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)
