"""Teaching and consults in a real browser (Debian's Chromium, headless): a trainee takes a
proficiency set with the keyboard and reads the result; a consult is requested from the review
screen, answered by the consultant, closed, and shows in the signed report."""

import os
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import expect

from classifier.models import CellClass
from review.models import Consult, ConsultLabel, ConsultStatus, ProficiencyAttempt, SlideSignature
from review.services import slide_sign
from review.teaching_selectors import SourceCriteria
from review.teaching_services import proficiency_set_assign, proficiency_set_create
from tests.conftest import PASSWORD
from tests.factories import reauth_request, review_make
from tests.review.test_review_screen_browser import browser, logged_in_page  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# Screenshots land with the other test artifacts (git-ignored); docs/images/teaching-result.png and
# consult-answered.png are copies of them.
ARTIFACTS = Path(
    os.environ.get("HEMATOVISION_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
KEY_OF = {
    CellClass.EOSINOPHIL: "1",
    CellClass.LYMPHOCYTE: "2",
    CellClass.MONOCYTE: "3",
    CellClass.NEUTROPHIL: "4",
}


@pytest.fixture
def reviewed(slide, predictions, pathologist):
    """The five cells verified; the monocyte corrected to a lymphocyte."""
    for prediction in predictions[:3] + predictions[4:]:
        review_make(prediction, pathologist)
    review_make(predictions[3], pathologist, CellClass.LYMPHOCYTE, reason="Round nucleus")
    return predictions


@pytest.fixture
def screenshots() -> Path:
    folder = ARTIFACTS / "teaching-consults"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_trainee_takes_a_set_with_the_keyboard_and_reads_the_result(
    browser,  # noqa: F811
    live_server,
    slide,
    reviewed,
    pathologist,
    trainee,
    screenshots,
):
    slide_sign(
        actor=pathologist, slide=slide, password=PASSWORD, request=reauth_request(), count_acknowledged=True
    )
    proficiency_set = proficiency_set_create(
        actor=pathologist, name="Morphology week 1", criteria=SourceCriteria(), size=5, seed=3
    )
    proficiency_set_assign(actor=pathologist, proficiency_set=proficiency_set, trainees=[trainee], groups=[])
    items = list(proficiency_set.items.order_by("position"))

    page = logged_in_page(browser, live_server, "trainee")
    page.click("text=My proficiency sets")
    expect(page.locator("#my-sets")).to_contain_text("Morphology week 1")
    page.click("#my-sets button[type=submit]")
    expect(page.locator("#cell-count")).to_have_text("5")
    assert "Doe" not in page.content() and "S-5001" not in page.content()
    for item in items:
        expect(page.locator("#cell-position")).to_have_text(str(item.position))
        # Right except for the corrected cell, where the trainee follows the model (and is unsure).
        label = item.model_label if item.model_wrong else item.reference_label
        if item.model_wrong:
            page.keyboard.press("f")
            expect(page.locator("#unsure-badge")).to_be_visible()
        page.keyboard.press(KEY_OF[label])
    expect(page.locator("#answered-count")).to_have_text("5 of 5 answered")
    page.click("#finish-form button")

    expect(page.locator("#score")).to_have_text("4 of 5 correct (80.0 %)")
    expect(page.locator("#confusion-matrix")).to_contain_text("Lymphocyte")
    missed = page.locator(".missed-cell")
    expect(missed).to_have_count(1)
    expect(missed).to_contain_text("reference Lymphocyte")
    expect(missed).to_contain_text("your answer Monocyte (unsure)")
    expect(missed).to_contain_text("Model: Monocyte")
    expect(page.locator("#attempt-history tbody tr")).to_have_count(1)
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.screenshot(path=str(screenshots / "teaching-result.png"), full_page=True)
    attempt = ProficiencyAttempt.objects.get()
    assert attempt.finished_at is not None and attempt.answers.count() == 5
    assert attempt.answers.filter(unsure=True).count() == 1


def test_a_consult_is_requested_answered_closed_and_shows_in_the_signed_report(
    browser,  # noqa: F811
    live_server,
    slide,
    reviewed,
    pathologist,
    consultant,
    screenshots,
):
    patho = logged_in_page(browser, live_server, "patho")
    patho.goto(live_server.url + reverse("review:slide_review", args=[slide.pk]))
    patho.click("#consult-link")
    patho.select_option("#id_consultant", label="Cora Consultant (Consultant)")
    patho.fill("#id_question", "Is cell 4 a monocyte or a lymphocyte?")
    patho.fill("#id_access_days", "2")
    patho.check(f"input[name=cells][value='{reviewed[3].pk}']")
    patho.check(f"input[name=cells][value='{reviewed[0].pk}']")
    patho.click("button:has-text('Send the consult')")
    expect(patho.locator("#consult-status")).to_have_text("Open")
    consult = Consult.objects.get()
    assert consult.blind and mail.outbox[-1].to == ["cora@example.org"]

    helper = logged_in_page(browser, live_server, "consultant")
    helper.click("nav >> text=Consults")
    helper.click("#inbox a")
    assert "Primary review" not in helper.content()  # blind
    first, second = consult.cells.order_by("position")
    helper.select_option(f"#label-{first.pk}", CellClass.NEUTROPHIL.value)
    helper.select_option(f"#label-{second.pk}", CellClass.MONOCYTE.value)
    helper.fill(f"input[name=comment-{second.pk}]", "Folded nucleus, grey cytoplasm")
    helper.click("button:has-text('Save labels')")
    expect(helper.locator(".alert-success")).to_contain_text("2 labels saved")
    helper.fill("#id_opinion", "Cell 4 is a monocyte: folded nucleus, grey cytoplasm.")
    helper.click("button:has-text('Send the opinion')")
    expect(helper.locator("#consult-status")).to_have_text("Answered")
    assert ConsultLabel.objects.count() == 2

    patho.reload()
    expect(patho.locator("#consult-agreement")).to_contain_text("1 of 2 cells (50.0 %)")
    expect(patho.locator("#consult-opinion")).to_contain_text("Cell 4 is a monocyte")
    patho.set_viewport_size({"width": 1280, "height": 1000})
    patho.screenshot(path=str(screenshots / "consult-answered.png"), full_page=True)
    patho.click("#close-consult")
    expect(patho.locator("#slide-consults")).to_contain_text("Closed")
    assert Consult.objects.get().status == ConsultStatus.CLOSED

    helper.reload()
    expect(helper.locator("h1")).to_have_text("Not found (404)")

    patho.goto(live_server.url + reverse("review:slide_sign", args=[slide.pk]))
    expect(patho.locator("#sign-open-consults")).to_have_count(0)  # closed: nothing to confirm
    patho.check("#id_acknowledge_count")  # a few cells, below the lab's target of 100
    patho.fill("#id_password", PASSWORD)
    patho.click("button:has-text('Sign: reviewed and approved')")
    expect(patho.locator("#slide-signature")).to_be_visible()
    expect(patho.locator(".signed-consult")).to_contain_text("agreement 1 of 2 cells")
    expect(patho.locator(".signed-consult")).to_contain_text("Cell 4 is a monocyte")
    assert SlideSignature.objects.get().differential["consults"][0]["status"] == "closed"
