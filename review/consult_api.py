"""REST endpoints of consults (second opinions): the requester's and the consultant's list, one
consult with its cells (images through the consult) and, where the blind rule allows, the primary
labels, the model's and the agreement; requesting, labelling, the opinion and closing.

The rules are the services' and selectors' (``consult_services``, ``consult_selectors``), as on the
pages: a consultant reaches a consult only while it is open or answered and inside its window
(404 otherwise), never the patient, the slide or a cell image's own URL.
"""

from datetime import timedelta

from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from cases.models import Slide
from cases.selectors import slide_visible_queryset
from classifier.models import CellClass
from core.api import CONFLICT_RESPONSE, ActionPermissions
from review.consult_models import Consult, ConsultStatus
from review.consult_selectors import (
    ConsultCellRow,
    consult_agreement,
    consult_as_consultant_queryset,
    consult_as_pathologist_queryset,
    consult_cell_rows,
    consult_is_accessible_to_consultant,
    consult_mine_queryset,
    consult_shows_primary,
    consult_visible_queryset,
)
from review.consult_services import consult_answer, consult_close, consult_label_record, consult_request
from review.scoped_images import cell_image_pixels_response

ANSWER = "review.add_consultlabel"  # pathologists and consultants
REQUEST = "review.add_consult"  # pathologists
VIEWER_ROLES = ("requester", "consultant", "colleague")


class ConsultSlideSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null for the consultant")
    accession_number = serializers.CharField(allow_null=True, help_text="Null for the consultant")
    collected_at = serializers.DateTimeField()
    stain = serializers.CharField()


class ConsultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConsultStatus.choices)
    viewer_role = serializers.ChoiceField(
        choices=VIEWER_ROLES,
        help_text="The caller's part: who asked, who answers (while the consult is open to them), "
        "or another pathologist of the slide",
    )
    slide = ConsultSlideSerializer()
    requested_by = serializers.CharField()
    consultant = serializers.CharField()
    question = serializers.CharField()
    blind = serializers.BooleanField(
        help_text="The consultant sees neither the primary labels nor the model's"
    )
    requested_at = serializers.DateTimeField()
    access_until = serializers.DateTimeField()
    answered_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    cells = serializers.IntegerField(help_text="How many cells the consult asks about")


class ConsultCellSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    image_url = serializers.CharField(help_text="The cell's pixels as a PNG, through the consult")
    consultant_label = serializers.ChoiceField(choices=CellClass.choices, allow_null=True)
    consultant_comment = serializers.CharField(allow_blank=True)
    prediction = serializers.IntegerField(allow_null=True, help_text="Null for the consultant")
    model_label = serializers.ChoiceField(
        choices=CellClass.choices, allow_null=True, help_text="Null for the consultant of a blind consult"
    )
    primary_label = serializers.CharField(
        allow_null=True,
        help_text="The primary pathologist's current review; null for the consultant of a blind consult",
    )
    agrees = serializers.BooleanField(allow_null=True, help_text="Null until both have labelled the cell")


class AgreementSerializer(serializers.Serializer):
    compared = serializers.IntegerField()
    agreed = serializers.IntegerField()
    percent = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True, help_text="Cohen's kappa over the cells labelled by both")


class ConsultDetailSerializer(ConsultSerializer):
    opinion = serializers.CharField(allow_blank=True)
    can_label = serializers.BooleanField()
    can_close = serializers.BooleanField()
    cell_list = ConsultCellSerializer(many=True)
    agreement = AgreementSerializer(allow_null=True, help_text="Null for the consultant of a blind consult")


