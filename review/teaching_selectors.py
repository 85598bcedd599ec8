"""Reading proficiency sets: the verified cells a set can be built from, which sets and attempts a
user may open, and the results (score per class, confusion matrix, missed cells, history).

A trainee's access never goes through ``cases``: the sets assigned to them (directly or through a
group) decide, and an item's image is read for them through the set.
"""

from collections import Counter
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import F, Q, QuerySet

from cases.models import SlideStatus
from classifier.models import CellClass, Prediction
from review.selectors import current_predictions
from review.teaching_models import (
    ProficiencyAnswer,
    ProficiencyAttempt,
    ProficiencySet,
    ProficiencySetItem,
)

NO_ANSWER = "none"


@dataclass(frozen=True)
class SourceCriteria:
    """Which verified cells a set is built from; confidences are fractions (0–1)."""

    label: str = ""
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    model_wrong_only: bool = False

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "min_confidence": self.min_confidence,
            "max_confidence": self.max_confidence,
            "model_wrong_only": self.model_wrong_only,
        }


def proficiency_source_predictions(*, criteria: SourceCriteria) -> QuerySet[Prediction]:
    """Current predictions of cells verified on signed slides, not excluded, matching ``criteria``;
    the cell's current review label is ``review_label`` (the reference). Sets teach the model's four
    classes: a cell verified as one of the lab's other classes (a blast, a smudge cell) is left out."""
    predictions = current_predictions(
        Prediction.objects.filter(cell_image__slide__status=SlideStatus.SIGNED)
    ).filter(excluded=False, review_id__isnull=False, review_label__in=CellClass.values)
    predictions = predictions.filter(
        confidence__gte=criteria.min_confidence, confidence__lte=criteria.max_confidence
    )
    if criteria.label:
        predictions = predictions.filter(review_label=criteria.label)
    if criteria.model_wrong_only:
        predictions = predictions.filter(~Q(label=F("review_label")))
    return predictions


