"""The cell gallery by class in a real browser (Debian's Chromium, headless): cells grouped with
their counts, a tile dragged onto another class with its reason, a Shift range moved by a class
key, a selection with flagged cells confirmed only after a look, and a tile opening its cell.

The cells are real blood-cell photographs from the shared TEST split (HEMATOVISION_DATA_DIR), so
the screenshot kept for the documentation (``HEMATOVISION_GALLERY_SCREENSHOT=docs/images/gallery.png``)
shows what a pathologist sees."""

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from cases.models import Slide, SlideStatus
from cases.services import cell_image_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import CellClass, Prediction
from devtools.benchmark import shared_test_images
from review.models import Review, ReviewDecision
from review.presenters import FLAGGED_CELL_MIN_MS
from tests.factories import (
    model_version_make,
    patient_make,
    prediction_make,
    slide_domain_assessment_make,
    slide_make,
)
from tests.review import test_review_screen_browser as review_screen
from tests.review.test_review_screen_browser import logged_in_page

browser = review_screen.browser  # the fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The model's call and confidence for each of the twelve cells (threshold 0.9: below it, flagged).
CALLS = [
    (CellClass.EOSINOPHIL, 0.98),
    (CellClass.LYMPHOCYTE, 0.97),
    (CellClass.MONOCYTE, 0.95),
    (CellClass.NEUTROPHIL, 0.99),
    (CellClass.NEUTROPHIL, 0.62),  # an eosinophil the model took for a neutrophil, flagged
    (CellClass.LYMPHOCYTE, 0.96),
    (CellClass.MONOCYTE, 0.71),
    (CellClass.NEUTROPHIL, 0.97),
    (CellClass.EOSINOPHIL, 0.93),
    (CellClass.LYMPHOCYTE, 0.94),
    (CellClass.MONOCYTE, 0.92),
    (CellClass.NEUTROPHIL, 0.98),
]


@pytest.fixture
def gallery_slide(lab_staff) -> tuple[Slide, list[Prediction]]:
    slide = slide_make(patient_make(lab_staff, "MRN-GAL"), lab_staff, "S-GAL-1", status=SlideStatus.SUBMITTED)
    model_version = model_version_make("gallery-test", review_threshold=0.9, is_active=True)
    limits = UploadLimits.from_settings()
    predictions = []
    for path, (label, confidence) in zip(shared_test_images(len(CALLS)), CALLS, strict=True):
        image = image_validate(data=path.read_bytes(), original_filename=path.name, limits=limits)
        cell_image = cell_image_create(actor=lab_staff, slide=slide, image=image)
        predictions.append(prediction_make(cell_image, model_version, label, confidence))
    slide_domain_assessment_make(slide, predictions[-1].job)
    return slide, predictions


def group(page: Page, label: str):
    return page.locator(f'.gallery-group[data-class="{label}"]')


def tile(page: Page, prediction: Prediction):
    return page.locator(f'[role=option][data-prediction="{prediction.pk}"]')


def test_cells_are_grouped_by_class_and_a_dragged_tile_moves_with_its_reason(
    browser, live_server, pathologist, gallery_slide, tmp_path
):
    slide, predictions = gallery_slide
    page = logged_in_page(browser, live_server, "patho")
    # Tall enough for every group: a drag that has to scroll picks its tile before the scroll.
    page.set_viewport_size({"width": 1280, "height": 2000})
    page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))

    counts = {
        CellClass.EOSINOPHIL: 2,
        CellClass.LYMPHOCYTE: 3,
        CellClass.MONOCYTE: 3,
        CellClass.NEUTROPHIL: 4,
    }
    for label, count in counts.items():
        expect(group(page, label).locator("[data-count]")).to_have_text(str(count))
        expect(group(page, label).locator("[role=option]")).to_have_count(count)
    expect(group(page, "unclassified").locator("[data-count]")).to_have_text("0")
    tile(page, predictions[4]).drag_to(group(page, CellClass.EOSINOPHIL))
    expect(page.locator("#gallery-hint")).to_contain_text("Moving 1 cell to Eosinophil: type the reason")
    expect(page.locator("#gallery-reason")).to_be_focused()
    assert not Review.objects.exists()
    page.keyboard.type("Granules orange, bilobed nucleus")
    page.keyboard.press("Enter")

    expect(page.locator(".alert-success")).to_contain_text("1 cell moved to Eosinophil.")
    expect(group(page, CellClass.EOSINOPHIL).locator("[data-count]")).to_have_text("3")
    expect(group(page, CellClass.NEUTROPHIL).locator("[data-count]")).to_have_text("3")
    expect(tile(page, predictions[4])).to_contain_text("Corrected · model: Neutrophil")
    review = Review.objects.get()
    assert (review.prediction_id, review.label, review.decision, review.reason, review.bulk) == (
        predictions[4].pk,
        CellClass.EOSINOPHIL,
        ReviewDecision.CORRECTED,
        "Granules orange, bilobed nucleus",
        False,
    )
    loaded = "() => [...document.querySelectorAll('.gallery-thumb')].every(i => i.complete && i.naturalWidth)"
    page.wait_for_function(loaded)
    tile(page, predictions[6]).click()  # a flagged monocyte, selected
    tile(page, predictions[10]).click(modifiers=["Control"])
    shot = Path(os.environ.get("HEMATOVISION_GALLERY_SCREENSHOT") or tmp_path / "gallery.png")
    page.locator("#gallery").screenshot(path=shot, animations="disabled")
    assert shot.stat().st_size > 50_000


