"""Proficiency sets: building one from verified cells, assigning it, and trainees' attempts.

Each write is audited in its transaction: set created, set assigned, attempt started, attempt
finished (by the trainee, or when its time limit ran out), results exported.
"""

import random
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditAction
from audit.services import audit_event_record
from classifier.models import CellClass
from core.api import CONFLICT_CODE
from core.permissions import actor_permission_require
from review.teaching_models import (
    ProficiencyAnswer,
    ProficiencyAssignment,
    ProficiencyAttempt,
    ProficiencySet,
    ProficiencySetItem,
)
from review.teaching_selectors import (
    SourceCriteria,
    proficiency_attempt_result,
    proficiency_set_assigned_queryset,
    proficiency_source_predictions,
)

MAX_SET_SIZE = 200
MAX_TIME_LIMIT_MINUTES = 24 * 60


class TeachingError(ValidationError):
    """The set, assignment or attempt is not allowed as asked."""


class TeachingStateError(TeachingError):
    """The attempt's state does not allow this now: finished, or out of time (the API answers 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=CONFLICT_CODE)


def _check_set_request(
    *, name: str, size: int, time_limit_minutes: int | None, criteria: SourceCriteria
) -> None:
    if not name:
        raise TeachingError("Give the set a name.")
    if not 1 <= size <= MAX_SET_SIZE:
        raise TeachingError(f"A set has 1 to {MAX_SET_SIZE} cells.")
    if time_limit_minutes is not None and not 1 <= time_limit_minutes <= MAX_TIME_LIMIT_MINUTES:
        raise TeachingError(f"The time limit is 1 to {MAX_TIME_LIMIT_MINUTES} minutes, or none.")
    if criteria.label and criteria.label not in CellClass.values:
        raise TeachingError(f"Unknown class {criteria.label!r}.")
    if not 0 <= criteria.min_confidence <= criteria.max_confidence <= 1:
        raise TeachingError("The confidence range must run from a lower to a higher value within 0–100 %.")


@transaction.atomic
def proficiency_set_create(
    *,
    actor: User,
    name: str,
    criteria: SourceCriteria,
    size: int,
    time_limit_minutes: int | None = None,
    seed: int | None = None,
) -> ProficiencySet:
    """A set of up to ``size`` verified cells of signed slides matching ``criteria``, drawn at random
    (``seed`` makes the draw repeatable). The reference label and the model's answer are copied into
    each item, so a later amendment of the slide does not change the set."""
    actor_permission_require(actor, "review.add_proficiencyset")
    name = name.strip()
    _check_set_request(name=name, size=size, time_limit_minutes=time_limit_minutes, criteria=criteria)
    candidates = list(proficiency_source_predictions(criteria=criteria).order_by("id"))
    if not candidates:
        raise TeachingError("No verified cell of a signed slide matches these filters; widen them.")
    # Which cells teach is not a secret: a seedable generator keeps a draw repeatable in tests.
    chosen = random.Random(seed).sample(  # noqa: S311
        candidates, min(size, len(candidates))
    )
    proficiency_set = ProficiencySet.objects.create(
        name=name, created_by=actor, time_limit_minutes=time_limit_minutes, criteria=criteria.as_dict()
    )
    ProficiencySetItem.objects.bulk_create(
        ProficiencySetItem(
            proficiency_set=proficiency_set,
            position=position,
            cell_image_id=prediction.cell_image_id,
            prediction=prediction,
            reference_label=prediction.review_label,
            model_label=prediction.label,
            model_confidence=prediction.confidence,
        )
        for position, prediction in enumerate(chosen, start=1)
    )
    audit_event_record(
        action=AuditAction.PROFICIENCY_SET_CREATED,
        actor=actor,
        target=proficiency_set,
        after={
            "name": name,
            "criteria": criteria.as_dict(),
            "cells": len(chosen),
            "cell_image_ids": [prediction.cell_image_id for prediction in chosen],
            "time_limit_minutes": time_limit_minutes,
        },
    )
    return proficiency_set


@transaction.atomic
def proficiency_set_assign(
    *, actor: User, proficiency_set: ProficiencySet, trainees: Iterable[User], groups: Iterable[Group]
) -> list[ProficiencyAssignment]:
    """Give the set to trainees and/or groups; ones it is already assigned to are skipped."""
    actor_permission_require(actor, "review.add_proficiencyset")
    trainees, groups = list(trainees), list(groups)
    if not trainees and not groups:
        raise TeachingError("Choose at least one trainee or group.")
    not_trainees = [user.username for user in trainees if user.role != Role.TRAINEE]
    if not_trainees:
        raise TeachingError(f"Only trainees take proficiency sets: {', '.join(not_trainees)}.")
    existing = ProficiencyAssignment.objects.filter(proficiency_set=proficiency_set)
    known_trainees = set(existing.values_list("trainee_id", flat=True))
    known_groups = set(existing.values_list("group_id", flat=True))
    created = [
        ProficiencyAssignment.objects.create(proficiency_set=proficiency_set, trainee=user, assigned_by=actor)
        for user in trainees
        if user.pk not in known_trainees
    ] + [
        ProficiencyAssignment.objects.create(proficiency_set=proficiency_set, group=group, assigned_by=actor)
        for group in groups
        if group.pk not in known_groups
    ]
    if created:
        audit_event_record(
            action=AuditAction.PROFICIENCY_SET_ASSIGNED,
            actor=actor,
            target=proficiency_set,
            after={
                "trainees": [a.trainee.username for a in created if a.trainee_id],
                "groups": [a.group.name for a in created if a.group_id],
            },
        )
    return created


def _ensure_takes(actor: User, proficiency_set: ProficiencySet) -> None:
    actor_permission_require(actor, "review.add_proficiencyattempt")
    if not proficiency_set_assigned_queryset(actor).filter(pk=proficiency_set.pk).exists():
        raise PermissionDenied("This set is not assigned to you.")


@transaction.atomic
def proficiency_attempt_start(*, actor: User, proficiency_set: ProficiencySet) -> ProficiencyAttempt:
    """Start an attempt, or return the one in progress (an expired one is finished first)."""
    _ensure_takes(actor, proficiency_set)
    current = (
        ProficiencyAttempt.objects.select_for_update()
        .filter(proficiency_set=proficiency_set, trainee=actor, finished_at__isnull=True)
        .first()
    )
    if current is not None and not proficiency_attempt_finish_if_expired(attempt=current):
        return current
    now = timezone.now()
    limit = proficiency_set.time_limit_minutes
    attempt = ProficiencyAttempt.objects.create(
        proficiency_set=proficiency_set,
        trainee=actor,
        started_at=now,
        deadline=now + timedelta(minutes=limit) if limit else None,
    )
    audit_event_record(
        action=AuditAction.PROFICIENCY_ATTEMPT_STARTED,
        actor=actor,
        target=attempt,
        after={"set_id": proficiency_set.pk, "deadline": attempt.deadline},
    )
    return attempt


def _attempt_lock_open(attempt: ProficiencyAttempt) -> ProficiencyAttempt:
    locked = (
        ProficiencyAttempt.objects.select_for_update().select_related("proficiency_set").get(pk=attempt.pk)
    )
    if locked.finished:
        raise TeachingStateError("This attempt is finished; start a new one to try again.")
    return locked


def proficiency_answer_record(
    *, actor: User, attempt: ProficiencyAttempt, item: ProficiencySetItem, label: str, unsure: bool = False
) -> ProficiencyAnswer:
    """The trainee's class for one cell (a later answer to the same cell replaces it while the
    attempt runs). Refused after the time limit, which then finishes the attempt (in a
    transaction of its own, so the refusal does not undo it)."""
    _ensure_takes(actor, attempt.proficiency_set)
    if attempt.trainee_id != actor.pk:
        raise PermissionDenied("This is another trainee's attempt.")
    if label not in CellClass.values:
        raise TeachingError(f"Unknown class {label!r}.")
    if item.proficiency_set_id != attempt.proficiency_set_id:
        raise TeachingError("This cell is not part of the attempt's set.")
    already_finished = ProficiencyAttempt.objects.filter(pk=attempt.pk, finished_at__isnull=False).exists()
    if not already_finished and proficiency_attempt_finish_if_expired(attempt=attempt):
        raise TeachingStateError("The time limit has run out: the attempt is finished.")
    return _answer_write(attempt=attempt, item=item, label=label, unsure=unsure)


@transaction.atomic
def _answer_write(
    *, attempt: ProficiencyAttempt, item: ProficiencySetItem, label: str, unsure: bool
) -> ProficiencyAnswer:
    locked = _attempt_lock_open(attempt)
    if locked.deadline is not None and timezone.now() >= locked.deadline:
        raise TeachingStateError("The time limit has run out.")
    answer, _ = ProficiencyAnswer.objects.update_or_create(
        attempt=locked, item=item, defaults={"label": label, "unsure": unsure}
    )
    return answer


def _attempt_finish_locked(*, actor: User, attempt: ProficiencyAttempt, expired: bool) -> ProficiencyAttempt:
    now = timezone.now()
    attempt.finished_at = min(now, attempt.deadline) if expired and attempt.deadline else now
    attempt.save(update_fields=["finished_at"])
    result = proficiency_attempt_result(attempt=attempt)
    audit_event_record(
        action=AuditAction.PROFICIENCY_ATTEMPT_FINISHED,
        actor=actor,
        target=attempt,
        after={
            "set_id": attempt.proficiency_set_id,
            "correct": result.correct,
            "total": result.total,
            "answered": result.answered,
            "unsure": result.unsure,
            "time_limit_ran_out": expired,
        },
    )
    return attempt


@transaction.atomic
def proficiency_attempt_finish(*, actor: User, attempt: ProficiencyAttempt) -> ProficiencyAttempt:
    """The trainee hands the attempt in; unanswered cells count as missed."""
    _ensure_takes(actor, attempt.proficiency_set)
    if attempt.trainee_id != actor.pk:
        raise PermissionDenied("This is another trainee's attempt.")
    locked = _attempt_lock_open(attempt)
    expired = locked.deadline is not None and timezone.now() >= locked.deadline
    return _attempt_finish_locked(actor=actor, attempt=locked, expired=expired)


@transaction.atomic
def proficiency_attempt_finish_if_expired(*, attempt: ProficiencyAttempt) -> bool:
    """Finish an unfinished attempt whose time limit has passed (recorded as the trainee's, with
    ``time_limit_ran_out``); True if it is finished now."""
    locked = ProficiencyAttempt.objects.select_for_update().select_related("trainee").get(pk=attempt.pk)
    if locked.finished:
        return True
    if locked.deadline is None or timezone.now() < locked.deadline:
        return False
    _attempt_finish_locked(actor=locked.trainee, attempt=locked, expired=True)
    attempt.finished_at = locked.finished_at
    return True


def proficiency_results_export_record(
    *, actor: User, proficiency_set: ProficiencySet, row_count: int
) -> None:
    actor_permission_require(actor, "review.view_proficiencyset")
    audit_event_record(
        action=AuditAction.PROFICIENCY_RESULTS_EXPORTED,
        actor=actor,
        target=proficiency_set,
        after={"format": "csv", "rows": row_count},
    )
