from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cases.models import CellImage, FieldImage, ImageKind, Patient, Slide
from cases.selectors import (
    cell_image_list,
    cell_image_visible_queryset,
    field_image_visible_queryset,
    patient_list,
    slide_list,
)
from cases.serializers import (
    CellImageSerializer,
    CellImageUploadSerializer,
    FieldImageSerializer,
    PatientSerializer,
    SlideSerializer,
    SlideUpdateSerializer,
    UploadResultSerializer,
)
from cases.services import (
    PATIENT_EDITABLE_FIELDS,
    SLIDE_EDITABLE_FIELDS,
    cell_images_upload,
    patient_create,
    patient_update,
    slide_create,
    slide_update,
)
from core.api import ActionPermissions
from core.images import IMAGE_FORMATS

# Every file refused (per-file results), no file sent at all, or an unknown image kind.
UPLOAD_REFUSED = PolymorphicProxySerializer(
    component_name="UploadRefused",
    serializers=[
        UploadResultSerializer,
        inline_serializer("NoFiles", {"files": serializers.ListField(child=serializers.CharField())}),
        inline_serializer("UnknownKind", {"kind": serializers.ListField(child=serializers.CharField())}),
    ],
    resource_type_field_name=None,
)


class _CreateUpdateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    http_method_names = ["get", "post", "patch", "head", "options"]


class PatientViewSet(_CreateUpdateViewSet):
    """Patients. Search with ``?search=`` (MRN or name)."""

    serializer_class = PatientSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("cases.view_patient",),
        "retrieve": ("cases.view_patient",),
        "create": ("cases.add_patient",),
        "partial_update": ("cases.view_patient", "cases.change_patient"),
    }
    filterset_fields = ["mrn", "sex", "date_of_birth"]
    ordering_fields = ["mrn", "family_name", "date_of_birth", "created_at"]

    def get_queryset(self) -> QuerySet[Patient]:
        return patient_list(user=self.request.user, search=self.request.query_params.get("search", ""))

    def perform_create(self, serializer: PatientSerializer) -> None:
        data = serializer.validated_data
        fields = {name: value for name, value in data.items() if name in PATIENT_EDITABLE_FIELDS}
        serializer.instance = patient_create(actor=self.request.user, **fields)

    def perform_update(self, serializer: PatientSerializer) -> None:
        changes = {
            name: value
            for name, value in serializer.validated_data.items()
            if name in PATIENT_EDITABLE_FIELDS
        }
        serializer.instance = patient_update(
            actor=self.request.user,
            patient=serializer.instance,
            changes=changes,
            reason=serializer.validated_data.get("correction_reason", ""),
        )


class SlideViewSet(_CreateUpdateViewSet):
    """Slides. Filter by ``status``, ``patient`` or ``accession_number``; search with ``?search=``."""

    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("cases.view_slide",),
        "retrieve": ("cases.view_slide",),
        "create": ("cases.add_slide",),
        "partial_update": ("cases.view_slide", "cases.change_slide"),
        "cell_images": ("cases.view_slide", "cases.view_cellimage"),
        "cell_images_upload": ("cases.view_slide", "cases.add_cellimage"),
        "field_images": ("cases.view_slide", "cases.view_cellimage"),
    }
    filterset_fields = ["status", "patient", "accession_number", "stain", "priority"]
    ordering_fields = ["collected_at", "received_at", "accession_number", "created_at"]

    def get_queryset(self) -> QuerySet[Slide]:
        return slide_list(user=self.request.user, search=self.request.query_params.get("search", ""))

    def get_serializer_class(self) -> type[SlideSerializer]:
        return SlideUpdateSerializer if self.action == "partial_update" else SlideSerializer

    def perform_create(self, serializer: SlideSerializer) -> None:
        slide = slide_create(actor=self.request.user, **serializer.validated_data)
        slide.cell_image_count = 0
        serializer.instance = slide

    def perform_update(self, serializer: SlideSerializer) -> None:
        changes = {
            name: value for name, value in serializer.validated_data.items() if name in SLIDE_EDITABLE_FIELDS
        }
        slide = slide_update(actor=self.request.user, slide=serializer.instance, changes=changes)
        slide.cell_image_count = serializer.instance.cell_image_count
        serializer.instance = slide

    @extend_schema(responses=CellImageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="cell-images", url_name="cell-images")
    def cell_images(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(cell_image_list(user=request.user, slide=self.get_object()))
        return self.get_paginated_response(CellImageSerializer(page, many=True).data)

    @extend_schema(responses=FieldImageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="field-images", url_name="field-images")
    def field_images(self, request: Request, pk: str) -> Response:
        fields = field_image_visible_queryset(request.user).filter(slide=self.get_object()).order_by("id")
        page = self.paginate_queryset(fields)
        return self.get_paginated_response(FieldImageSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": CellImageUploadSerializer},
        responses={201: UploadResultSerializer, 400: UPLOAD_REFUSED},
    )
    @cell_images.mapping.post
    def cell_images_upload(self, request: Request, pk: str) -> Response:
        """Upload many images (field ``files``, repeated); zip archives are expanded. ``kind``:
        ``cell``, ``field`` or ``auto`` (default, from each image's size)."""
        slide = self.get_object()
        files = request.FILES.getlist("files")
        if not files:
            return Response({"files": ["Send at least one file in the 'files' field."]}, status=400)
        kind = request.data.get("kind") or ImageKind.AUTO
        if kind not in ImageKind.values:
            return Response({"kind": [f"Must be one of {', '.join(ImageKind.values)}."]}, status=400)
        outcomes = cell_images_upload(actor=request.user, slide=slide, files=files, kind=kind)
        accepted = sum(outcome.accepted for outcome in outcomes)
        body = UploadResultSerializer(
            {"accepted": accepted, "rejected": len(outcomes) - accepted, "results": outcomes}
        ).data
        return Response(body, status=status.HTTP_201_CREATED if accepted else status.HTTP_400_BAD_REQUEST)


class CellImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Cell images (metadata); ``/file/`` streams the stored image."""

    serializer_class = CellImageSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("cases.view_cellimage",),
        "retrieve": ("cases.view_cellimage",),
        "file": ("cases.view_cellimage",),
    }
    filterset_fields = ["slide", "sha256", "field_image", "source"]

    def get_queryset(self) -> QuerySet[CellImage]:
        return cell_image_visible_queryset(self.request.user).order_by("id")

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str) -> FileResponse:
        cell_image = self.get_object()
        response = FileResponse(
            cell_image.file.open("rb"), content_type=IMAGE_FORMATS[cell_image.image_format].content_type
        )
        response["Cache-Control"] = f"private, max-age={settings.HEMATOVISION_CELL_IMAGE_CACHE_SECONDS}"
        return response


class FieldImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Whole microscope fields (metadata); ``/file/`` streams the stored field. A field's located
    and added cells are ``/api/cell-images/?field_image=<id>``."""

    serializer_class = FieldImageSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": ("cases.view_cellimage",),
        "retrieve": ("cases.view_cellimage",),
        "file": ("cases.view_cellimage",),
    }
    filterset_fields = ["slide", "sha256"]

    def get_queryset(self) -> QuerySet[FieldImage]:
        return field_image_visible_queryset(self.request.user).order_by("id")

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str) -> FileResponse:
        field_image = self.get_object()
        response = FileResponse(
            field_image.file.open("rb"), content_type=IMAGE_FORMATS[field_image.image_format].content_type
        )
        response["Cache-Control"] = f"private, max-age={settings.HEMATOVISION_CELL_IMAGE_CACHE_SECONDS}"
        return response
