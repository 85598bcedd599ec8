"""The admin's "Adapt to this lab" page in a real browser with a real training worker: from the
Models page to the counts, start, live progress, the candidate and its comparison."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import expect

from classifier.models import AdaptationRun, ModelVersion
from classifier.services import model_version_register
from tests.adaptation_lab import FAST_ADAPTATION_OPTIONS, lab_make
from tests.cases.test_upload_page_browser import browser, logged_in_page  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# HEMATOVISION_SCREENSHOTS=1 refreshes docs/images/adaptation-run.png (the tiny model's run page).
SCREENSHOTS = (
    Path(settings.BASE_DIR) / "docs" / "images" if os.environ.get("HEMATOVISION_SCREENSHOTS") == "1" else None
)


def test_an_admin_adapts_the_model_and_sees_progress_then_the_candidate(
    browser,  # noqa: F811
    live_server,
    administrator,
    lab_staff,
    pathologist,
    make_training_worker,
    tiny_model_dir,
):
    base = model_version_register(directory=tiny_model_dir)
    lab_make(base=base, lab_staff=lab_staff, pathologist=pathologist, per_class=6)
    page = logged_in_page(browser, live_server, "admin")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("classifier:model_version_list"))

    page.get_by_role("link", name="Adapt to this lab").click()
    expect(page.locator('[data-class="MONOCYTE"]')).to_have_text("6")
    page.get_by_role("button", name="Start the adaptation").click()
    expect(page.locator('[data-field="status_label"]')).to_have_text("Queued")
    make_training_worker(  # only now: the page must follow the run without a reload by the test
        HEMATOVISION_ADAPTATION_OPTIONS=FAST_ADAPTATION_OPTIONS, HEMATOVISION_MODEL_DIR=str(tiny_model_dir)
    )

    expect(page.locator('[data-field="status_label"]')).to_have_text("Running", timeout=60_000)
    candidate = page.locator("#adaptation-candidate")
    expect(candidate).to_be_visible(timeout=180_000)
    run = AdaptationRun.objects.get()
    assert run.status == "succeeded"
    expect(candidate).to_contain_text(run.result_model_version.name)
    expect(page.locator('[data-field="percent"]')).to_have_text("100")
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "adaptation-run.png"), full_page=True)

    candidate.get_by_role("link", name="Compare it with its parent").click()
    expect(page.locator('[data-comparison="lab_holdout"]')).to_be_visible()
    page.get_by_role("link", name="Activate…").click()
    page.fill("#id_password", "correct-horse-battery-staple")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator(".alert-success").first).to_contain_text("now classifies every new job")
    assert ModelVersion.objects.get(is_active=True) == run.result_model_version
