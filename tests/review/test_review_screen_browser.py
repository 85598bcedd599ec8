"""The review screen in a real browser (Debian's Chromium, headless): a slide is verified with the
keyboard only — help overlay, a correction with its reason, confirmations by three keys (each
flagged cell once it has been shown for a moment), navigation and the Grad-CAM toggle."""

import shutil

import pytest
from django.db import connections
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from classifier.models import CellClass, GradCam
from review.models import Review, ReviewDecision
from tests.conftest import PASSWORD
from tests.factories import model_version_make

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch) -> Browser:
    assert CHROMIUM, "Debian's chromium is needed for browser tests (make test installs it)."
    # Playwright's sync API keeps an event loop in this thread; the ORM calls made here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        connections.close_all()


@pytest.fixture
def queued_gradcams(monkeypatch) -> list[int]:
    """The live server runs in this process: catch the worker task instead of sending it."""
    from classifier.tasks import gradcam_compute_task

    queued: list[int] = []
    monkeypatch.setattr(gradcam_compute_task, "delay", queued.append)
    return queued


def logged_in_page(browser: Browser, live_server: LiveServer, username: str) -> Page:
    page = browser.new_page()
    page.goto(live_server.url + reverse("accounts:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("home"))
    return page


def test_a_slide_is_verified_with_the_keyboard_alone(
    browser, live_server, pathologist, slide, predictions, queued_gradcams
):
    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]))
    position = page.locator("#cell-position")
    expect(page.locator("#predicted-label")).to_have_text("Monocyte")  # least confident first

    page.keyboard.press("?")
    expect(page.locator("#help-overlay")).to_be_visible()
    for _ in range(3):  # a modal: Tab stays on its Close button
        page.keyboard.press("Tab")
        expect(page.locator("#help-close")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#help-overlay")).to_be_hidden()
    page.keyboard.press("?")
    page.mouse.click(5, 300)  # the backdrop, outside the card
    expect(page.locator("#help-overlay")).to_be_hidden()

    page.keyboard.press("2")  # lymphocyte: a correction asks for the reason
    expect(page.locator("#review-reason")).to_be_focused()
    page.keyboard.type("Round nucleus, scant cytoplasm")
    page.keyboard.press("Enter")
    expect(position).to_have_text("2")
    # Every cell is flagged (no domain verdict): each is confirmed once it has been on screen.
    confirmable = page.locator("#review-form")
    expect(confirmable).to_have_attribute("data-confirmable", "true")
    page.keyboard.press("Enter")
    expect(position).to_have_text("3")
    expect(confirmable).to_have_attribute("data-confirmable", "true")
    page.keyboard.press("c")
    expect(position).to_have_text("4")
    expect(confirmable).to_have_attribute("data-confirmable", "true")
    page.keyboard.press("Space")
    expect(position).to_have_text("5")
    expect(confirmable).to_have_attribute("data-confirmable", "true")
    page.keyboard.press("n")  # the predicted class: confirmed
    expect(page.locator("#review-progress")).to_have_text("5 of 5 cells reviewed")

    page.keyboard.press("ArrowLeft")
    page.keyboard.press("k")
    expect(position).to_have_text("3")
    page.keyboard.press("j")
    expect(position).to_have_text("4")
    page.keyboard.press("g")
    expect(page.locator("#gradcam-status")).to_have_text("computing…")
    expect(page.locator("#cell-image")).to_be_hidden()
    page.keyboard.press("g")
    page.keyboard.press("Enter")  # already confirmed: moves on without a duplicate review
    expect(position).to_have_text("5")

    reviews = {review.prediction_id: review for review in Review.objects.all()}
    assert len(reviews) == 5
    corrected = reviews[predictions[3].pk]
    assert (corrected.label, corrected.decision, corrected.reason) == (
        CellClass.LYMPHOCYTE,
        ReviewDecision.CORRECTED,
        "Round nucleus, scant cytoplasm",
    )
    assert all(r.decision == ReviewDecision.CONFIRMED for pk, r in reviews.items() if pk != predictions[3].pk)
    assert queued_gradcams == [GradCam.objects.get(prediction=predictions[1]).pk]

    page.keyboard.press("s")  # to the sign page, where the password field has the focus
    expect(page.locator("#id_password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    # 5 of the lab's target of 100 white cells: the next field acknowledges signing below it.
    expect(page.locator("#sign-below-target")).to_contain_text("5 / 100 WBC counted")
    page.keyboard.press("Tab")
    expect(page.locator("#id_acknowledge_count")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#slide-signature")).to_contain_text("reviewed and approved by Paul Patho")
    slide.refresh_from_db()
    assert slide.is_locked


def test_refused_reviews_keep_the_pathologist_on_the_cell(
    browser, live_server, pathologist, slide, predictions, add_prediction
):
    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]))
    position = page.locator("#cell-position")

    page.keyboard.press("4")
    page.keyboard.press("Enter")
    expect(page.locator("#review-error")).to_contain_text("a correction needs a reason")
    expect(position).to_have_text("1")
    page.keyboard.press("Escape")
    page.keyboard.press("e")  # eosinophil is not the prediction either: still asks
    expect(page.locator("#review-reason")).to_be_focused()
    page.keyboard.press("Escape")

    # Meanwhile a newer model classified the cell: the server refuses, the screen goes back to it.
    newer_model = model_version_make("newer")
    add_prediction(slide, CellClass.MONOCYTE, 0.99, version=newer_model, cell_image=predictions[3].cell_image)
    expect(page.locator("#review-form")).to_have_attribute("data-confirmable", "true")  # a flagged cell
    page.keyboard.press("Enter")
    expect(page.locator("#review-error")).to_contain_text("A newer prediction exists")
    expect(position).to_have_text("1")
    expect(page.locator("#review-progress")).to_have_text("0 of 5 cells reviewed")
    assert not Review.objects.exists()
