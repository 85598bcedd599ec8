"""The field view in a real browser (Debian's Chromium, headless): the boxes are drawn on the field
and reached with Tab (each a link to its cell's review), and a missed cell is added by dragging a
box across the field, with no inline script (strict CSP)."""

import os
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from cases.models import CellImage, CellSource
from cases.services import FieldCellCrop, field_cells_store
from classifier.models import CellClass, InferenceJob
from tests.factories import distinct_png, field_bytes, field_image_make, prediction_make
from tests.review.test_review_screen_browser import browser, logged_in_page  # noqa: F401, F811  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The docs' screenshot is refreshed only on request (HEMATOVISION_DOCS_IMAGES=docs/images); a plain
# run writes its screenshot with the other test artifacts (git-ignored).
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = (
    Path(os.environ.get("HEMATOVISION_DOCS_IMAGES") or ROOT / "test-artifacts" / "fields") / "field-view.png"
)


@pytest.fixture
def queued_jobs(monkeypatch) -> list[int]:
    """The live server runs in this process: catch the worker task instead of sending it."""
    from classifier.tasks import inference_job_run_task

    queued: list[int] = []
    monkeypatch.setattr(inference_job_run_task, "delay", queued.append)
    return queued


@pytest.fixture
def located_field(slide, lab_staff, tiny_model_version):
    field = field_image_make(slide, lab_staff, field_bytes([(180, 220), (460, 240)]), name="field-7.png")
    crops = [
        FieldCellCrop(*box, score=0.95, png=distinct_png(700 + index, size=(32, 32)), crop_size=32)
        for index, box in enumerate([(110, 157, 140, 126), (390, 177, 140, 126)])
    ]
    cells, _ = field_cells_store(
        field_image=field, crops=crops, locator={}, actor_username="inference-worker"
    )
    predictions = [
        prediction_make(cells[0], tiny_model_version, CellClass.NEUTROPHIL, 0.97),
        prediction_make(cells[1], tiny_model_version, CellClass.LYMPHOCYTE, 0.64),
    ]
    return field, cells, predictions


def test_the_boxes_are_reached_with_the_keyboard_and_a_missed_cell_is_drawn(
    browser,  # noqa: F811  (the fixture imported above)
    live_server,
    pathologist,
    located_field,
    queued_jobs,
):
    field, cells, predictions = located_field
    page = logged_in_page(browser, live_server, "patho")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(live_server.url + reverse("review:field_detail", args=[field.pk]))

    boxes = page.locator("svg#field-overlay a.field-box")
    expect(boxes).to_have_count(2)
    expect(page.locator(f"#box-{cells[0].pk} text")).to_have_text("1 Neutrophil")
    for _ in range(40):  # Tab through the page's links until the first box has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == f"box-{cells[0].pk}":
            break
    expect(page.locator(f"#box-{cells[0].pk}")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator(f"#box-{cells[1].pk}")).to_be_focused()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.locator("main").screenshot(path=str(SCREENSHOT))
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/review/slides/{field.slide_id}/?cell={predictions[1].pk}")

    page.goto(live_server.url + reverse("review:field_detail", args=[field.pk]))
    page.click("#field-draw-button")
    expect(page.locator("#field-draw-button")).to_have_attribute("aria-pressed", "true")
    svg = page.locator("#field-overlay").bounding_box()
    scale = svg["width"] / 640
    page.mouse.move(svg["x"] + 20 * scale, svg["y"] + 300 * scale)
    page.mouse.down()
    page.mouse.move(svg["x"] + 100 * scale, svg["y"] + 380 * scale, steps=5)
    page.mouse.move(svg["x"] + 170 * scale, svg["y"] + 450 * scale, steps=5)
    page.mouse.up()
    expect(page.locator("#field-drawn")).to_have_attribute("visibility", "visible")
    drawn = [int(page.input_value(f"#box-{name}")) for name in ("x", "y", "width", "height")]
    assert all(abs(got - want) <= 2 for got, want in zip(drawn, [20, 300, 150, 150], strict=True)), drawn
    expect(page).to_have_url(live_server.url + reverse("review:field_detail", args=[field.pk]))
    page.fill("#box-reason", "Missed by the locator")
    page.click("#field-add-button")

    expect(page.locator(".alert-success, .alert-info").first).to_contain_text("The cell is added")
    added = CellImage.objects.get(field_image=field, source=CellSource.ADDED)
    assert list(added.box) == drawn
    assert queued_jobs == [InferenceJob.objects.get(cell_images=added).pk]
    expect(page.locator(f"#box-{added.pk} text")).to_have_text("3 pending")
    assert not errors, errors


def test_the_field_view_fits_a_phone_width(browser, live_server, pathologist, located_field):  # noqa: F811
    field, _, _ = located_field
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = logged_in_page(context, live_server, "patho")
    page.goto(live_server.url + reverse("review:field_detail", args=[field.pk]))
    page.wait_for_load_state("load")

    width = page.evaluate("() => document.documentElement.scrollWidth")
    # (A visually hidden label in the scrolling table once widened the page: its table wrapper must
    # be positioned for the overflow to hold it.)
    assert width <= 390, f"the field view is {width} px wide at a 390 px viewport"
    assert page.locator("#field-overlay").bounding_box()["width"] <= 390
    context.close()
