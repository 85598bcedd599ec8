"""In a real browser: another lab's cells, classified by a real worker with the default model,
put the out-of-domain banner on the slide page, the review screen and the queue, and the review
screen offers no bulk confirmation."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from classifier.models import DomainVerdict, SlideDomainAssessment
from tests.cases.test_upload_page_browser import browser, logged_in_page  # noqa: F401  (fixture)
from tests.integration.test_domain_gate import _classified, _slide_of, other_lab_images

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_out_of_domain_cells_show_the_banner_and_no_bulk_confirmation(
    browser,  # noqa: F811
    live_server,
    lab_staff,
    pathologist,
    make_worker,
):
    make_worker()
    slide = _slide_of(lab_staff, other_lab_images(10), "DOM-B-10")
    _classified(slide, lab_staff)
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
