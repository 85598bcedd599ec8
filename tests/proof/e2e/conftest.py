"""Browser end-to-end: Debian's Chromium against the live server, a real Celery worker with the
default model, and a full-page screenshot of every page visited (kept as test artifacts)."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, BrowserContext, Page
from pytest_django.live_server_helper import LiveServer

from tests.cases.test_upload_page_browser import browser  # noqa: F401  (fixture)
from tests.conftest import PASSWORD
from tests.worker_fixtures import make_worker, serving_model, worker_queue  # noqa: F401  (fixtures)

VIEWPORT = {"width": 1280, "height": 860}
# A full-page screenshot does not scroll, so images below the fold marked loading="lazy" would
# show as empty boxes: load them all first.
LOAD_LAZY_IMAGES = """() => Promise.all(Array.from(document.images, (image) => {
    image.loading = "eager";
    return image.complete ? null : new Promise((done) => { image.onload = image.onerror = done; });
}))"""


def artifacts_dir() -> Path:
    """HEMATOVISION_TEST_ARTIFACTS, else test-artifacts/e2e/ under the repository root (git-ignored)."""
    configured = os.environ.get("HEMATOVISION_TEST_ARTIFACTS")
    return Path(configured) if configured else Path(settings.BASE_DIR) / "test-artifacts" / "e2e"


class Screens:
    """Numbered full-page screenshots, so the folder reads in the order the pages were visited."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def shoot(self, page: Page, name: str) -> Path:
        page.wait_for_load_state("load")
        page.evaluate(LOAD_LAZY_IMAGES)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        # Transitions jump to their end: a progress bar is shown where it is going, not half-way.
        page.screenshot(path=path, full_page=True, animations="disabled")
        self.taken.append(path)
        return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call":
        item.e2e_call_failed = report.failed
    return report


@pytest.fixture
def screens(request: pytest.FixtureRequest) -> Screens:
    folder = artifacts_dir() / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.png"):
        stale.unlink()
    return Screens(folder)


@pytest.fixture
def open_session(
    browser: Browser,  # noqa: F811
    live_server: LiveServer,
    screens: Screens,
    request: pytest.FixtureRequest,
) -> Iterator:
    """Log a user in through the login form, in a browser context of their own (own cookies).
    If the test fails, each page still open is photographed as it was."""
    contexts: list[tuple[str, BrowserContext]] = []

    def open_as(username: str, password: str = PASSWORD) -> Page:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        contexts.append((username, context))
        page = context.new_page()
        page.goto(live_server.url + "/accounts/login/")
        screens.shoot(page, f"{username} login")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.keyboard.press("Enter")
        page.wait_for_url(live_server.url + "/")
        screens.shoot(page, f"{username} home")
        return page

    yield open_as
    for username, context in contexts:
        if getattr(request.node, "e2e_call_failed", False):
            for page in context.pages:
                page.screenshot(path=screens.folder / f"failed-{username}.png", full_page=True)
        context.close()
