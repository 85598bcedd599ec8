"""The upload page's ergonomics in a real browser (Debian's Chromium, headless): the count and
total size of the chosen files, removing one before the upload, a progress bar while a slow
connection sends them, and deleting a wrongly uploaded image of the draft slide afterwards."""

import io
import os

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage
from tests.cases.test_upload_page_browser import browser, logged_in_page  # noqa: F401  (fixture)
from tests.factories import distinct_png, patient_make, slide_make

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Every 100 ms, what the progress line says (the page keeps its window when the results replace it).
WATCH_PROGRESS = """() => {
    window.progressSeen = [];
    setInterval(() => {
        const line = document.getElementById("upload-progress-text");
        if (line && line.textContent) window.progressSeen.push(line.textContent);
    }, 100);
}"""


def noise_png(side: int) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about side² × 3 bytes."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def size_text(size: int) -> str:
    """As upload.js writes a size."""
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / (1024 * 1024):.1f} MB"


def test_count_size_remove_progress_and_delete(browser, live_server, lab_staff):  # noqa: F811
    slide = slide_make(patient_make(lab_staff, "MRN-UP"), lab_staff, "S-UP-1")
    large = noise_png(700)
    files = [
        {"name": "cell-a.png", "mimeType": "image/png", "buffer": distinct_png(1)},
        {"name": "wrong-file.png", "mimeType": "image/png", "buffer": distinct_png(2)},
        {"name": "cell-large.png", "mimeType": "image/png", "buffer": large},
    ]
    page = logged_in_page(browser, live_server, "lab")
    page.goto(live_server.url + reverse("cases:cell_image_upload", args=[slide.pk]))
    page.set_input_files("#files", files)

    total = sum(len(file["buffer"]) for file in files)
    expect(page.locator("#chosen-summary")).to_have_text(f"3 files chosen, {size_text(total)} in all")
    page.get_by_role("button", name="Remove wrong-file.png from the chosen files").click()
    expect(page.locator("#chosen-files li")).to_have_count(2)
    kept = total - len(files[1]["buffer"])
    expect(page.locator("#chosen-summary")).to_have_text(f"2 files chosen, {size_text(kept)} in all")
    expect(page.get_by_role("button", name="Remove cell-large.png from the chosen files")).to_be_focused()

    cdp = page.context.new_cdp_session(page)  # a slow line: about four seconds for the 1.4 MB
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 350_000}
    cdp.send("Network.emulateNetworkConditions", conditions)
    page.evaluate(WATCH_PROGRESS)
    page.check("#kind-cell")  # the large one would be taken for a whole field by its size
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-progress")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("2 of 2 files accepted.", timeout=30_000)

    seen = page.evaluate("window.progressSeen")
    percents = [
        int(line.rsplit("(", 1)[1].split(" ")[0]) for line in seen if line.startswith("Uploading 2 files")
    ]
    assert any(0 < percent < 100 for percent in percents), seen
    assert percents == sorted(percents)
    assert [image.original_filename for image in CellImage.objects.order_by("id")] == [
        "cell-a.png",
        "cell-large.png",
    ]

    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": -1, "latency": 0})
    page.get_by_role("link", name="Delete… cell-a.png").click()
    page.fill("#id_reason", "Uploaded to the wrong slide")
    page.get_by_role("button", name="Delete the image").click()

    expect(page.locator(".alert-success")).to_contain_text("cell-a.png was deleted from slide S-UP-1.")
    assert page.url.endswith(reverse("cases:cell_image_upload", args=[slide.pk]))
    assert [image.original_filename for image in CellImage.objects.all()] == ["cell-large.png"]
    event = AuditEvent.objects.get(action=AuditAction.CELL_IMAGE_DELETED)
    assert (event.before["original_filename"], event.reason) == ("cell-a.png", "Uploaded to the wrong slide")
