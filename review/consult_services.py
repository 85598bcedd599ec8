"""Consults: requested by a pathologist from a slide in review, answered by another pathologist or
an outside consultant (own labels and a written opinion), closed by the requester.

Every change is audited in its transaction; notifications go to the in-app inbox and, once the
transaction commits, by e-mail through Django's mail settings.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import Slide, SlideStatus
from classifier.models import CellClass, Prediction
from core.api import CONFLICT_CODE
from core.permissions import actor_permission_require
from review.consult_models import (
    CONSULT_TRANSITIONS,
    Consult,
    ConsultCell,
    ConsultLabel,
    ConsultStatus,
    InboxMessage,
)
from review.consult_selectors import consult_is_accessible_to_consultant
from review.selectors import current_predictions

CONSULT_SLIDE_STATUSES = frozenset(
    {SlideStatus.SUBMITTED, SlideStatus.READY_FOR_REVIEW, SlideStatus.IN_REVIEW}
)
MAX_ACCESS = timedelta(days=30)


class ConsultError(ValidationError):
    """The consult, label, opinion or closing is not allowed as asked."""


class ConsultStateError(ConsultError):
    """The consult's or the slide's state does not allow this now (the API answers 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=CONFLICT_CODE)


def _notify(*, recipient: User, subject: str, body: str, consult: Consult) -> InboxMessage:
    """An inbox message now, and an e-mail once the transaction has committed (never for a
    change that was rolled back)."""
    message = InboxMessage.objects.create(recipient=recipient, subject=subject, body=body, consult=consult)
    if recipient.email:
        transaction.on_commit(
            lambda: send_mail(
                subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email], fail_silently=True
            )
        )
    return message


def _consult_url(consult: Consult) -> str:
    return reverse("consults:consult_detail", args=[consult.pk])


def _chosen_predictions(slide: Slide, prediction_ids: Iterable[int]) -> list[Prediction]:
    current = current_predictions(Prediction.objects.filter(cell_image__slide=slide)).filter(excluded=False)
    wanted = sorted(set(prediction_ids))
    if not wanted:
        return list(current.order_by("cell_image_id"))
    chosen = list(current.filter(pk__in=wanted).order_by("cell_image_id"))
    if len(chosen) != len(wanted):
        raise ConsultError("Some chosen cells are not current, counted cells of this slide.")
    return chosen


def _check_consultant(actor: User, consultant: User) -> None:
    if consultant.pk == actor.pk:
        raise ConsultError("Ask someone else: a consult is a second opinion.")
    if not consultant.is_active or consultant.role not in (Role.PATHOLOGIST, Role.CONSULTANT):
        raise ConsultError("A consult goes to an active pathologist or consultant.")


@transaction.atomic
def consult_request(
    *,
    actor: User,
    slide: Slide,
    consultant: User,
    question: str,
    access_until: datetime,
    blind: bool = True,
    prediction_ids: Iterable[int] = (),
) -> Consult:
    """Ask ``consultant`` about the slide (the chosen cells, or every counted classified cell),
    with access until ``access_until`` (at most 30 days ahead)."""
    actor_permission_require(actor, "review.add_consult")
    question = question.strip()
    if not question:
        raise ConsultError("Write the question for the consultant.")
    _check_consultant(actor, consultant)
    now = timezone.now()
    if not now < access_until <= now + MAX_ACCESS:
        raise ConsultError("The access window must end in the future, at most 30 days from now.")
    slide = Slide.objects.select_for_update().get(pk=slide.pk)
    if slide.status not in CONSULT_SLIDE_STATUSES:
        raise ConsultStateError(
            f"Only a slide in review can be consulted on; this one is {slide.get_status_display()}."
        )
    predictions = _chosen_predictions(slide, prediction_ids)
    if not predictions:
        raise ConsultStateError("This slide has no classified cell to consult on.")
    consult = Consult.objects.create(
        slide=slide,
        requested_by=actor,
        consultant=consultant,
        question=question,
        blind=blind,
        requested_at=now,
        access_until=access_until,
    )
    ConsultCell.objects.bulk_create(
        ConsultCell(consult=consult, position=position, prediction=prediction)
        for position, prediction in enumerate(predictions, start=1)
    )
    audit_event_record(
        action=AuditAction.CONSULT_REQUESTED,
        actor=actor,
        target=consult,
        after={
            "slide_id": slide.pk,
            "consultant": consultant.username,
            "blind": blind,
            "access_until": access_until,
            "prediction_ids": [prediction.pk for prediction in predictions],
        },
        reason=question,
    )
    _notify(
        recipient=consultant,
        subject=f"Consult requested by {actor.display_name}",
        body=(
            f"{actor.display_name} asks for your opinion on {len(predictions)} cells of a slide:\n\n"
            f"{question}\n\nOpen it in HematoVision (until {access_until:%Y-%m-%d %H:%M %Z}): "
            f"{_consult_url(consult)}"
        ),
        consult=consult,
    )
    return consult