def _is_trainee(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and user.is_active and user.has_perm("review.add_proficiencyattempt")


def _is_teacher(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and user.is_active and user.has_perm("review.view_proficiencyset")


def proficiency_set_assigned_queryset(user: AbstractBaseUser) -> QuerySet[ProficiencySet]:
    """The sets a trainee may take: assigned to them or to a group they belong to."""
    if not _is_trainee(user):
        return ProficiencySet.objects.none()
    assigned = Q(assignments__trainee=user) | Q(assignments__group__in=user.groups.all())
    return ProficiencySet.objects.filter(
        pk__in=ProficiencySet.objects.filter(assigned).values("pk")
    ).select_related("created_by")


def proficiency_set_managed_queryset(user: AbstractBaseUser) -> QuerySet[ProficiencySet]:
    """Every set, for pathologists (who build, assign and read results)."""
    if not _is_teacher(user):
        return ProficiencySet.objects.none()
    return ProficiencySet.objects.select_related("created_by")


def proficiency_attempt_own_queryset(user: AbstractBaseUser) -> QuerySet[ProficiencyAttempt]:
    """A trainee's own attempts on sets still assigned to them."""
    return ProficiencyAttempt.objects.filter(
        trainee=user, proficiency_set__in=proficiency_set_assigned_queryset(user)
    ).select_related("proficiency_set")


def proficiency_attempt_visible_queryset(user: AbstractBaseUser) -> QuerySet[ProficiencyAttempt]:
    """Pathologists see every attempt; a trainee their own."""
    if _is_teacher(user):
        return ProficiencyAttempt.objects.select_related("proficiency_set", "trainee")
    return proficiency_attempt_own_queryset(user).select_related("trainee")


def proficiency_item_for_image(
    *, user: AbstractBaseUser, set_id: int, item_id: int, after_finish: bool = False
) -> ProficiencySetItem | None:
    """The item, if the user may see its cell: a pathologist, or a trainee the set is assigned to
    (with ``after_finish``, only once they finished an attempt of it: Grad-CAM shows where the
    model looked, part of the answer)."""
    if _is_teacher(user):
        sets = ProficiencySet.objects.all()
    else:
        sets = proficiency_set_assigned_queryset(user)
        if after_finish:
            sets = sets.filter(attempts__trainee=user, attempts__finished_at__isnull=False)
    return (
        ProficiencySetItem.objects.filter(pk=item_id, proficiency_set_id=set_id, proficiency_set__in=sets)
        .select_related("cell_image", "prediction")
        .first()
    )


def proficiency_set_items(*, proficiency_set: ProficiencySet) -> list[ProficiencySetItem]:
    return list(proficiency_set.items.order_by("position"))


def proficiency_attempt_answers(*, attempt: ProficiencyAttempt) -> dict[int, ProficiencyAnswer]:
    """The attempt's answers by item id."""
    return {answer.item_id: answer for answer in attempt.answers.all()}


# --- Results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassScore:
    label: str
    name: str
    total: int
    correct: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.correct / self.total, 1) if self.total else None


@dataclass(frozen=True)
class MissedItem:
    item: ProficiencySetItem
    answer: str  # a class, or NO_ANSWER
    unsure: bool

    @property
    def answer_name(self) -> str:
        return CellClass(self.answer).label if self.answer != NO_ANSWER else "No answer"


@dataclass(frozen=True)
class AttemptResult:
    attempt: ProficiencyAttempt
    total: int
    correct: int
    unsure: int
    answered: int
    classes: list[ClassScore]
    # confusion[reference][answer] = count; answers include NO_ANSWER.
    confusion: dict[str, dict[str, int]]
    missed: list[MissedItem]

    @property
    def percent(self) -> float:
        return round(100 * self.correct / self.total, 1) if self.total else 0.0

    @property
    def confusion_rows(self) -> list[tuple[str, list[int]]]:
        """The matrix as table rows: (reference class name, counts per answer column)."""
        return [
            (CellClass(reference).label, [self.confusion[reference][answer] for answer in CONFUSION_COLUMNS])
            for reference in CellClass.values
        ]


CONFUSION_COLUMNS = (*CellClass.values, NO_ANSWER)
CONFUSION_COLUMN_NAMES = (*CellClass.labels, "No answer")


def proficiency_attempt_result(*, attempt: ProficiencyAttempt) -> AttemptResult:
    """Score the attempt against the reference labels snapshot in the set's items (two queries)."""
    items = proficiency_set_items(proficiency_set=attempt.proficiency_set)
    return _score(attempt, items, proficiency_attempt_answers(attempt=attempt))


def _results(attempts: list[ProficiencyAttempt]) -> list[AttemptResult]:
    """Results of many attempts in two queries: their sets' items, and all their answers."""
    items_by_set: dict[int, list[ProficiencySetItem]] = {}
    set_ids = {attempt.proficiency_set_id for attempt in attempts}
    for item in ProficiencySetItem.objects.filter(proficiency_set_id__in=set_ids).order_by("position"):
        items_by_set.setdefault(item.proficiency_set_id, []).append(item)
    answers: dict[int, dict[int, ProficiencyAnswer]] = {attempt.pk: {} for attempt in attempts}
    for answer in ProficiencyAnswer.objects.filter(attempt__in=attempts):
        answers[answer.attempt_id][answer.item_id] = answer
    return [
        _score(attempt, items_by_set.get(attempt.proficiency_set_id, []), answers[attempt.pk])
        for attempt in attempts
    ]


def _score(
    attempt: ProficiencyAttempt, items: list[ProficiencySetItem], answers: dict[int, ProficiencyAnswer]
) -> AttemptResult:
    confusion = {reference: dict.fromkeys(CONFUSION_COLUMNS, 0) for reference in CellClass.values}
    missed = []
    for item in items:
        answer = answers.get(item.pk)
        given = answer.label if answer else NO_ANSWER
        confusion[item.reference_label][given] += 1
        if given != item.reference_label:
            missed.append(MissedItem(item=item, answer=given, unsure=bool(answer and answer.unsure)))
    classes = [
        ClassScore(
            label=label,
            name=CellClass(label).label,
            total=sum(confusion[label].values()),
            correct=confusion[label][label],
        )
        for label in CellClass.values
    ]
    return AttemptResult(
        attempt=attempt,
        total=len(items),
        correct=sum(score.correct for score in classes),
        unsure=sum(1 for answer in answers.values() if answer.unsure),
        answered=len(answers),
        classes=classes,
        confusion=confusion,
        missed=missed,
    )


def proficiency_trainee_history(*, trainee: AbstractBaseUser) -> list[AttemptResult]:
    """Every finished attempt of the trainee, oldest first (on sets still assigned to them)."""
    attempts = proficiency_attempt_own_queryset(trainee).filter(finished_at__isnull=False)
    return _results(list(attempts.order_by("started_at", "id")))


@dataclass(frozen=True)
class MostMissed:
    item: ProficiencySetItem
    missed: int
    attempts: int
    answers: dict[str, int]  # what the trainees answered instead, by class name


def proficiency_set_results(
    *, proficiency_set: ProficiencySet
) -> tuple[list[AttemptResult], list[MostMissed]]:
    """Every finished attempt of the set (newest first), and its items ranked by how often they
    were missed (items nobody missed are left out)."""
    attempts = proficiency_set.attempts.filter(finished_at__isnull=False).select_related(
        "trainee", "proficiency_set"
    )
    results = _results(list(attempts.order_by("-finished_at", "-id")))
    misses: dict[int, Counter] = {}
    items = {item.pk: item for item in proficiency_set_items(proficiency_set=proficiency_set)}
    for result in results:
        for missed in result.missed:
            misses.setdefault(missed.item.pk, Counter())[missed.answer_name] += 1
    ranked = sorted(misses.items(), key=lambda entry: (-sum(entry[1].values()), items[entry[0]].position))
    most_missed = [
        MostMissed(
            item=items[item_id], missed=sum(counts.values()), attempts=len(results), answers=dict(counts)
        )
        for item_id, counts in ranked
    ]
    return results, most_missed


RESULT_COLUMNS = (
    "set",
    "trainee",
    "attempt_id",
    "started_at",
    "finished_at",
    "position",
    "reference_label",
    "trainee_label",
    "unsure",
    "correct",
    "model_label",
    "model_confidence",
)


def proficiency_result_rows(*, proficiency_set: ProficiencySet) -> list[dict]:
    """One row per finished attempt and item, for the CSV export."""
    results, _ = proficiency_set_results(proficiency_set=proficiency_set)
    items = proficiency_set_items(proficiency_set=proficiency_set)
    answers: dict[tuple[int, int], ProficiencyAnswer] = {
        (answer.attempt_id, answer.item_id): answer
        for answer in ProficiencyAnswer.objects.filter(attempt__in=[result.attempt for result in results])
    }
    return [
        _result_row(result.attempt, item, answers.get((result.attempt.pk, item.pk)))
        for result in results
        for item in items
    ]


def _result_row(
    attempt: ProficiencyAttempt, item: ProficiencySetItem, answer: ProficiencyAnswer | None
) -> dict:
    return {
        "set": attempt.proficiency_set.name,
        "trainee": attempt.trainee.username,
        "attempt_id": attempt.pk,
        "started_at": attempt.started_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat(),
        "position": item.position,
        "reference_label": item.reference_label,
        "trainee_label": answer.label if answer else "",
        "unsure": bool(answer and answer.unsure),
        "correct": bool(answer and answer.label == item.reference_label),
        "model_label": item.model_label,
        "model_confidence": round(item.model_confidence, 4),
    }
