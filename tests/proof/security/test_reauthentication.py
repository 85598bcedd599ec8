"""Issue 11, finding 3, as the attacker did it: the sign page was a password oracle beside the
login lockout (30 wrong tries, no lock) and amending asked only a reason. Through the real forms,
CSRF on: the sign page and the amend page count towards the login's lockout, and once locked the
login form refuses the right password too."""

import pytest
from django.urls import reverse

from cases.models import Slide, SlideStatus
from classifier.models import CellClass
from review.services import prediction_review, slide_sign
from tests.conftest import PASSWORD
from tests.factories import patient_make, reauth_request, slide_make
from tests.proof.security.conftest import browser_login, csrf_token_in
from tests.review.conftest import add_prediction, model_version  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signable_slide(pathologist, lab_staff, add_prediction) -> Slide:  # noqa: F811
    slide = slide_make(
        patient_make(lab_staff, "SEC-RA-1"), lab_staff, "SEC-RA-S1", status=SlideStatus.SUBMITTED
    )
    for label in (CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE):
        prediction = add_prediction(slide, label, 0.95)
        prediction_review(actor=pathologist, prediction=prediction, label=label)
    slide.refresh_from_db()
    return slide


def _post(client, url: str, data: dict):  # noqa: ANN001, ANN202
    token = csrf_token_in(client.get(url).content)
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def test_thirty_wrong_sign_passwords_lock_the_account_like_the_login_does(
    pathologist, signable_slide, settings
):
    client = browser_login("patho")
    url = reverse("review:slide_sign", args=[signable_slide.pk])
    answers = [
        _post(client, url, {"password": f"guess-{n}", "acknowledge_count": "on"}).status_code
        for n in range(30)
    ]
    assert answers.count(400) == settings.AXES_FAILURE_LIMIT - 1
    assert set(answers[settings.AXES_FAILURE_LIMIT - 1 :]) == {429}
    assert _post(client, url, {"password": PASSWORD, "acknowledge_count": "on"}).status_code == 429
    signable_slide.refresh_from_db()
    assert signable_slide.status == SlideStatus.IN_REVIEW
    login = browser_login_attempt("patho")
    assert login == 429


def test_amending_a_signed_slide_needs_the_password(pathologist, signable_slide):
    slide_sign(
        actor=pathologist,
        slide=signable_slide,
        password=PASSWORD,
        request=reauth_request(),
        count_acknowledged=True,
    )
    client = browser_login("patho")
    url = reverse("review:slide_amend", args=[signable_slide.pk])
    assert _post(client, url, {"reason": "Recount"}).status_code == 200  # the form asks for it
    assert _post(client, url, {"reason": "Recount", "password": "guess"}).status_code == 400
    signable_slide.refresh_from_db()
    assert signable_slide.status == SlideStatus.SIGNED
    assert _post(client, url, {"reason": "Recount", "password": PASSWORD}).status_code == 302
    signable_slide.refresh_from_db()
    assert signable_slide.status == SlideStatus.IN_REVIEW


def browser_login_attempt(username: str) -> int:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("accounts:login"))
    response = client.post(
        reverse("accounts:login"),
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf_token_in(page.content)},
    )
    return response.status_code
