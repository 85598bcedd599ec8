"""The Models pages in a real browser (Debian's Chromium, headless), with the two committed models
registered as a lab would register them: every figure the page shows is the one in the registered
card and evaluation, and the confusion matrices and training curves are drawn under the
Content-Security-Policy.

``HEMATOVISION_DOCS_IMAGES=docs/images`` also writes the screenshot docs/workstation.md shows.
"""

import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import expect

from classifier.services import model_version_activate, model_version_register
from tests.review import test_review_screen_browser as review_screen
from tests.review.test_review_screen_browser import logged_in_page

browser = review_screen.browser  # the fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MODELS = Path(settings.BASE_DIR) / "ml" / "models"


@pytest.fixture
def committed_models(settings, administrator):
    """wbc-mnv2-v1.1 registered first (so active), then wbc-mnv2-v1.2 activated by the admin."""
    settings.HEMATOVISION_MODELS_ROOT = MODELS
    first = model_version_register(directory=MODELS / "wbc-mnv2-v1.1")
    second = model_version_register(directory=MODELS / "wbc-mnv2-v1.2")
    model_version_activate(actor=administrator, model_version=second)
    return first, second


def _natural_width(image) -> int:
    image.scroll_into_view_if_needed()
    return image.evaluate("(image) => image.complete ? image.naturalWidth : 0")


def test_a_pathologist_reads_a_model_version_as_registered(
    browser, live_server, pathologist, committed_models
):
    first, second = committed_models
    card = json.loads((MODELS / "wbc-mnv2-v1.2" / "model_card.json").read_text())
    evaluation = json.loads((MODELS / "wbc-mnv2-v1.2" / "evaluation.json").read_text())
    page = logged_in_page(browser, live_server, "patho")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(live_server.url + reverse("classifier:model_version_list"))
    row = page.locator("tr[data-model-version='wbc-mnv2-v1.2']")
    expect(row).to_contain_text("active")
    expect(row.locator("[data-active-since]")).to_contain_text("by admin")
    expect(row.locator("[data-lineage]")).to_have_text("from wbc-mnv2-v1.1")
    kaggle = card["metrics"]["kaggle_test"]
    expect(row.locator("[data-headline]")).to_contain_text(
        f"Kaggle TEST: accuracy {100 * kaggle['accuracy']:.1f} %"
    )
    # One review threshold per source: PBC's validated, Kaggle's not (too few distinct cells).
    expect(row.locator("[data-validated-domains]")).to_contain_text(
        f"review threshold {card['domain']['review_thresholds']['pbc']:.3f}"
    )
    expect(row.locator("[data-no-review-threshold]")).to_have_count(1)
    row.get_by_role("link", name="wbc-mnv2-v1.2").click()

    expect(page.locator("h1")).to_contain_text("wbc-mnv2-v1.2")
    expect(page.locator("[data-threshold-text]")).to_contain_text("nearest to")
    expect(page.locator("[data-source-review-threshold]").last).to_contain_text(
        f"{card['domain']['review_thresholds']['pbc']:.4f}"
    )
    expect(page.locator("[data-source-review-threshold]").first).to_contain_text("none validated")
    expect(page.locator("[data-threshold-text]")).to_contain_text(f"({card['review_threshold']:.4f})")
    figures = page.locator("[data-figures]")
    accepted = kaggle["auto_accept"]
    expect(figures).to_contain_text(f"{accepted['accepted']:,} of {accepted['cells']:,}")
    pbc = card["metrics"]["pbc_test"]["auto_accept"]
    expect(figures).to_contain_text(f"{pbc['accepted_wrong']:,} of {pbc['accepted']:,}")
    for fitted in card["domain"]["fit_cells"].values():
        expect(page.locator("[data-domains]")).to_contain_text(f"{fitted:,}")
    first_row = evaluation["results"]["kaggle_test"]["confusion_matrix"][0]
    cells = page.locator("[data-confusion='kaggle_test'] tbody tr").first.locator("td")
    assert [int(cells.nth(i).inner_text()) for i in range(4)] == first_row

    images = page.locator("main img")
    assert images.count() == 4  # three confusion matrices and the training curves
    for index in range(images.count()):
        assert _natural_width(images.nth(index)) > 0
    expect(page.locator("[data-lineage]")).to_contain_text(card["derivation"])
    page.locator("[data-lineage]").get_by_role("link", name="wbc-mnv2-v1.1").click()
    expect(page.locator("h1")).to_contain_text("wbc-mnv2-v1.1")
    expect(page.locator("[data-history]")).to_contain_text("wbc-mnv2-v1.2 was activated instead")
    assert not [text for text in console if "Content Security Policy" in text]

    if os.environ.get("HEMATOVISION_DOCS_IMAGES"):
        page.set_viewport_size({"width": 1200, "height": 1700})
        page.goto(live_server.url + reverse("classifier:model_version_detail", args=[second.pk]))
        page.locator("[data-confusion='kaggle_test'] img").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=Path(os.environ["HEMATOVISION_DOCS_IMAGES"]) / "models-page.png")
