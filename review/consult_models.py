"""Second opinions: a pathologist asks another pathologist or an outside consultant about a slide.

The consultant's labels and opinion are rows of their own; the primary review is never touched.
A consultant reaches the slide only through the consult (``consult_selectors``), and only while it
is open or answered and before its window ends.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from cases.models import Slide
from classifier.models import CellClass, Prediction


class ConsultStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"


# Allowed status changes (``consult_services`` checks them).
CONSULT_TRANSITIONS = {
    ConsultStatus.OPEN: {ConsultStatus.ANSWERED, ConsultStatus.CLOSED},
    ConsultStatus.ANSWERED: {ConsultStatus.CLOSED},
    ConsultStatus.CLOSED: set(),
}


class Consult(models.Model):
    slide = models.ForeignKey(Slide, on_delete=models.PROTECT, related_name="consults")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    consultant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    question = models.TextField()
    # Blind: the consultant does not see the primary pathologist's labels.
    blind = models.BooleanField(default=True)
    requested_at = models.DateTimeField()
    access_until = models.DateTimeField(help_text="The consultant's access ends at this time")
    status = models.CharField(max_length=16, choices=ConsultStatus.choices, default=ConsultStatus.OPEN)
    opinion = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        default_permissions = ("add",)
        constraints = [
            models.CheckConstraint(condition=~Q(question=""), name="consult_has_question"),
            models.CheckConstraint(
                condition=~Q(status=ConsultStatus.ANSWERED) | ~Q(opinion=""),
                name="consult_answer_has_opinion",
            ),
        ]

    def __str__(self) -> str:
        return f"Consult {self.pk} on {self.slide}"


class ConsultCell(models.Model):
    """A cell the consult asks about (its current prediction when the consult was requested)."""

    consult = models.ForeignKey(Consult, on_delete=models.PROTECT, related_name="cells")
    position = models.PositiveIntegerField()
    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["consult_id", "position"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["consult", "position"], name="consult_cell_position"),
            models.UniqueConstraint(fields=["consult", "prediction"], name="consult_cell_once"),
        ]

    def __str__(self) -> str:
        return f"Consult {self.consult_id} cell {self.position}"


class ConsultLabel(models.Model):
    """The consultant's class for one cell; changeable until the consult is answered."""

    consult_cell = models.OneToOneField(ConsultCell, on_delete=models.PROTECT, related_name="label")
    label = models.CharField(max_length=16, choices=CellClass.choices)
    comment = models.TextField(blank=True)
    labelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    labelled_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ("add",)

    def __str__(self) -> str:
        return f"{self.consult_cell}: {self.label}"


class InboxMessage(models.Model):
    """A notification in the app's inbox (also sent by e-mail where the user has an address)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    consult = models.ForeignKey(Consult, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ()

    def __str__(self) -> str:
        return self.subject
