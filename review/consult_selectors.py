"""Reading consults: who may open which, the cells asked about with both pathologists' labels,
agreement per cell and Cohen's kappa, the inbox.

A consultant's access never goes through ``cases``: a consult addressed to them, not closed and
inside its window, is the only way to the slide's cells.
"""

from collections import Counter
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from cases.models import Slide
from cases.selectors import slide_visible_queryset
from review.consult_models import Consult, ConsultCell, ConsultStatus, InboxMessage
from review.models import Review
from review.selectors import class_name

ACCESSIBLE_STATUSES = (ConsultStatus.OPEN, ConsultStatus.ANSWERED)


def consult_accessible_q(user: AbstractBaseUser) -> Q:
    """Consults the user answers now: addressed to them, not closed, the window not over."""
    return Q(consultant=user, status__in=ACCESSIBLE_STATUSES, access_until__gt=timezone.now())


def consult_as_consultant_queryset(user: AbstractBaseUser) -> QuerySet[Consult]:
    if not user.is_authenticated or not user.is_active or not user.has_perm("review.add_consultlabel"):
        return Consult.objects.none()
    return Consult.objects.filter(consult_accessible_q(user)).select_related(
        "slide", "requested_by", "consultant"
    )


def consult_as_pathologist_queryset(user: AbstractBaseUser) -> QuerySet[Consult]:
    """Pathologists see the consults of every slide they may see (the requester closes them)."""
    if not user.is_authenticated or not user.has_perm("review.add_consult"):
        return Consult.objects.none()
    return Consult.objects.filter(slide__in=slide_visible_queryset(user)).select_related(
        "slide", "requested_by", "consultant"
    )


def consult_visible_queryset(user: AbstractBaseUser) -> QuerySet[Consult]:
    """Every consult the user may open: as its consultant now, or as a pathologist of its slide."""
    return consult_as_consultant_queryset(user) | consult_as_pathologist_queryset(user)


def consult_mine_queryset(user: AbstractBaseUser) -> QuerySet[Consult]:
    """The user's own consults: the ones they asked, and the ones they answer now."""
    asked = consult_as_pathologist_queryset(user).filter(requested_by=user)
    return asked | consult_as_consultant_queryset(user)


def consult_visible(*, user: AbstractBaseUser, pk: int) -> Consult | None:
    return (
        consult_as_consultant_queryset(user).filter(pk=pk).first()
        or consult_as_pathologist_queryset(user).filter(pk=pk).first()
    )


def consult_is_accessible_to_consultant(consult: Consult) -> bool:
    return consult.status in ACCESSIBLE_STATUSES and consult.access_until > timezone.now()


def consult_shows_primary(*, consult: Consult, as_consultant: bool) -> bool:
    """A blind consult hides the primary labels and the model's from its consultant."""
    return not as_consultant or not consult.blind


@dataclass(frozen=True)
class ConsultCellRow:
    consult_cell: ConsultCell
    primary_label: str | None  # the primary pathologist's current review, if any
    consultant_label: str | None
    consultant_comment: str

    @property
    def agrees(self) -> bool | None:
        if self.primary_label is None or self.consultant_label is None:
            return None
        return self.primary_label == self.consultant_label

    @property
    def primary_name(self) -> str:
        return class_name(self.primary_label) if self.primary_label else "—"

    @property
    def consultant_name(self) -> str:
        return class_name(self.consultant_label) if self.consultant_label else "—"


def consult_cell_rows(*, consult: Consult) -> list[ConsultCellRow]:
    """The cells asked about, in order, with the primary's current label and the consultant's
    (three queries whatever the number of cells)."""
    cells = list(consult.cells.select_related("prediction", "label").order_by("position"))
    primary: dict[int, str] = {}
    for review in Review.objects.filter(prediction__in=[cell.prediction_id for cell in cells]).order_by("id"):
        primary[review.prediction_id] = review.label  # the newest wins
    rows = []
    for cell in cells:
        label = getattr(cell, "label", None)
        rows.append(
            ConsultCellRow(
                consult_cell=cell,
                primary_label=primary.get(cell.prediction_id),
                consultant_label=label.label if label else None,
                consultant_comment=label.comment if label else "",
            )
        )
    return rows


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters over the same items; None without items, 1.0 when both used a
    single and the same class throughout (agreement cannot exceed chance there, but it is total)."""
    if not pairs:
        return None
    total = len(pairs)
    observed = sum(1 for first, second in pairs if first == second) / total
    first_counts = Counter(first for first, _ in pairs)
    second_counts = Counter(second for _, second in pairs)
    expected = sum(first_counts[label] * second_counts[label] for label in first_counts) / total**2
    if expected == 1:
        return 1.0 if observed == 1 else 0.0
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class Agreement:
    compared: int
    agreed: int
    kappa: float | None

    @property
    def percent(self) -> float | None:
        return round(100 * self.agreed / self.compared, 1) if self.compared else None

    def as_dict(self) -> dict:
        return {
            "compared": self.compared,
            "agreed": self.agreed,
            "kappa": round(self.kappa, 3) if self.kappa is not None else None,
        }


def consult_agreement(rows: list[ConsultCellRow]) -> Agreement:
    pairs = [(row.primary_label, row.consultant_label) for row in rows if row.agrees is not None]
    return Agreement(
        compared=len(pairs),
        agreed=sum(1 for first, second in pairs if first == second),
        kappa=cohen_kappa(pairs),
    )


def slide_consults(*, slide: Slide) -> list[Consult]:
    return list(
        Consult.objects.filter(slide=slide).select_related("requested_by", "consultant").order_by("id")
    )


def slide_open_consults(*, slide: Slide) -> list[Consult]:
    """Consults not closed yet (open or answered): sign-off asks for confirmation while any is."""
    return [consult for consult in slide_consults(slide=slide) if consult.status != ConsultStatus.CLOSED]


def slide_consults_summary(*, slide: Slide) -> list[dict]:
    """The slide's consults as a signature keeps them: who, question, status, opinion, agreement."""
    summary = []
    for consult in slide_consults(slide=slide):
        agreement = consult_agreement(consult_cell_rows(consult=consult))
        summary.append(
            {
                "id": consult.pk,
                "requested_by": consult.requested_by.get_full_name() or consult.requested_by.username,
                "consultant": consult.consultant.get_full_name() or consult.consultant.username,
                "consultant_username": consult.consultant.username,
                "question": consult.question,
                "status": consult.status,
                "opinion": consult.opinion,
                "answered_at": consult.answered_at.isoformat() if consult.answered_at else None,
                "cells": consult.cells.count(),
                "agreement": agreement.as_dict(),
            }
        )
    return summary


def inbox_messages(*, user: AbstractBaseUser) -> QuerySet[InboxMessage]:
    return InboxMessage.objects.filter(recipient=user).select_related("consult")


def inbox_unread_count(*, user: AbstractBaseUser) -> int:
    return inbox_messages(user=user).filter(read_at__isnull=True).count()