def _consult_lock_for_consultant(actor: User, consult: Consult) -> Consult:
    actor_permission_require(actor, "review.add_consultlabel")
    locked = Consult.objects.select_for_update().get(pk=consult.pk)
    if locked.consultant_id != actor.pk:
        raise PermissionDenied("This consult is addressed to someone else.")
    if not consult_is_accessible_to_consultant(locked):
        raise PermissionDenied("This consult is closed or its access window has ended.")
    if locked.status != ConsultStatus.OPEN:
        raise ConsultStateError("The opinion is given: the consult's labels can no longer change.")
    return locked


@transaction.atomic
def consult_label_record(
    *, actor: User, consult: Consult, consult_cell: ConsultCell, label: str, comment: str = ""
) -> ConsultLabel:
    """The consultant's class for one cell, in a row of its own (the primary review is untouched);
    it may change until the opinion is given."""
    locked = _consult_lock_for_consultant(actor, consult)
    if label not in CellClass.values:
        raise ConsultError(f"Unknown class {label!r}.")
    if consult_cell.consult_id != locked.pk:
        raise ConsultError("This cell is not part of the consult.")
    previous = ConsultLabel.objects.filter(consult_cell=consult_cell).first()
    consult_label, _ = ConsultLabel.objects.update_or_create(
        consult_cell=consult_cell, defaults={"label": label, "comment": comment.strip(), "labelled_by": actor}
    )
    audit_event_record(
        action=AuditAction.CONSULT_LABEL_RECORDED,
        actor=actor,
        target=locked,
        before={"label": previous.label} if previous else None,
        after={
            "consult_cell_id": consult_cell.pk,
            "prediction_id": consult_cell.prediction_id,
            "label": label,
        },
        reason=comment.strip(),
    )
    return consult_label


def _transition(consult: Consult, to_status: ConsultStatus) -> None:
    if to_status not in CONSULT_TRANSITIONS[ConsultStatus(consult.status)]:
        raise ConsultStateError(
            f"A {consult.get_status_display().lower()} consult cannot become {to_status.label.lower()}."
        )
    consult.status = to_status


@transaction.atomic
def consult_answer(*, actor: User, consult: Consult, opinion: str) -> Consult:
    """The consultant's written opinion; their labels are final from here on."""
    locked = _consult_lock_for_consultant(actor, consult)
    opinion = opinion.strip()
    if not opinion:
        raise ConsultError("Write your opinion: answering a consult needs one.")
    _transition(locked, ConsultStatus.ANSWERED)
    locked.opinion, locked.answered_at = opinion, timezone.now()
    locked.save(update_fields=["status", "opinion", "answered_at"])
    labelled = ConsultLabel.objects.filter(consult_cell__consult=locked).count()
    audit_event_record(
        action=AuditAction.CONSULT_ANSWERED,
        actor=actor,
        target=locked,
        before={"status": ConsultStatus.OPEN.value},
        after={"status": locked.status, "slide_id": locked.slide_id, "cells_labelled": labelled},
        reason=opinion,
    )
    _notify(
        recipient=locked.requested_by,
        subject=f"Consult answered by {actor.display_name}",
        body=f"{actor.display_name} answered your consult:\n\n{opinion}\n\n{_consult_url(locked)}",
        consult=locked,
    )
    return locked


@transaction.atomic
def consult_close(*, actor: User, consult: Consult) -> Consult:
    """The requester closes the consult; the consultant's access ends with it."""
    actor_permission_require(actor, "review.add_consult")
    locked = Consult.objects.select_for_update().get(pk=consult.pk)
    if locked.requested_by_id != actor.pk:
        raise PermissionDenied("Only the pathologist who requested the consult closes it.")
    before = locked.status
    _transition(locked, ConsultStatus.CLOSED)
    locked.closed_at = timezone.now()
    locked.save(update_fields=["status", "closed_at"])
    audit_event_record(
        action=AuditAction.CONSULT_CLOSED,
        actor=actor,
        target=locked,
        before={"status": before},
        after={"status": locked.status, "slide_id": locked.slide_id},
    )
    return locked


def inbox_message_read(*, user: User, consult: Consult) -> None:
    """The user has opened the consult: its messages to them are read."""
    InboxMessage.objects.filter(recipient=user, consult=consult, read_at__isnull=True).update(
        read_at=timezone.now()
    )
