"""A small lab for adaptation tests: slides whose cells a pathologist verified, some predictions
corrected, with images the tiny model can tell apart by colour (one hue per class)."""

import io

from PIL import Image

from accounts.models import User
from cases.models import CellImage, Slide, SlideStatus
from classifier.models import CellClass, ModelVersion
from tests.factories import cell_image_make, patient_make, prediction_make, review_make, slide_make

CLASS_COLOURS = {
    "EOSINOPHIL": (200, 60, 60),
    "LYMPHOCYTE": (60, 60, 200),
    "MONOCYTE": (120, 40, 160),
    "NEUTROPHIL": (160, 120, 200),
}


def class_cell_bytes(label: str, seed: int, size: int = 40) -> bytes:
    """A pale background with a blob of the class's colour, its size and shade varied by seed."""
    red, green, blue = CLASS_COLOURS[label]
    shade = seed % 23
    image = Image.new("RGB", (size, size), (235, 222, 226))
    radius = 8 + seed % 7
    for x in range(size):
        for y in range(size):
            if (x - size // 2) ** 2 + (y - size // 2) ** 2 <= radius**2:
                image.putpixel((x, y), (red - shade, green + shade, blue))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def other_label(label: str) -> str:
    names = list(CellClass.values)
    return names[(names.index(label) + 1) % len(names)]


def lab_make(
    *,
    base: ModelVersion,
    lab_staff: User,
    pathologist: User,
    per_class: dict[str, int] | int = 6,
    slides: int = 3,
    signed: bool = True,
    tag: str = "A",
) -> dict[str, list[CellImage]]:
    """Cells spread over ``slides`` slides, each predicted by ``base`` (every third one wrongly,
    then corrected by the pathologist) and reviewed; the slides signed unless ``signed`` is False.
    Returns the cells per final label."""
    counts = per_class if isinstance(per_class, dict) else dict.fromkeys(CellClass.values, per_class)
    patient = patient_make(lab_staff, f"MRN-LAB-{tag}")
    made = [
        slide_make(patient, lab_staff, f"LAB-{tag}-{index}", status=SlideStatus.READY_FOR_REVIEW)
        for index in range(slides)
    ]
    cells: dict[str, list[CellImage]] = {}
    for class_index, (label, count) in enumerate(counts.items()):
        for index in range(count):
            seed = class_index * 100 + index
            image = cell_image_make(
                made[index % slides], lab_staff, class_cell_bytes(label, seed), f"{label}-{index}.png"
            )
            predicted = other_label(label) if index % 3 == 0 else label
            prediction = prediction_make(image, base, predicted, 0.8)
            reason = "" if predicted == label else "Nucleus and granules say otherwise"
            review_make(prediction, pathologist, label=label, reason=reason)
            cells.setdefault(label, []).append(image)
    if signed:
        # A shortcut for the fixture: sign-off itself is tested in tests/review.
        Slide.objects.filter(pk__in=[slide.pk for slide in made]).update(status=SlideStatus.SIGNED)
    return cells


# ml.adapt on the tiny model in seconds (as tests/ml/test_adapt.py): no source data mixed in, the
# Keras file served, the lab joining the domain from one held-out cell.
FAST_ADAPTATION_OPTIONS = (
    '{"epochs": 2, "steps_per_epoch": 2, "batch_size": 8, "lab_views": 2, "source_cells_per_class": 0, '
    '"export": "keras", "min_lab_domain_cells": 1}'
)
