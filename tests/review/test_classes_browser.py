"""The lab's classes in a real browser (Debian's Chromium, headless): a pathologist corrects cells to
classes beyond the model's four, by a class's key and through the searchable menu, and sees the
count towards the slide's target; an admin edits, reorders and sets the target on the class list.

With ``HEMATOVISION_DOCS_IMAGES=docs/images`` the tests also save the screenshots of the docs."""

import os
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from review.models import CountingSettings, DifferentialClass, Review, ReviewDecision
from tests.review.test_review_screen_browser import browser, logged_in_page  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def docs_image(page: Page, name: str) -> None:
    folder = os.environ.get("HEMATOVISION_DOCS_IMAGES")
    if folder:
        page.screenshot(path=Path(folder) / name, full_page=True, animations="disabled")


def test_cells_are_corrected_to_extra_classes_by_key_and_by_the_menu(
    browser,  # noqa: F811
    live_server,
    pathologist,
    slide,
    predictions,
):
    page = logged_in_page(browser, live_server, "patho")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]))
    expect(page.locator("#predicted-label")).to_have_text("Monocyte")
    expect(page.locator("#count-target")).to_have_text("0 / 100 WBC counted")

    page.keyboard.press("8")  # Blast's key: a correction asks for the reason
    expect(page.locator("#review-reason")).to_be_focused()
    expect(page.locator("#review-label")).to_have_value("BLAST")
    page.keyboard.type("Fine chromatin, nucleoli")
    page.keyboard.press("Enter")
    expect(page.locator("#cell-position")).to_have_text("2")
    expect(page.locator("#count-target")).to_have_text("1 / 100 WBC counted")

    page.keyboard.press("/")  # any class by name
    expect(page.locator("#class-search")).to_be_focused()
    page.keyboard.type("nucleated")
    expect(page.locator("[data-class-option]:visible")).to_have_count(1)
    docs_image(page, "review-class-menu.png")
    page.keyboard.press("Enter")
    expect(page.locator("#class-menu")).to_be_hidden()
    expect(page.locator("#review-label")).to_have_value("NRBC")
    expect(page.locator("#review-reason")).to_be_focused()
    page.keyboard.type("Nucleated red cell")
    page.keyboard.press("Enter")
    expect(page.locator("#cell-position")).to_have_text("3")
    # A nucleated red cell is reported per 100 white cells: not one of the white cells counted.
    expect(page.locator("#count-target")).to_have_text("1 / 100 WBC counted")

    page.keyboard.press("/")
    page.keyboard.press("Escape")
    expect(page.locator("#class-menu")).to_be_hidden()
    expect(page.locator("#review-saving")).to_have_text("")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#current-review")).to_contain_text("Corrected to Nucleated red cell by patho")

    reviews = {review.prediction_id: review for review in Review.objects.all()}
    assert len(reviews) == 2
    blast = reviews[predictions[3].pk]
    assert (blast.label, blast.decision, blast.reason) == (
        "BLAST",
        ReviewDecision.CORRECTED,
        "Fine chromatin, nucleoli",
    )
    assert reviews[predictions[4].pk].label == "NRBC"


def test_an_admin_edits_reorders_and_sets_the_target_on_the_class_list(browser, live_server, administrator):  # noqa: F811
    page = logged_in_page(browser, live_server, "admin")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("nav >> text=Cell classes")
    rows = page.locator("#class-list tbody tr")
    expect(rows).to_have_count(16)
    docs_image(page, "class-list.png")

    page.click("[aria-label='Edit Blast']")
    page.fill("#id_name", "Blast (unclassified)")
    page.fill("#id_reference_high", "0")
    page.uncheck("#id_is_active")
    page.fill("#id_reason", "Lab naming")
    page.click("input[type=submit]")
    expect(page.locator("#class-list tr[data-code=BLAST]")).to_contain_text("Blast (unclassified)")
    expect(page.locator("#class-list tr[data-code=BLAST]")).to_contain_text("inactive")

    page.click("[aria-label='Move Blast (unclassified) up']")
    codes = page.locator("#class-list tbody tr").evaluate_all("rows => rows.map(row => row.dataset.code)")
    assert codes.index("BLAST") == codes.index("PROMYELOCYTE") - 1

    page.fill("#id_default_target", "200")
    page.click("#default-target-form button[type=submit]")
    expect(page.locator("#default-target")).to_have_text("200")

    blast = DifferentialClass.objects.get(code="BLAST")
    assert (blast.name, blast.is_active, blast.reference_high) == ("Blast (unclassified)", False, 0.0)
    assert CountingSettings.objects.get().default_target == 200