def test_a_shift_range_is_moved_by_a_class_key_on_the_review_screen(
    browser, live_server, pathologist, gallery_slide
):
    slide, predictions = gallery_slide
    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]) + "?gallery=1")
    monocytes = group(page, CellClass.MONOCYTE).locator("[role=option]")

    monocytes.nth(0).click()
    monocytes.nth(2).click(modifiers=["Shift"])
    expect(page.locator("#gallery-selected")).to_have_text("3 cells selected")
    expect(group(page, CellClass.MONOCYTE).locator("[aria-selected=true]")).to_have_count(3)
    monocytes.nth(1).click(modifiers=["Control"])  # Ctrl-click takes one out again
    expect(page.locator("#gallery-selected")).to_have_text("2 cells selected")
    monocytes.nth(1).click(modifiers=["Control"])
    page.keyboard.press("l")  # Lymphocyte's key, on the focused tile: not the review screen's

    expect(page.locator("#gallery-hint")).to_contain_text("Moving 3 cells to Lymphocyte")
    page.keyboard.type("Round nucleus, scant cytoplasm")
    page.keyboard.press("Enter")

    expect(group(page, CellClass.LYMPHOCYTE).locator("[data-count]")).to_have_text("6")
    expect(group(page, CellClass.MONOCYTE).locator("[data-count]")).to_have_text("0")
    monocyte_ids = {p.pk for p in predictions if p.label == CellClass.MONOCYTE}
    assert set(Review.objects.values_list("prediction_id", "label")) == {
        (pk, CellClass.LYMPHOCYTE) for pk in monocyte_ids
    }


def test_confirming_flagged_cells_from_the_gallery_waits_for_a_look_and_a_tick(
    browser, live_server, pathologist, gallery_slide
):
    slide, predictions = gallery_slide
    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))
    neutrophils = group(page, CellClass.NEUTROPHIL).locator("[role=option]")
    neutrophils.nth(0).click()
    page.keyboard.press("Control+a")  # the whole group, by the keyboard
    expect(page.locator("#gallery-selected")).to_have_text("4 cells selected")

    page.keyboard.press("c")

    flagged = page.locator("#gallery-flagged")
    expect(flagged).to_be_visible()
    expect(page.locator("#gallery-flagged-text")).to_contain_text("1 of the selected cells is flagged")
    expect(page.locator("#gallery-flagged-text")).to_contain_text("below review threshold 90.0 %")
    expect(tile(page, predictions[4])).to_have_class(re.compile("needs-look"))
    expect(page.locator("#gallery-flagged-ack")).to_be_disabled()  # not before it was shown a moment
    page.wait_for_timeout(FLAGGED_CELL_MIN_MS // 4)
    expect(page.locator("#gallery-flagged-ack")).to_be_disabled()
    expect(page.locator("#gallery")).to_have_attribute("data-confirmable", "true")
    assert not Review.objects.exists()
    page.locator("#gallery-flagged-ack").check()
    page.locator("#gallery-flagged-go").click()

    expect(page.locator(".alert-success")).to_contain_text("4 cells confirmed.")
    reviews = Review.objects.all()
    assert {(r.prediction_id, r.decision, r.bulk) for r in reviews} == {
        (p.pk, ReviewDecision.CONFIRMED, False) for p in predictions if p.label == CellClass.NEUTROPHIL
    }


def test_the_keyboard_moves_between_tiles_and_enter_opens_the_cell_above(
    browser, live_server, pathologist, gallery_slide
):
    slide, predictions = gallery_slide
    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]) + "?gallery=1")
    first = page.locator("#gallery-cells [role=option]").first
    first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator("#gallery-selected")).to_have_text("2 cells selected")
    page.keyboard.press("Escape")
    expect(page.locator("#gallery-selected")).to_have_text("No cell selected")
    second = page.locator("#gallery-cells [role=option]").nth(2)
    expect(second).to_be_focused()
    filename = Prediction.objects.get(pk=second.get_attribute("data-prediction")).cell_image.original_filename

    page.keyboard.press("Enter")

    expect(page.locator("#cell-filename")).to_have_text(filename)
    page.keyboard.press("j")  # the review screen's keys work again once the cell is opened
    expect(page.locator("#cell-filename")).not_to_have_text(filename)
    assert not Review.objects.exists()
