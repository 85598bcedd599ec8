"""REST endpoints of proficiency sets: pathologists build (from the same filters as the page),
assign and read the results of sets; trainees list the sets assigned to them, take an attempt
answer by answer and read their result once it is finished.

The rules are the services' and selectors' (``teaching_services``, ``teaching_selectors``), as on the
pages. What a trainee reaches names only the set, its items (by id and position) and their
attempts: never a patient, slide, accession number, file name or cell image id, and neither the
reference nor the model's answer before the attempt is finished.
"""

from django.contrib.auth.models import Group
from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from classifier.models import CellClass
from core.api import CONFLICT_RESPONSE, ActionPermissions, Conflict
from review.scoped_images import cell_image_pixels_response
from review.teaching_forms import assignable_groups
from review.teaching_models import ProficiencyAttempt, ProficiencySet
from review.teaching_selectors import (
    CONFUSION_COLUMNS,
    NO_ANSWER,
    AttemptResult,
    SourceCriteria,
    proficiency_attempt_answers,
    proficiency_attempt_own_queryset,
    proficiency_attempt_result,
    proficiency_item_for_image,
    proficiency_set_assigned_queryset,
    proficiency_set_items,
    proficiency_set_managed_queryset,
    proficiency_set_results,
    proficiency_source_predictions,
)
from review.teaching_services import (
    MAX_SET_SIZE,
    MAX_TIME_LIMIT_MINUTES,
    proficiency_answer_record,
    proficiency_attempt_finish,
    proficiency_attempt_finish_if_expired,
    proficiency_attempt_start,
    proficiency_set_assign,
    proficiency_set_create,
)

TAKE = "review.add_proficiencyattempt"  # trainees
TEACH = "review.view_proficiencyset"  # pathologists
BUILD = "review.add_proficiencyset"
MISSED_ANSWER_CHOICES = (*CellClass.choices, (NO_ANSWER, "No answer"))
ITEM_PATH = r"items/(?P<item_id>[0-9]+)/image"
ITEM_PARAMETER = OpenApiParameter("item_id", int, OpenApiParameter.PATH)
PNG = {(200, "image/png"): OpenApiTypes.BINARY}


def _item_image(request: Request, set_id: int, item_id: str) -> HttpResponse:
    item = proficiency_item_for_image(user=request.user, set_id=set_id, item_id=int(item_id))
    if item is None:
        raise exceptions.NotFound("No such cell in a set you may see.")
    return cell_image_pixels_response(item.cell_image)


def _image_url(request: Request, url_name: str, set_id: int, item_id: int) -> str:
    return request.build_absolute_uri(reverse(url_name, args=[set_id, item_id]))


# --- Serializers ------------------------------------------------------------------------------------------


class SourceCriteriaSerializer(serializers.Serializer):
    """The page's filters; confidences in percent."""

    label = serializers.ChoiceField(
        choices=[("", "Any class"), *CellClass.choices], default="", help_text="The verified class"
    )
    min_confidence = serializers.IntegerField(min_value=0, max_value=100, default=0, help_text="%")
    max_confidence = serializers.IntegerField(min_value=0, max_value=100, default=100, help_text="%")
    model_wrong_only = serializers.BooleanField(
        default=False, help_text="Only cells whose verified class differs from the model's"
    )

    def criteria(self) -> SourceCriteria:
        data = self.validated_data
        return SourceCriteria(
            label=data["label"],
            min_confidence=data["min_confidence"] / 100,
            max_confidence=data["max_confidence"] / 100,
            model_wrong_only=data["model_wrong_only"],
        )


class ProficiencySetCreateSerializer(SourceCriteriaSerializer):
    name = serializers.CharField(max_length=200, allow_blank=True)
    size = serializers.IntegerField(min_value=1, max_value=MAX_SET_SIZE, help_text="Number of cells")
    time_limit_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_TIME_LIMIT_MINUTES, allow_null=True, default=None
    )


class ProficiencySetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    time_limit_minutes = serializers.IntegerField(allow_null=True)
    criteria = serializers.DictField(help_text="The filters the cells were drawn with (confidences 0–1)")
    cells = serializers.IntegerField()


class ProficiencyItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    image_url = serializers.CharField()
    cell_image = serializers.IntegerField()
    reference_label = serializers.ChoiceField(choices=CellClass.choices)
    model_label = serializers.ChoiceField(choices=CellClass.choices)
    model_confidence = serializers.FloatField()


class ProficiencyAssignmentSerializer(serializers.Serializer):
    trainee = serializers.CharField(allow_null=True, help_text="Username; null for a group")
    group = serializers.CharField(allow_null=True, help_text="Group name; null for a trainee")
    assigned_by = serializers.CharField()
    assigned_at = serializers.DateTimeField()


class ProficiencySetDetailSerializer(ProficiencySetSerializer):
    items = ProficiencyItemSerializer(many=True)
    assignments = ProficiencyAssignmentSerializer(many=True)


class AssignSerializer(serializers.Serializer):
    trainees = serializers.PrimaryKeyRelatedField(
        many=True, queryset=User.objects.all(), default=list, help_text="User ids of trainees"
    )
    groups = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Group.objects.none(),
        default=list,
        help_text="Group ids: the trainee role's, or a group that is not a role",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].child_relation.queryset = assignable_groups()


class AssignedSerializer(serializers.Serializer):
    assigned = ProficiencyAssignmentSerializer(many=True, help_text="The assignments newly made")


class SourceCellsSerializer(serializers.Serializer):
    matching = serializers.IntegerField(help_text="Verified cells of signed slides matching the filters")


class ClassScoreSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=CellClass.choices)
    name = serializers.CharField()
    total = serializers.IntegerField()
    correct = serializers.IntegerField()
    percent = serializers.FloatField(allow_null=True)


class MissedItemSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    position = serializers.IntegerField()
    image_url = serializers.CharField()
    reference_label = serializers.ChoiceField(choices=CellClass.choices)
    answer = serializers.ChoiceField(choices=MISSED_ANSWER_CHOICES, help_text="'none': not answered")
    unsure = serializers.BooleanField()
    model_label = serializers.ChoiceField(choices=CellClass.choices)
    model_confidence = serializers.FloatField()


class AttemptResultSerializer(serializers.Serializer):
    attempt = serializers.IntegerField()
    proficiency_set = serializers.IntegerField()
    trainee = serializers.CharField(help_text="Username")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    total = serializers.IntegerField()
    correct = serializers.IntegerField()
    percent = serializers.FloatField()
    answered = serializers.IntegerField()
    unsure = serializers.IntegerField()
    classes = ClassScoreSerializer(many=True)
    confusion = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="confusion[reference][answer] = count; answers include 'none'",
    )
    missed = MissedItemSerializer(many=True)


class MostMissedSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    position = serializers.IntegerField()
    reference_label = serializers.ChoiceField(choices=CellClass.choices)
    missed = serializers.IntegerField()
    attempts = serializers.IntegerField()
    answers = serializers.DictField(
        child=serializers.IntegerField(), help_text="Answered instead, by class name"
    )


class SetResultsSerializer(serializers.Serializer):
    attempts = AttemptResultSerializer(many=True)
    most_missed = MostMissedSerializer(many=True)


class AssignedSetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    time_limit_minutes = serializers.IntegerField(allow_null=True)
    cells = serializers.IntegerField()
    open_attempt = serializers.IntegerField(allow_null=True, help_text="The attempt in progress, if any")
    finished_attempts = serializers.ListField(child=serializers.IntegerField())


class AttemptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    proficiency_set = serializers.IntegerField()
    set_name = serializers.CharField()
    started_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class AttemptItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    image_url = serializers.CharField()
    answer = serializers.ChoiceField(choices=CellClass.choices, allow_null=True)
    unsure = serializers.BooleanField()


class AttemptDetailSerializer(AttemptSerializer):
    items = AttemptItemSerializer(many=True, help_text="Neither the reference nor the model's answer")


class AnswerCreateSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="The item's id (``items[].id``)")
    label = serializers.ChoiceField(choices=CellClass.choices)
    unsure = serializers.BooleanField(default=False)


class AnswerSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    label = serializers.ChoiceField(choices=CellClass.choices)
    unsure = serializers.BooleanField()