class ConsultRequestSerializer(serializers.Serializer):
    slide = serializers.PrimaryKeyRelatedField(queryset=Slide.objects.none(), help_text="A slide in review")
    consultant = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), help_text="An active pathologist (not oneself) or consultant"
    )
    question = serializers.CharField(max_length=4000, allow_blank=True)
    blind = serializers.BooleanField(default=True)
    access_days = serializers.IntegerField(
        min_value=1, max_value=30, default=7, help_text="The access window"
    )
    cells = serializers.ListField(
        child=serializers.IntegerField(),
        default=list,
        help_text="Prediction ids of the slide's counted cells; none: every counted classified cell",
    )

    def __init__(self, *args, user: User | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:  # the schema builds the serializer without a caller
            self.fields["slide"].queryset = slide_visible_queryset(user)


class ConsultLabelCreateSerializer(serializers.Serializer):
    cell = serializers.IntegerField(help_text="The consult cell's id (``cell_list[].id``)")
    label = serializers.ChoiceField(choices=CellClass.choices)
    comment = serializers.CharField(max_length=2000, allow_blank=True, default="")


class ConsultLabelSerializer(serializers.Serializer):
    cell = serializers.IntegerField()
    label = serializers.ChoiceField(choices=CellClass.choices)
    comment = serializers.CharField(allow_blank=True)
    labelled_at = serializers.DateTimeField()


class OpinionSerializer(serializers.Serializer):
    opinion = serializers.CharField(max_length=8000, allow_blank=True)


def _as_consultant(consult: Consult, user: User) -> bool:
    return (
        consult.consultant_id == user.pk
        and user.has_perm(ANSWER)
        and consult_is_accessible_to_consultant(consult)
    )


def _viewer_role(consult: Consult, user: User) -> str:
    if _as_consultant(consult, user):
        return "consultant"
    return "requester" if consult.requested_by_id == user.pk else "colleague"


def _summary(consult: Consult, user: User, cell_count: int) -> dict:
    as_consultant = _as_consultant(consult, user)
    slide = consult.slide
    return {
        "id": consult.pk,
        "status": consult.status,
        "viewer_role": _viewer_role(consult, user),
        # The consultant learns the slide's collection date and stain, never what names the patient.
        "slide": {
            "id": None if as_consultant else slide.pk,
            "accession_number": None if as_consultant else slide.accession_number,
            "collected_at": slide.collected_at,
            "stain": slide.stain,
        },
        "requested_by": consult.requested_by.display_name,
        "consultant": consult.consultant.display_name,
        "question": consult.question,
        "blind": consult.blind,
        "requested_at": consult.requested_at,
        "access_until": consult.access_until,
        "answered_at": consult.answered_at,
        "closed_at": consult.closed_at,
        "cells": cell_count,
    }


def _cell(
    request: Request, consult: Consult, row: ConsultCellRow, *, shows_primary: bool, as_consultant: bool
):  # noqa: ANN202
    cell = row.consult_cell
    image = reverse("api:consult-cell-image", args=[consult.pk, cell.pk])
    return {
        "id": cell.pk,
        "position": cell.position,
        "image_url": request.build_absolute_uri(image),
        "consultant_label": row.consultant_label,
        "consultant_comment": row.consultant_comment,
        "prediction": None if as_consultant else cell.prediction_id,
        "model_label": cell.prediction.label if shows_primary else None,
        "primary_label": row.primary_label if shows_primary else None,
        "agrees": row.agrees if shows_primary else None,
    }


def consult_detail_body(request: Request, consult: Consult) -> dict:
    """The consult as the caller may read it (the blind rule applied), with every cell."""
    user = request.user
    rows = consult_cell_rows(consult=consult)
    as_consultant = _as_consultant(consult, user)
    shows_primary = consult_shows_primary(consult=consult, as_consultant=as_consultant)
    agreement = consult_agreement(rows)
    return {
        **_summary(consult, user, len(rows)),
        "opinion": consult.opinion,
        "can_label": as_consultant and consult.status == ConsultStatus.OPEN,
        "can_close": consult.requested_by_id == user.pk and consult.status != ConsultStatus.CLOSED,
        "cell_list": [
            _cell(request, consult, row, shows_primary=shows_primary, as_consultant=as_consultant)
            for row in rows
        ],
        "agreement": {**agreement.as_dict(), "percent": agreement.percent} if shows_primary else None,
    }


class ConsultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Consults. The list holds the caller's own: the ones they asked and the ones they answer now
    (open or answered, inside the window). Pathologists request (``POST``) and close; the consultant
    labels cells (``labels/``, until the opinion) and answers (``answer/``)."""

    serializer_class = ConsultSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": (ANSWER,),
        "retrieve": (ANSWER,),
        "cell_image": (ANSWER,),
        "create": ("cases.view_slide", REQUEST),
        "labels": (ANSWER,),
        "answer": (ANSWER,),
        "close": (REQUEST,),
    }
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Consult]:
        user = self.request.user
        if self.action == "list":
            return (
                consult_mine_queryset(user)
                .annotate(cell_count=Count("cells"))
                .order_by("-requested_at", "-id")
            )
        if self.action in ("labels", "answer"):
            return consult_as_consultant_queryset(user)
        if self.action == "close":
            return consult_as_pathologist_queryset(user)
        return consult_visible_queryset(user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        body = [_summary(consult, request.user, consult.cell_count) for consult in page]
        return self.get_paginated_response(ConsultSerializer(body, many=True).data)

    @extend_schema(responses=ConsultDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(self.get_object())

    def _detail(self, consult: Consult, response_status: int = status.HTTP_200_OK) -> Response:
        return Response(
            ConsultDetailSerializer(consult_detail_body(self.request, consult)).data, status=response_status
        )

    @extend_schema(
        request=ConsultRequestSerializer, responses={201: ConsultDetailSerializer, 409: CONFLICT_RESPONSE}
    )
    def create(self, request: Request) -> Response:
        """Ask a pathologist or consultant about a slide in review (they are notified)."""
        serializer = ConsultRequestSerializer(data=request.data, user=request.user)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        consult = consult_request(
            actor=request.user,
            slide=data["slide"],
            consultant=data["consultant"],
            question=data["question"],
            access_until=timezone.now() + timedelta(days=data["access_days"]),
            blind=data["blind"],
            prediction_ids=data["cells"],
        )
        return self._detail(consult, status.HTTP_201_CREATED)

    @extend_schema(
        request=ConsultLabelCreateSerializer, responses={200: ConsultLabelSerializer, 409: CONFLICT_RESPONSE}
    )
    @action(detail=True, methods=["post"])
    def labels(self, request: Request, pk: str) -> Response:
        """The consultant's class (and comment) for one cell; it may change until the opinion."""
        consult = self.get_object()
        serializer = ConsultLabelCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        cell = consult.cells.filter(pk=data["cell"]).first()
        if cell is None:
            raise serializers.ValidationError({"cell": ["No such cell in this consult."]})
        label = consult_label_record(
            actor=request.user,
            consult=consult,
            consult_cell=cell,
            label=data["label"],
            comment=data["comment"],
        )
        body = {
            "cell": cell.pk,
            "label": label.label,
            "comment": label.comment,
            "labelled_at": label.labelled_at,
        }
        return Response(ConsultLabelSerializer(body).data)

    @extend_schema(
        request=OpinionSerializer, responses={200: ConsultDetailSerializer, 409: CONFLICT_RESPONSE}
    )
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str) -> Response:
        """The consultant's written opinion; the labels are final from then on (the requester is notified)."""
        consult = self.get_object()
        serializer = OpinionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._detail(
            consult_answer(actor=request.user, consult=consult, opinion=serializer.validated_data["opinion"])
        )

    @extend_schema(request=None, responses={200: ConsultDetailSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        """The requester closes the consult; the consultant's access ends with it."""
        return self._detail(consult_close(actor=request.user, consult=self.get_object()))

    @extend_schema(
        parameters=[OpenApiParameter("cell_id", int, OpenApiParameter.PATH)],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path=r"cells/(?P<cell_id>[0-9]+)/image", url_name="cell-image")
    def cell_image(self, request: Request, pk: str, cell_id: str) -> HttpResponse:
        """A cell of the consult, re-encoded as a PNG of its pixels alone (no file name, no metadata)."""
        consult = self.get_object()
        cell = get_object_or_404(consult.cells.select_related("prediction__cell_image"), pk=cell_id)
        return cell_image_pixels_response(cell.prediction.cell_image)
