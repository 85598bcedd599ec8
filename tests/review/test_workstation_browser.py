"""The review workstation in a real browser (Debian's Chromium, headless): the Grad-CAM overlay
is actually drawn under the Content-Security-Policy, a held Enter key does not wave flagged cells
through, verification is told apart on the slide page, and the queue and the differential fit a
phone's width."""

import io

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from classifier.models import CellClass, GradCam, GradCamStatus
from review.models import Review
from review.presenters import FLAGGED_CELL_MIN_MS
from tests.review import test_review_screen_browser as review_screen
from tests.review.test_review_screen_browser import logged_in_page

browser = review_screen.browser  # the fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}

# Draws the overlay on a canvas and reads it back: a broken image has no pixels to read.
OVERLAY_PIXELS = """(image) => {
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4) colours.add(data[i] + "," + data[i + 1] + "," + data[i + 2]);
    return {width: image.naturalWidth, height: image.naturalHeight, colours: colours.size};
}"""


def _heat_map_png() -> bytes:
    """A 64×64 gradient, as a stored Grad-CAM overlay looks to the browser: many colours."""
    image = Image.new("RGB", (64, 64))
    image.putdata([(4 * x, 4 * y, 128) for y in range(64) for x in range(64)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _review_screen(page: Page, live_server, slide) -> None:
    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]))


def _confirmable(page: Page) -> None:
    expect(page.locator("#review-form")).to_have_attribute("data-confirmable", "true")


def test_the_gradcam_overlay_is_drawn_with_real_pixels(browser, live_server, pathologist, slide, predictions):
    gradcam = GradCam(prediction=predictions[3], status=GradCamStatus.SUCCEEDED, finished_at=timezone.now())
    gradcam.image.save("overlay.png", ContentFile(_heat_map_png()), save=True)
    page = logged_in_page(browser, live_server, "patho")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    _review_screen(page, live_server, slide)
    expect(page.locator("#predicted-label")).to_have_text("Monocyte")  # predictions[3], least confident

    page.keyboard.press("g")
    overlay = page.locator("#gradcam-image")
    expect(overlay).to_be_visible()
    page.wait_for_function("() => document.getElementById('gradcam-image').naturalWidth > 0")
    pixels = overlay.evaluate(OVERLAY_PIXELS)

    assert (pixels["width"], pixels["height"]) == (64, 64)
    assert pixels["colours"] > 100  # the gradient, not a uniform (or empty) box
    assert not [text for text in console if "Content Security Policy" in text]


def test_holding_enter_confirms_no_flagged_cell_it_has_not_shown(
    browser, live_server, pathologist, slide, predictions
):
    # Queue order, least confident first: the first two cells (0.55, 0.72) are below the threshold.
    page = logged_in_page(browser, live_server, "patho")
    _review_screen(page, live_server, slide)
    position = page.locator("#cell-position")
    expect(page.locator("#flagged")).to_be_visible()
    page.keyboard.down("Enter")  # at once: the cell has not been on screen long enough
    for _ in range(40):  # held for over a second: auto-repeated keydowns
        page.keyboard.down("Enter")
        page.wait_for_timeout(30)
    page.keyboard.up("Enter")

    expect(page.locator("#review-hint")).to_contain_text("Flagged cell")
    expect(position).to_have_text("1")
    assert not Review.objects.exists()

    _confirmable(page)  # shown for FLAGGED_CELL_MIN_MS: a fresh press confirms this one cell
    page.keyboard.down("Enter")
    for _ in range(20):
        page.keyboard.down("Enter")
        page.wait_for_timeout(30)
    page.keyboard.up("Enter")

    expect(position).to_have_text("2")
    expect(page.locator("#review-progress")).to_have_text("1 of 5 cells reviewed")
    assert Review.objects.count() == 1
    page.keyboard.press("j")  # a not-flagged cell (0.91), then back to the flagged one: shown anew
    page.keyboard.press("k")
    expect(position).to_have_text("2")
    expect(page.locator("#flagged")).to_be_visible()
    page.keyboard.press("c")  # too soon on a flagged cell, whichever key
    page.wait_for_timeout(FLAGGED_CELL_MIN_MS // 4)
    assert Review.objects.count() == 1


def test_tiles_tell_individual_from_bulk_verification(
    browser, live_server, pathologist, slide, predictions, lab_staff
):
    Review.objects.create(
        prediction=predictions[0],
        reviewer=pathologist,
        label=CellClass.NEUTROPHIL,
        decision="confirmed",
        bulk=True,
        bulk_threshold=0.972,
    )
    Review.objects.create(
        prediction=predictions[1], reviewer=pathologist, label=CellClass.NEUTROPHIL, decision="confirmed"
    )
    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))

    expect(page.locator("[data-verification=bulk]")).to_have_text("Bulk-confirmed · threshold 0.972")
    expect(page.locator("[data-verification=individual]")).to_have_text("Verified individually")


@pytest.mark.parametrize("page_name", ["review:queue", "review:slide_differential", "review:slide_review"])
def test_review_pages_fit_a_phone_width(browser, live_server, pathologist, slide, predictions, page_name):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server.url + reverse("accounts:login"))
    page.fill("#id_username", "patho")
    page.fill("#id_password", "correct-horse-battery-staple")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("home"))
    args = [] if page_name == "review:queue" else [slide.pk]
    page.goto(live_server.url + reverse(page_name, args=args))
    page.wait_for_load_state("load")

    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page_name} is {width} px wide at a {PHONE['width']} px viewport"
    context.close()
