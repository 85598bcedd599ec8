"""In a real browser: lab staff upload another lab's cells and submit the slide; a real worker
classifies them with the default model; the out-of-domain banner then shows on the slide page,
the review screen and the queue, and the review screen offers no bulk confirmation."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from classifier.models import DomainVerdict, SlideDomainAssessment
from tests.cases.test_upload_page_browser import browser, logged_in_page  # noqa: F401  (fixture)
from tests.integration.test_domain_gate import _slide_of, other_lab_images

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_out_of_domain_cells_show_the_banner_and_no_bulk_confirmation(
    browser,  # noqa: F811
    live_server,
    lab_staff,
    pathologist,
    make_worker,
):
    make_worker()
    slide = _slide_of(lab_staff, [], "DOM-B-10")
    lab_page = logged_in_page(browser, live_server, "lab")
    lab_page.goto(live_server.url + reverse("cases:cell_image_upload", args=[slide.pk]))
    files = [
        {"name": path.name, "mimeType": "image/png", "buffer": path.read_bytes()}
        for path in other_lab_images(10)
    ]
    lab_page.set_input_files("#files", files)
    lab_page.click("#upload-button")
    expect(lab_page.locator("#upload-results tbody tr", has_text="Accepted")).to_have_count(10)
    lab_page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))
    lab_page.get_by_role("button", name="Submit for classification").click()
    expect(lab_page.locator('[data-field="status_label"]')).to_have_text("Succeeded", timeout=90_000)
    assert SlideDomainAssessment.objects.get(slide=slide).verdict == DomainVerdict.OUT_OF_DOMAIN

    page = logged_in_page(browser, live_server, "patho")
    page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))
    banner = page.locator('[data-domain-banner="out_of_domain"]')
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Outside the model's validated domain")
    expect(banner).to_contain_text("Review every cell")

    page.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]))
    expect(page.locator('[data-domain-banner="out_of_domain"]')).to_be_visible()
    expect(page.get_by_role("button", name="Bulk confirm confident cells")).to_have_count(0)
    expect(page.locator("#flagged")).to_be_visible()

    page.goto(live_server.url + reverse("review:queue") + f"?slide={slide.pk}")
    expect(page.locator('[data-domain-banner="queue"]')).to_contain_text("DOM-B-10")
    expect(page.locator("td .badge", has_text="out of domain")).to_have_count(10)
