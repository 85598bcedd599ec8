"""Proficiency sets for teaching morphology: verified cells of signed slides, classified by trainees.

A set's items snapshot the reference (the verified label) and the model's answer when the set is
built, so a later amendment of the slide never changes an attempt already taken. Trainees reach
items only through the set (``teaching_selectors``), never the slide, patient or cell image.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from cases.models import CellImage
from classifier.models import CellClass, Prediction


class ProficiencySet(models.Model):
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    time_limit_minutes = models.PositiveIntegerField(null=True, blank=True)
    # How the cells were chosen (class, confidence range, model wrong only), as the builder set it.
    criteria = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("add", "view")

    def __str__(self) -> str:
        return self.name


class ProficiencySetItem(models.Model):
    """One cell of a set, numbered from 1 in the order trainees see them."""

    proficiency_set = models.ForeignKey(ProficiencySet, on_delete=models.PROTECT, related_name="items")
    position = models.PositiveIntegerField()
    cell_image = models.ForeignKey(CellImage, on_delete=models.PROTECT, related_name="+")
    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="+")
    reference_label = models.CharField(max_length=16, choices=CellClass.choices)
    model_label = models.CharField(max_length=16, choices=CellClass.choices)
    model_confidence = models.FloatField()

    class Meta:
        ordering = ["proficiency_set_id", "position"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["proficiency_set", "position"], name="proficiency_item_position"),
            models.UniqueConstraint(fields=["proficiency_set", "cell_image"], name="proficiency_item_cell"),
        ]

    def __str__(self) -> str:
        return f"{self.proficiency_set} #{self.position}"

    @property
    def model_wrong(self) -> bool:
        return self.model_label != self.reference_label


class ProficiencyAssignment(models.Model):
    """A set given to one trainee or to every member of a group."""

    proficiency_set = models.ForeignKey(ProficiencySet, on_delete=models.PROTECT, related_name="assignments")
    trainee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proficiency_set_id", "id"]
        default_permissions = ()
        constraints = [
            models.CheckConstraint(
                condition=Q(trainee__isnull=False, group__isnull=True)
                | Q(trainee__isnull=True, group__isnull=False),
                name="proficiency_assignment_one_target",
            ),
            models.UniqueConstraint(
                fields=["proficiency_set", "trainee"], name="proficiency_assigned_trainee"
            ),
            models.UniqueConstraint(fields=["proficiency_set", "group"], name="proficiency_assigned_group"),
        ]

    def __str__(self) -> str:
        return f"{self.proficiency_set} → {self.trainee or self.group}"


class ProficiencyAttempt(models.Model):
    proficiency_set = models.ForeignKey(ProficiencySet, on_delete=models.PROTECT, related_name="attempts")
    trainee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    # Started plus the set's time limit; None: no limit.
    deadline = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        default_permissions = ("add",)
        constraints = [
            # One attempt at a time per trainee and set.
            models.UniqueConstraint(
                fields=["proficiency_set", "trainee"],
                condition=Q(finished_at__isnull=True),
                name="proficiency_one_open_attempt",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trainee} on {self.proficiency_set} ({self.started_at:%Y-%m-%d %H:%M})"

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


class ProficiencyAnswer(models.Model):
    """The trainee's class for one item (changeable until the attempt finishes)."""

    attempt = models.ForeignKey(ProficiencyAttempt, on_delete=models.PROTECT, related_name="answers")
    item = models.ForeignKey(ProficiencySetItem, on_delete=models.PROTECT, related_name="answers")
    label = models.CharField(max_length=16, choices=CellClass.choices)
    unsure = models.BooleanField(default=False)
    answered_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attempt_id", "item__position"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["attempt", "item"], name="proficiency_one_answer_per_item"),
        ]

    def __str__(self) -> str:
        return f"{self.attempt_id}: #{self.item_id} {self.label}"
