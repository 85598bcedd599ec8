"""The upload page in a real browser (Debian's Chromium, headless): files chosen in the dialog
and files dropped on the zone are sent together, and each gets its result."""

import shutil

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, sync_playwright
from pytest_django.live_server_helper import LiveServer

from cases.models import CellImage, Patient, Slide
from tests.conftest import PASSWORD
from tests.factories import distinct_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DROP_FILES = """([zone, files]) => {
    const transfer = new DataTransfer();
    for (const [name, bytes] of files) {
        transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "application/octet-stream"}));
    }
    for (const type of ["dragenter", "dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }
}"""


@pytest.fixture
def browser(monkeypatch) -> Browser:
    assert CHROMIUM, "Debian's chromium is needed for browser tests (make test installs it)."
    # Playwright's sync API keeps an event loop in this thread; the ORM calls made here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()
        # Connections opened while Playwright's loop ran live in its context: close them here,
        # or the test database cannot be dropped at the end of the run.
        connections.close_all()


def logged_in_page(browser: Browser, live_server: LiveServer, username: str) -> Page:
    page = browser.new_page()
    page.goto(live_server.url + reverse("accounts:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("home"))
    return page


def test_chosen_and_dropped_files_are_uploaded_together(browser, live_server, lab_staff):
    patient = Patient.objects.create(
        mrn="B-1",
        family_name="Browser",
        given_name="Test",
        date_of_birth="1990-01-01",
        sex="other",
        created_by=lab_staff,
    )
    slide = Slide.objects.create(
        patient=patient, accession_number="B-S1", collected_at=timezone.now(), created_by=lab_staff
    )
    page = logged_in_page(browser, live_server, "lab")
    page.goto(live_server.url + reverse("cases:cell_image_upload", args=[slide.pk]))
    page.set_input_files(
        "#files",
        [
            {"name": "chosen-1.png", "mimeType": "image/png", "buffer": distinct_png(1)},
            {"name": "chosen-2.png", "mimeType": "image/png", "buffer": distinct_png(2)},
        ],
    )
    dropped = [["dropped.png", list(distinct_png(3))], ["broken.png", list(b"not an image")]]
    page.evaluate(DROP_FILES, [page.query_selector("#drop-zone"), dropped])
    assert page.locator("#chosen-files li").count() == 4
    page.click("#upload-button")
    rows = page.locator("#upload-results tbody tr")
    rows.first.wait_for()
    results = [rows.nth(index).inner_text().split("\t")[:2] for index in range(rows.count())]
    assert results == [
        ["chosen-1.png", "Accepted"],
        ["chosen-2.png", "Accepted"],
        ["dropped.png", "Accepted"],
        ["broken.png", "Rejected"],
    ]
    assert CellImage.objects.filter(slide=slide).count() == 3


def test_an_idle_page_returns_to_the_login_form(browser, live_server, lab_staff, settings):
    settings.HEMATOVISION_SESSION_IDLE_SECONDS = 2
    page = logged_in_page(browser, live_server, "lab")
    page.wait_for_url(f"{live_server.url}{reverse('accounts:login')}**", timeout=15_000)
    assert "logged off after a period of inactivity" in page.content()