# --- Bodies -----------------------------------------------------------------------------------------------


def _set_body(proficiency_set: ProficiencySet) -> dict:
    return {
        "id": proficiency_set.pk,
        "name": proficiency_set.name,
        "created_by": proficiency_set.created_by.display_name,
        "created_at": proficiency_set.created_at,
        "time_limit_minutes": proficiency_set.time_limit_minutes,
        "criteria": proficiency_set.criteria,
        "cells": proficiency_set.cell_count,
    }


def _assignment_body(assignment) -> dict:  # noqa: ANN001
    return {
        "trainee": assignment.trainee.username if assignment.trainee_id else None,
        "group": assignment.group.name if assignment.group_id else None,
        "assigned_by": assignment.assigned_by.username,
        "assigned_at": assignment.assigned_at,
    }


def _result_body(request: Request, result: AttemptResult, image_url_name: str) -> dict:
    attempt = result.attempt
    return {
        "attempt": attempt.pk,
        "proficiency_set": attempt.proficiency_set_id,
        "trainee": attempt.trainee.username,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "total": result.total,
        "correct": result.correct,
        "percent": result.percent,
        "answered": result.answered,
        "unsure": result.unsure,
        "classes": [vars(score) | {"percent": score.percent} for score in result.classes],
        "confusion": {
            reference: {answer: row[answer] for answer in CONFUSION_COLUMNS}
            for reference, row in result.confusion.items()
        },
        "missed": [
            {
                "item": missed.item.pk,
                "position": missed.item.position,
                "image_url": _image_url(request, image_url_name, attempt.proficiency_set_id, missed.item.pk),
                "reference_label": missed.item.reference_label,
                "answer": missed.answer,
                "unsure": missed.unsure,
                "model_label": missed.item.model_label,
                "model_confidence": round(missed.item.model_confidence, 4),
            }
            for missed in result.missed
        ],
    }


def _attempt_body(attempt: ProficiencyAttempt) -> dict:
    return {
        "id": attempt.pk,
        "proficiency_set": attempt.proficiency_set_id,
        "set_name": attempt.proficiency_set.name,
        "started_at": attempt.started_at,
        "deadline": attempt.deadline,
        "finished_at": attempt.finished_at,
    }


# --- Pathologists -----------------------------------------------------------------------------------------


class ProficiencySetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Proficiency sets, for pathologists: build one (``POST``, the same filters as the page;
    ``source-cells/`` counts the cells they match), assign it, read every trainee's results."""

    serializer_class = ProficiencySetSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": (TEACH,),
        "retrieve": (TEACH,),
        "results": (TEACH,),
        "item_image": (TEACH,),
        "source_cells": (TEACH, BUILD),
        "create": (TEACH, BUILD),
        "assign": (TEACH, BUILD),
    }
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[ProficiencySet]:
        sets = proficiency_set_managed_queryset(self.request.user)
        return sets.annotate(cell_count=Count("items")).order_by("-created_at", "-id")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            ProficiencySetSerializer([_set_body(s) for s in page], many=True).data
        )

    def _detail(self, proficiency_set: ProficiencySet, response_status: int = 200) -> Response:
        request = self.request
        items = [
            {
                "id": item.pk,
                "position": item.position,
                "image_url": _image_url(
                    request, "api:proficiency-set-item-image", proficiency_set.pk, item.pk
                ),
                "cell_image": item.cell_image_id,
                "reference_label": item.reference_label,
                "model_label": item.model_label,
                "model_confidence": round(item.model_confidence, 4),
            }
            for item in proficiency_set_items(proficiency_set=proficiency_set)
        ]
        assignments = proficiency_set.assignments.select_related("trainee", "group", "assigned_by")
        body = _set_body(proficiency_set) | {
            "items": items,
            "assignments": [_assignment_body(assignment) for assignment in assignments],
        }
        return Response(ProficiencySetDetailSerializer(body).data, status=response_status)

    @extend_schema(responses=ProficiencySetDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(self.get_object())

    @extend_schema(request=ProficiencySetCreateSerializer, responses={201: ProficiencySetDetailSerializer})
    def create(self, request: Request) -> Response:
        """Draw the cells at random from the verified cells of signed slides matching the filters;
        a filter matching none is refused (400) with nothing written."""
        serializer = ProficiencySetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = proficiency_set_create(
            actor=request.user,
            name=data["name"],
            criteria=serializer.criteria(),
            size=data["size"],
            time_limit_minutes=data["time_limit_minutes"],
        )
        return self._detail(self.get_queryset().get(pk=created.pk), 201)

    @extend_schema(parameters=[SourceCriteriaSerializer], responses=SourceCellsSerializer)
    @action(detail=False, methods=["get"], url_path="source-cells")
    def source_cells(self, request: Request) -> Response:
        """How many verified cells of signed slides match the filters (what a set would draw from)."""
        serializer = SourceCriteriaSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        matching = proficiency_source_predictions(criteria=serializer.criteria()).count()
        return Response({"matching": matching})

    @extend_schema(request=AssignSerializer, responses=AssignedSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        """Give the set to trainees and/or groups; ones it is already assigned to are skipped."""
        proficiency_set = self.get_object()
        serializer = AssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = proficiency_set_assign(
            actor=request.user,
            proficiency_set=proficiency_set,
            trainees=serializer.validated_data["trainees"],
            groups=serializer.validated_data["groups"],
        )
        return Response({"assigned": [_assignment_body(assignment) for assignment in created]})

    @extend_schema(
        parameters=[OpenApiParameter("trainee", int, description="Only this trainee's attempts (user id)")],
        responses=SetResultsSerializer,
    )
    @action(detail=True, methods=["get"])
    def results(self, request: Request, pk: str) -> Response:
        """Every finished attempt (newest first) with its full result, and the cells most often missed."""
        results, most_missed = proficiency_set_results(proficiency_set=self.get_object())
        trainee = request.query_params.get("trainee")
        if trainee is not None:
            if not trainee.isdigit():
                raise serializers.ValidationError({"trainee": ["A user id."]})
            results = [result for result in results if result.attempt.trainee_id == int(trainee)]
        body = {
            "attempts": [
                _result_body(request, result, "api:proficiency-set-item-image") for result in results
            ],
            "most_missed": [
                {
                    "item": entry.item.pk,
                    "position": entry.item.position,
                    "reference_label": entry.item.reference_label,
                    "missed": entry.missed,
                    "attempts": entry.attempts,
                    "answers": entry.answers,
                }
                for entry in most_missed
            ],
        }
        return Response(SetResultsSerializer(body).data)

    @extend_schema(parameters=[ITEM_PARAMETER], responses=PNG)
    @action(detail=True, methods=["get"], url_path=ITEM_PATH, url_name="item-image")
    def item_image(self, request: Request, pk: str, item_id: str) -> HttpResponse:
        """An item's cell, re-encoded as a PNG of its pixels alone."""
        return _item_image(request, self.get_object().pk, item_id)


# --- Trainees ---------------------------------------------------------------------------------------------


class AssignedProficiencySetViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The sets assigned to the calling trainee (directly or through a group): start an attempt
    (or resume the one in progress), read an item's cell."""

    serializer_class = AssignedSetSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {"list": (TAKE,), "start": (TAKE,), "item_image": (TAKE,)}
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[ProficiencySet]:
        sets = proficiency_set_assigned_queryset(self.request.user)
        return sets.annotate(cell_count=Count("items")).order_by("-created_at", "-id")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        attempts = list(proficiency_attempt_own_queryset(request.user).order_by("-started_at", "-id"))
        for attempt in attempts:
            if not attempt.finished:
                proficiency_attempt_finish_if_expired(attempt=attempt)
        body = []
        for proficiency_set in page:
            mine = [attempt for attempt in attempts if attempt.proficiency_set_id == proficiency_set.pk]
            body.append(
                {
                    "id": proficiency_set.pk,
                    "name": proficiency_set.name,
                    "time_limit_minutes": proficiency_set.time_limit_minutes,
                    "cells": proficiency_set.cell_count,
                    "open_attempt": next((a.pk for a in mine if not a.finished), None),
                    "finished_attempts": [a.pk for a in mine if a.finished],
                }
            )
        return self.get_paginated_response(AssignedSetSerializer(body, many=True).data)

    @extend_schema(request=None, responses=AttemptDetailSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        """Start an attempt, or resume the one in progress (one whose time ran out is finished first)."""
        attempt = proficiency_attempt_start(actor=request.user, proficiency_set=self.get_object())
        return Response(AttemptDetailSerializer(_attempt_detail_body(request, attempt)).data)

    @extend_schema(parameters=[ITEM_PARAMETER], responses=PNG)
    @action(detail=True, methods=["get"], url_path=ITEM_PATH, url_name="item-image")
    def item_image(self, request: Request, pk: str, item_id: str) -> HttpResponse:
        """An item's cell, re-encoded as a PNG of its pixels alone (no file name, no metadata)."""
        return _item_image(request, self.get_object().pk, item_id)


def _attempt_detail_body(request: Request, attempt: ProficiencyAttempt) -> dict:
    answers = proficiency_attempt_answers(attempt=attempt)
    items = [
        {
            "id": item.pk,
            "position": item.position,
            "image_url": _image_url(
                request, "api:my-proficiency-set-item-image", attempt.proficiency_set_id, item.pk
            ),
            "answer": answers[item.pk].label if item.pk in answers else None,
            "unsure": answers[item.pk].unsure if item.pk in answers else False,
        }
        for item in proficiency_set_items(proficiency_set=attempt.proficiency_set)
    ]
    return _attempt_body(attempt) | {"items": items}


class ProficiencyAttemptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The calling trainee's attempts: the cells (no reference, no model answer), answering one,
    finishing, and the result once finished. An answer after the time limit is refused (409) and
    finishes the attempt."""

    serializer_class = AttemptSerializer
    permission_classes = [ActionPermissions]
    required_permissions = {
        "list": (TAKE,),
        "retrieve": (TAKE,),
        "answer": (TAKE,),
        "finish": (TAKE,),
        "result": (TAKE,),
    }
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[ProficiencyAttempt]:
        if getattr(self, "swagger_fake_view", False):  # the schema is built without a trainee
            return ProficiencyAttempt.objects.none()
        return proficiency_attempt_own_queryset(self.request.user).order_by("-started_at", "-id")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            AttemptSerializer([_attempt_body(a) for a in page], many=True).data
        )

    @extend_schema(responses=AttemptDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        attempt = self.get_object()
        proficiency_attempt_finish_if_expired(attempt=attempt)
        return Response(AttemptDetailSerializer(_attempt_detail_body(request, attempt)).data)

    @extend_schema(request=AnswerCreateSerializer, responses={200: AnswerSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str) -> Response:
        """The trainee's class for one cell; a later answer replaces it until the attempt finishes."""
        attempt = self.get_object()
        serializer = AnswerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = attempt.proficiency_set.items.filter(pk=data["item"]).first()
        if item is None:
            raise serializers.ValidationError({"item": ["No such cell in this set."]})
        answer = proficiency_answer_record(
            actor=request.user, attempt=attempt, item=item, label=data["label"], unsure=data["unsure"]
        )
        return Response({"item": item.pk, "label": answer.label, "unsure": answer.unsure})

    @extend_schema(request=None, responses={200: AttemptResultSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def finish(self, request: Request, pk: str) -> Response:
        """Hand the attempt in (unanswered cells count as missed); answers its result."""
        attempt = proficiency_attempt_finish(actor=request.user, attempt=self.get_object())
        return self._result(attempt)

    @extend_schema(responses={200: AttemptResultSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["get"])
    def result(self, request: Request, pk: str) -> Response:
        """Score per class, confusion matrix, the missed cells with the reference and the model's
        answer: only once the attempt is finished (409 before)."""
        attempt = self.get_object()
        if not proficiency_attempt_finish_if_expired(attempt=attempt):
            raise Conflict("This attempt is still in progress: finish it first.")
        return self._result(attempt)

    def _result(self, attempt: ProficiencyAttempt) -> Response:
        result = proficiency_attempt_result(attempt=attempt)
        return Response(
            AttemptResultSerializer(
                _result_body(self.request, result, "api:my-proficiency-set-item-image")
            ).data
        )
