"""The worklist and the report in a real browser (Debian's Chromium, headless): the pathologist's
home page lists urgent slides first, the worklist re-sorts by a click on a heading, the report page
prints without the navigation, its PDF link answers a PDF, and the sign page draws the patient's
trend.

With ``HEMATOVISION_DOCS_IMAGES`` set to a folder, the worklist and the report page are also saved
there as screenshots, and the PDF as report.pdf (docs/images/worklist.png,
earlier-results.png and, through ``pdftoppm``, report-pdf.png come from this test)."""

import datetime
import os
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from cases.models import Priority, SlideStatus
from classifier.models import CellClass
from tests.factories import patient_make, reviews_make, slide_make
from tests.review import test_review_screen_browser as review_screen
from tests.review.test_review_screen_browser import logged_in_page

browser = review_screen.browser  # the fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
N, L, M, E = CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE, CellClass.MONOCYTE, CellClass.EOSINOPHIL


def _docs_image(page: Page, name: str) -> None:
    folder = os.environ.get("HEMATOVISION_DOCS_IMAGES")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _rows(page: Page) -> list[str]:
    return page.locator("#worklist tbody tr").evaluate_all("rows => rows.map(row => row.dataset.accession)")


@pytest.fixture
def waiting(lab_staff, patient):
    now = timezone.now()
    other = patient_make(lab_staff, "MRN-7002", family_name="Okafor", given_name="Ada")
    third = patient_make(lab_staff, "MRN-7003", family_name="Lindqvist", given_name="Sven")
    for accession, owner, hours, priority, status in [
        ("HV-26-0412", patient, 27, Priority.ROUTINE, SlideStatus.IN_REVIEW),
        ("HV-26-0431", other, 6, Priority.ROUTINE, SlideStatus.READY_FOR_REVIEW),
        ("HV-26-0436", third, 2, Priority.URGENT, SlideStatus.READY_FOR_REVIEW),
        ("HV-26-0440", other, 1, Priority.ROUTINE, SlideStatus.SUBMITTED),
    ]:
        received = now - datetime.timedelta(hours=hours)
        slide_make(
            owner,
            lab_staff,
            accession,
            collected_at=received - datetime.timedelta(minutes=50),
            received_at=received,
            priority=priority,
            status=status,
        )


def test_the_worklist_puts_urgent_first_and_sorts_by_a_heading(browser, live_server, pathologist, waiting):
    page = logged_in_page(browser, live_server, "patho")
    expect(page.locator("#home-worklist #worklist tbody tr").first).to_have_attribute(
        "data-accession", "HV-26-0436"
    )

    page.click("#home-worklist-all")
    expect(page.locator("#worklist-count")).to_have_text("4")
    assert _rows(page) == ["HV-26-0436", "HV-26-0412", "HV-26-0431", "HV-26-0440"]
    expect(page.locator('[data-accession="HV-26-0436"] td').first).to_have_text("Urgent")
    _docs_image(page, "worklist.png")

    page.click('a[data-sort="received"]')
    page.wait_for_url("**sort=received**")
    assert _rows(page) == ["HV-26-0412", "HV-26-0431", "HV-26-0436", "HV-26-0440"]
    page.click('a[data-sort="received"]')  # again: reversed
    page.wait_for_url("**sort=-received**")
    assert _rows(page) == ["HV-26-0440", "HV-26-0436", "HV-26-0431", "HV-26-0412"]

    page.select_option("#worklist-status", "ready_for_review")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**status=ready_for_review**")
    assert _rows(page) == ["HV-26-0436", "HV-26-0431"]  # still reversed by receipt


def test_the_report_prints_without_navigation_and_its_pdf_downloads(
    browser, live_server, lab_staff, pathologist, make_signed_slide
):
    make_signed_slide("HV-26-0198", [N] * 6 + [L] * 3 + [M], days_ago=40)
    slide = make_signed_slide(
        "HV-26-0412",
        [N] * 3 + [L] * 4 + [M] * 2 + [E],
        days_ago=1,
        comment="Relative lymphocytosis; film reviewed.",
    )
    page = logged_in_page(browser, live_server, "lab")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(live_server.url + reverse("cases:slide_detail", args=[slide.pk]))
    page.click("#slide-report-link")

    expect(page.locator("#report-comment")).to_have_text("Relative lymphocytosis; film reviewed.")
    expect(page.locator('#report-differential [data-class="NEUTROPHIL"] [data-delta]')).to_contain_text(
        "-30.0"
    )
    expect(page.locator('#report-differential [data-class="EOSINOPHIL"] [data-flag]')).to_have_text("H")
    expect(page.locator("nav.navbar")).to_be_visible()
    _docs_image(page, "report-page.png")

    page.emulate_media(media="print")
    expect(page.locator("nav.navbar")).to_be_hidden()
    expect(page.locator(".breadcrumb")).to_be_hidden()
    expect(page.locator("#print-report")).to_be_hidden()
    expect(page.locator("#report-differential")).to_be_visible()
    page.goto(live_server.url + reverse("cases:patient_detail", args=[slide.patient.pk]))  # any page
    expect(page.locator("nav.navbar")).to_be_hidden()
    expect(page.locator("#trend-chart")).to_be_visible()
    page.emulate_media(media="screen")
    page.go_back()

    href = page.locator("#report-pdf").get_attribute("href")
    answer = page.request.get(live_server.url + href)
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF-")
    if folder := os.environ.get("HEMATOVISION_DOCS_IMAGES"):
        (Path(folder) / "report.pdf").write_bytes(answer.body())
    assert not [text for text in console if "Content Security Policy" in text]


def test_the_sign_page_draws_the_trend_and_flags_what_moved(
    browser, live_server, pathologist, make_signed_slide, make_slide, add_prediction
):
    make_signed_slide("HV-26-0107", [N] * 6 + [L] * 3 + [M], days_ago=60)
    make_signed_slide("HV-26-0198", [N] * 5 + [L] * 4 + [E], days_ago=30)
    slide = make_slide("HV-26-0412")
    reviews_make([add_prediction(slide, label) for label in [N, N, L, L, L, L, M, E]], pathologist)
    page = logged_in_page(browser, live_server, "patho")

    page.goto(live_server.url + reverse("review:slide_sign", args=[slide.pk]))

    expect(page.locator("#delta-summary")).to_contain_text("Compared with slide HV-26-0198")
    current = page.locator("#result-history tr[data-current]")
    expect(current.locator("[data-delta-flag]")).to_have_count(2)  # monocytes +12.5, neutrophils −25
    expect(page.locator("#trend-chart polyline")).to_have_count(4)
    box = page.locator("#trend-chart").bounding_box()
    assert box["width"] > 400 and box["height"] > 100  # drawn, not an empty element
    expect(page.locator("#id_password")).to_be_focused()  # the comment box does not take the focus
    _docs_image(page, "earlier-results.png")
