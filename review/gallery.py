"""The cell gallery by class, as on a CellaVision screen: the slide's cells grouped under their
current class (the verified one once reviewed, else the model's), a group for the cells the model
did not classify and one for the excluded cells. The slide page and the review screen show it."""

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse

from cases.models import Slide, SlideStatus
from classifier.domain import slide_domain
from classifier.selectors import slide_classification
from review.presenters import FLAGGED_CELL_MIN_MS, class_json, flag_reason, url_maker
from review.selectors import (
    ReviewedCellCard,
    class_names,
    correction_choices,
    differential_classes,
    slide_reviewed_cards,
)
from review.services import REVIEWABLE_STATUSES

UNCLASSIFIED = "unclassified"
EXCLUDED = "excluded"


@dataclass(frozen=True)
class GalleryTile:
    card: ReviewedCellCard
    flag_reason: str
    image_url: str

    @property
    def selectable(self) -> bool:
        """Only a classified cell that counts takes a verdict in the gallery."""
        return self.card.prediction is not None and self.card.exclusion is None


@dataclass(frozen=True)
class GalleryGroup:
    value: str
    name: str
    tiles: list[GalleryTile]
    keys: tuple[str, ...] = ()
    # A class cells can be moved to; the unclassified and excluded groups are not.
    is_class: bool = True

    @property
    def count(self) -> int:
        return len(self.tiles)


@dataclass(frozen=True)
class Gallery:
    groups: list[GalleryGroup]

    @property
    def classes(self) -> list[GalleryGroup]:
        return [group for group in self.groups if group.is_class]

    @property
    def cells(self) -> int:
        return sum(group.count for group in self.groups)


def _group_of(card: ReviewedCellCard) -> str:
    if card.exclusion is not None:
        return EXCLUDED
    if card.prediction is None:
        return UNCLASSIFIED
    return card.review.label if card.review is not None else card.prediction.label


def slide_gallery(*, user: AbstractBaseUser, slide: Slide) -> Gallery | None:
    """Every class a cell may be given (empty ones too: they are where cells can be moved), then
    the unclassified and excluded cells; None before the slide's first classification job."""
    job, model_version = slide_classification(user=user, slide=slide)
    if job is None:
        return None
    cards = slide_reviewed_cards(user=user, slide=slide, model_version=model_version)
    if not cards:
        return None
    in_domain = slide_domain(slide=slide).in_domain
    image_url = url_maker("cases:cell_image_file")  # resolved once, not once per tile
    tiles: dict[str, list[GalleryTile]] = {}
    for card in cards:
        reason = (
            flag_reason(card.prediction, auto_acceptable=not card.flagged, slide_in_domain=in_domain)
            if card.prediction is not None
            else ""
        )
        tile = GalleryTile(card, reason, image_url(card.cell_image.pk))
        tiles.setdefault(_group_of(card), []).append(tile)
    choices = correction_choices()
    # Each class answers to the keys the review screen gives it (the class list's shortcut, and a
    # model class's initial).
    keys = {cell_class.code: tuple(class_json(cell_class)["keys"]) for cell_class in differential_classes()}
    groups = [
        GalleryGroup(value, str(name), tiles.pop(value, []), keys=keys.get(value, ()))
        for value, name in choices
    ]
    unclassified, excluded = tiles.pop(UNCLASSIFIED, []), tiles.pop(EXCLUDED, [])
    # A label no longer offered (a class list changed) still shows its cells, as a class.
    names = class_names() if tiles else {}
    groups += [GalleryGroup(value, names.get(value, value.title()), rest) for value, rest in tiles.items()]
    groups.append(GalleryGroup(UNCLASSIFIED, "Not classified", unclassified, is_class=False))
    groups.append(GalleryGroup(EXCLUDED, "Excluded", excluded, is_class=False))
    return Gallery(groups=groups)


def gallery_context(request: HttpRequest, slide: Slide, *, mode: str) -> dict | None:
    """What ``review/gallery.html`` needs; ``mode`` "slide" (a tile opens the review screen on its
    cell) or "review" (on the review screen: a tile shows its cell above)."""
    gallery = slide_gallery(user=request.user, slide=slide)
    if gallery is None:
        return None
    user = request.user
    can_review = user.has_perm("review.add_review") and slide.status in REVIEWABLE_STATUSES
    return {
        "slide": slide,
        "gallery": gallery,
        "gallery_can_open": user.has_perm("review.add_review") and slide.status != SlideStatus.DRAFT,
        "gallery_can_review": can_review,
        "gallery_review_url": reverse("review:slide_review", args=[slide.pk]),
        "gallery_data": {
            "mode": mode,
            "endpoint": reverse("review:slide_gallery_review", args=[slide.pk]),
            "flagged_min_ms": FLAGGED_CELL_MIN_MS,
            "classes": [
                {"value": group.value, "name": group.name, "keys": list(group.keys)}
                for group in gallery.classes
            ],
        }
        if can_review
        else None,
    }
