"""A lab day in a real browser (Debian's Chromium, headless) against the running app and a real
Celery worker serving the default model: lab staff register a patient and a slide, upload ten
files and watch them being classified (the slide becomes ready for review); a pathologist verifies
every cell by keyboard, corrects one, bulk-confirms the confident ones, confirms each flagged cell
once it has been shown, and signs; an admin creates a user; the CSV and FHIR exports are
downloaded and checked. Every page visited is kept as a full-page screenshot."""

import csv
import io
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import Locator, Page, Route, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.roles import Role
from cases.models import CellImage, Slide, SlideStatus
from classifier.domain import confidence_reaches
from classifier.models import CellClass, InferenceJob, InferenceJobStatus, Prediction
from devtools.benchmark import shared_test_images
from review.models import DifferentialClass, Review, ReviewDecision
from tests.conftest import PASSWORD
from tests.proof.e2e.conftest import Screens

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CELL_COUNT = 9
CLASSES = tuple(CellClass.values)
CORRECTION_REASON = "Nuclear morphology indicates another class"
REPORT_COMMENT = "Normal differential; no atypical cells on the smear."
JOB_SECONDS = 90
MESSAGES = "main > .alert"  # the messages framework's alerts, above each page's content


def _upload_files() -> list[dict]:
    """Nine shared TEST cells (named after their true class) and one JPEG cut off half-way."""
    *cells, cut_off = shared_test_images(CELL_COUNT + 1)
    files = [_jpeg(f"{path.parent.name.lower()}-{path.name}", path.read_bytes()) for path in cells]
    data = cut_off.read_bytes()
    return [*files, _jpeg("cut-off.jpeg", data[: len(data) // 2])]


def _jpeg(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": data}


def _record_progress(page: Page, seen: list[dict]) -> None:
    """Keep every progress answer the page receives while it polls the job."""

    def handle(route: Route) -> None:
        response = route.fetch()
        seen.append(response.json())
        route.fulfill(response=response)

    page.route(re.compile(r"/inference-jobs/\d+/progress/"), handle)


def _lab_staff_registers_uploads_and_classifies(
    open_as: Callable[..., Page], screens: Screens, start_worker: Callable[[], object]
) -> Slide:
    page = open_as("lab")
    page.get_by_role("link", name="New patient").click()
    screens.shoot(page, "lab new patient")
    page.fill("#id_mrn", "E2E-0001")
    page.fill("#id_family_name", "Sample")
    page.fill("#id_given_name", "Erin")
    page.fill("#id_date_of_birth", "1984-03-09")
    page.select_option("#id_sex", "female")
    page.keyboard.press("Enter")
    expect(page.locator(MESSAGES)).to_contain_text("Patient created.")
    screens.shoot(page, "lab patient created")

    page.get_by_role("link", name="New slide").click()
    page.fill("#id_accession_number", "E2E-S-0001")
    page.fill("#id_collected_at", "2026-11-26T08:30")
    page.fill("#id_notes", "Peripheral smear, browser end-to-end run")
    screens.shoot(page, "lab new slide")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(MESSAGES)).to_contain_text("Slide created.")
    screens.shoot(page, "lab slide created")

    page.get_by_role("link", name="Upload images").click()
    page.wait_for_url("**/upload/")  # after "load": upload.js must be listening before files are chosen
    _tab_to(page, page.locator("#files"))  # the drop zone's file input, hidden behind its label
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(_upload_files())
    expect(page.locator("#chosen-files li")).to_have_count(CELL_COUNT + 1)
    screens.shoot(page, "lab upload chosen")
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_have_text(f"{CELL_COUNT} of {CELL_COUNT + 1} files accepted.")
    refused = page.locator("#upload-results tr.table-danger")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("cut-off.jpeg")
    expect(refused).to_contain_text("image data is corrupt or truncated")
    screens.shoot(page, "lab upload results")

    page.get_by_role("link", name="Back to the slide").click()
    progress: list[dict] = []
    _record_progress(page, progress)
    page.get_by_role("button", name="Submit for classification").click()
    status = page.locator('[data-field="status_label"]')
    expect(status).to_have_text("Queued")
    screens.shoot(page, "lab slide queued")
    start_worker()  # only now: the page has to follow the job by itself
    expect(status).to_have_text("Succeeded", timeout=JOB_SECONDS * 1000)
    expect(page.locator('[data-field="bar"]')).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(page.locator("figcaption .progress-bar")).to_have_count(CELL_COUNT)
    screens.shoot(page, "lab slide classified")

    done = [answer["done"] for answer in progress]
    assert progress[0]["finished"] is False and progress[-1]["finished"] is True
    assert done == sorted(done) and done[-1] == CELL_COUNT and progress[-1]["failed"] == 0
    return Slide.objects.get(accession_number="E2E-S-0001")


def _tab_to(page: Page, target: Locator, most: int = 40) -> None:
    """Move the focus with Tab, as a keyboard user does, until it reaches the target."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} not reached with {most} Tab presses")


def _correction_for(page: Page) -> tuple[str, str]:
    """The cell on screen's true class when the model missed it, else another class: (key, label)."""
    predicted = page.locator("#predicted-label").inner_text().upper()
    true_class = page.locator("#cell-filename").inner_text().split("-")[0].upper()
    target = true_class if true_class != predicted else CLASSES[(CLASSES.index(predicted) + 1) % len(CLASSES)]
    return target[0].lower(), target


def _pathologist_verifies_and_signs(open_as: Callable[..., Page], screens: Screens, slide: Slide) -> Page:
    page = open_as("patho")
    ready = page.locator('#slide-counts [data-status="ready_for_review"] [data-count]')
    expect(ready).to_have_text("1")  # classified: waiting for a pathologist
    expect(page.locator('#home-worklist [data-accession="E2E-S-0001"]')).to_be_visible()
    page.get_by_role("link", name="Review queue").click()
    screens.shoot(page, "patho review queue")
    page.get_by_role("link", name="Review", exact=True).first.click()  # the least confident cell
    progress = page.locator("#review-progress")
    expect(progress).to_have_text(f"0 of {CELL_COUNT} cells reviewed")
    screens.shoot(page, "patho review screen")

    key, corrected_label = _correction_for(page)
    corrected_file = page.locator("#cell-filename").inner_text()
    page.keyboard.press(key)
    expect(page.locator("#review-reason")).to_be_focused()
    page.keyboard.type(CORRECTION_REASON)
    screens.shoot(page, "patho correction with reason")
    page.keyboard.press("Enter")
    expect(progress).to_have_text(f"1 of {CELL_COUNT} cells reviewed")

    _tab_to(page, page.get_by_role("button", name="Bulk confirm confident cells"))
    page.keyboard.press("Enter")
    expect(page.locator(MESSAGES)).to_contain_text("at or above the review threshold")
    screens.shoot(page, "patho after bulk confirm")

    _assert_bulk_confirmed_exactly_the_confident_cells(slide)
    unreviewed = Prediction.objects.filter(cell_image__slide=slide, reviews__isnull=True).count()
    for remaining in range(unreviewed, 0, -1):
        expect(page.locator("#current-review")).to_have_text("Not reviewed yet")
        # A flagged cell: Enter confirms it only once it has been on screen for a moment.
        expect(page.locator("#review-form")).to_have_attribute("data-confirmable", "true")
        page.keyboard.press("Enter")
        if remaining > 1:
            page.keyboard.press("u")
    expect(progress).to_have_text(f"{CELL_COUNT} of {CELL_COUNT} cells reviewed")
    screens.shoot(page, "patho every cell reviewed")

    page.keyboard.press("s")
    expect(page.locator("#id_password")).to_be_focused()
    # Fewer white cells than the lab's target of 100: signing needs the pathologist's acknowledgement.
    expect(page.locator("#sign-below-target")).to_contain_text(f"{CELL_COUNT} / 100 WBC counted")
    screens.shoot(page, "patho sign page")
    page.check("#id_acknowledge_count")
    page.locator("#id_password").focus()
    page.keyboard.type("not-my-password")
    page.keyboard.press("Enter")
    expect(page.locator("main form")).to_contain_text("The password is not correct; the slide was not signed")
    screens.shoot(page, "patho sign refused")
    page.fill("#id_comment", REPORT_COMMENT)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#slide-signature")).to_contain_text("reviewed and approved by Paul Patho")
    screens.shoot(page, "patho slide signed")
    page.click("#slide-report-link")
    expect(page.locator("#report-patient")).to_contain_text("Sample, Erin")
    expect(page.locator("#report-comment")).to_have_text(REPORT_COMMENT)
    screens.shoot(page, "patho report")
    page.go_back()

    assert (corrected_file, corrected_label) == _only_correction(slide)
    return page


def _assert_bulk_confirmed_exactly_the_confident_cells(slide: Slide) -> None:
    predictions = Prediction.objects.filter(cell_image__slide=slide).select_related("model_version")
    confident = {p.pk for p in predictions if confidence_reaches(p.confidence, p.cell_review_threshold)}
    reviews = Review.objects.filter(prediction__cell_image__slide=slide)
    corrected = set(reviews.filter(decision=ReviewDecision.CORRECTED).values_list("prediction_id", flat=True))
    bulk = reviews.filter(bulk=True, decision=ReviewDecision.CONFIRMED)
    assert set(bulk.values_list("prediction_id", flat=True)) == confident - corrected


def _only_correction(slide: Slide) -> tuple[str, str]:
    reviews = Review.objects.filter(prediction__cell_image__slide=slide).select_related(
        "prediction__cell_image"
    )
    assert reviews.count() == CELL_COUNT
    assert {review.prediction_id for review in reviews} == set(
        Prediction.objects.filter(cell_image__slide=slide).values_list("pk", flat=True)
    )
    [correction] = [review for review in reviews if review.decision == ReviewDecision.CORRECTED]
    assert correction.reason == CORRECTION_REASON and not correction.bulk
    return correction.prediction.cell_image.original_filename, correction.label


def _admin_creates_a_user(open_as: Callable[..., Page], screens: Screens) -> None:
    page = open_as("admin")
    page.get_by_role("link", name="Users", exact=True).first.click()
    screens.shoot(page, "admin users")
    page.get_by_role("link", name="New user").click()
    page.fill("#id_username", "newtech")
    page.fill("#id_first_name", "Nora")
    page.fill("#id_last_name", "Newtech")
    page.fill("#id_email", "nora.newtech@example.org")
    page.select_option("#id_role", Role.LAB_STAFF.value)
    page.fill("#id_new_password", "Granulocyte-Smear-2026")
    page.fill("#id_new_password_again", "Granulocyte-Smear-2026")
    screens.shoot(page, "admin new user form")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator(MESSAGES)).to_contain_text("User newtech created.")
    screens.shoot(page, "admin user created")

    created = User.objects.get(username="newtech")
    assert created.is_active and created.get_full_name() == "Nora Newtech"
    assert list(created.groups.all()) == [Group.objects.get(name=Role.LAB_STAFF.value)]
    newcomer = open_as("newtech", "Granulocyte-Smear-2026")
    expect(newcomer.locator("nav")).to_contain_text("Nora Newtech · Lab staff")


def _download(page: Page, link_name: str) -> tuple[str, bytes]:
    with page.expect_download() as started:
        page.get_by_role("link", name=link_name, exact=True).click()
    download = started.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def _exports_are_downloaded_and_checked(page: Page, slide: Slide) -> None:
    corrected_file, corrected_label = _only_correction(slide)
    name, content = _download(page, "CSV")
    assert name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    assert len(rows) == CELL_COUNT
    assert {row["original_filename"] for row in rows} == set(
        CellImage.objects.filter(slide=slide).values_list("original_filename", flat=True)
    )
    [corrected] = [row for row in rows if row["review_decision"] == ReviewDecision.CORRECTED]
    assert (corrected["original_filename"], corrected["final_label"]) == (corrected_file, corrected_label)
    assert corrected["review_reason"] == CORRECTION_REASON and corrected["signed_by"] == "Paul Patho"
    bulk = {row["original_filename"] for row in rows if row["verification"].startswith("bulk at threshold ")}
    individual = {row["original_filename"] for row in rows if row["verification"] == "individual"}
    assert corrected_file in individual and len(bulk) + len(individual) == CELL_COUNT
    assert bulk == set(
        Review.objects.filter(prediction__cell_image__slide=slide, bulk=True).values_list(
            "prediction__cell_image__original_filename", flat=True
        )
    )

    name, content = _download(page, "FHIR R4")
    assert name.endswith(".fhir.json")
    bundle = Bundle.model_validate_json(content)
    observations = {
        resource.code.coding[0].code: resource
        for resource in (entry.resource for entry in bundle.entry)
        if resource.get_resource_type() == "Observation"
    }
    final_labels = [row["final_label"] for row in rows]
    for label in CLASSES:
        count = final_labels.count(label)
        percent = (Decimal(100 * count) / CELL_COUNT).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        observation = observations[DifferentialClass.objects.get(code=label).loinc_code]
        assert Decimal(str(observation.valueQuantity.value)) == percent
        assert observation.note[0].text == f"{count} of {CELL_COUNT} cells counted"
    resources = {entry.resource.get_resource_type(): entry.resource for entry in bundle.entry}
    assert bundle.type == "collection" and resources["DiagnosticReport"].status == "final"
    assert len(resources["DiagnosticReport"].result) == len(CLASSES) == len(observations)
    assert resources["Patient"].identifier[0].value == "E2E-0001"


def test_a_slide_goes_from_upload_to_a_signed_exported_report_in_the_browser(
    open_session, screens, make_worker, lab_staff, pathologist, administrator, live_server: LiveServer
):
    slide = _lab_staff_registers_uploads_and_classifies(
        open_session, screens, lambda: make_worker(HEMATOVISION_INFERENCE_BATCH_SIZE="3")
    )
    job = InferenceJob.objects.get(slide=slide)
    assert (job.status, job.done, job.failed) == (InferenceJobStatus.SUCCEEDED, CELL_COUNT, 0)
    slide.refresh_from_db()
    assert slide.status == SlideStatus.READY_FOR_REVIEW
    assert CellImage.objects.filter(slide=slide).count() == CELL_COUNT

    pathologist_page = _pathologist_verifies_and_signs(open_session, screens, slide)
    slide.refresh_from_db()
    assert slide.status == SlideStatus.SIGNED

    _admin_creates_a_user(open_session, screens)
    _exports_are_downloaded_and_checked(pathologist_page, slide)
    assert len(screens.taken) >= 20
