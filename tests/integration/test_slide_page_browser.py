"""The slide page in a real browser while a real worker classifies the slide: the progress
panel updates by itself and the page shows the grid of predictions when the job ends."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from classifier.models import InferenceJob, Prediction
from tests.cases.test_upload_page_browser import browser, logged_in_page  # noqa: F401  (fixture)
from tests.integration.test_inference_pipeline import _slide_with_shared_images

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_slide_page_follows_the_job_live_and_then_shows_each_cells_prediction(
    browser,  # noqa: F811
    live_server,
    lab_staff,
    make_worker,
):
    slide = _slide_with_shared_images(lab_staff, 8, "INT-B-8")
    page = logged_in_page(browser, live_server, "lab")
    page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))

    page.get_by_role("button", name="Submit for classification").click()
    expect(page.locator('[data-field="status_label"]')).to_have_text("Queued")
    expect(page.locator('[data-field="elapsed_seconds"]')).to_have_text("0")
    make_worker()  # only now: the page must pick the progress up without a reload by the test

    expect(page.locator('[data-field="status_label"]')).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator('[data-field="done"]')).to_have_text("8")
    expect(page.locator('[data-field="bar"]')).to_have_attribute("style", re.compile(r"width: 100%"))
    job = InferenceJob.objects.get(slide=slide)
    assert job.status == "succeeded"
    for prediction in Prediction.objects.filter(job=job):
        label = page.locator("figcaption strong", has_text=prediction.get_label_display())
        expect(label.first).to_be_visible()
    expect(page.locator("figcaption .progress-bar")).to_have_count(8)
