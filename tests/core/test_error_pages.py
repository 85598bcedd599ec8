"""Error pages speak to the user (production runs with DEBUG off): what happened, that nothing was
changed where that is true, and the way back."""

import pytest
from django.template.loader import render_to_string
from django.urls import reverse


@pytest.mark.django_db
def test_an_unknown_page_is_a_404_page_with_the_way_back(lab_client):
    response = lab_client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Not found (404)" in response.content
    assert reverse("home").encode() in response.content


@pytest.mark.django_db
def test_a_page_the_role_may_not_open_is_a_403_page(lab_client):
    response = lab_client.get(reverse("accounts:user_list"))
    assert response.status_code == 403
    assert b"Your role does not permit this" in response.content


@pytest.mark.django_db
def test_a_request_django_cannot_parse_is_a_400_page(lab_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    response = lab_client.post(reverse("cases:patient_create"), {f"f{i}": "x" for i in range(5)})
    assert response.status_code == 400
    assert b"The request could not be read (400)" in response.content


def test_the_500_page_renders_without_a_request_or_database():
    # Django renders 500.html with no request and no context processors.
    page = render_to_string("500.html")
    assert "Something went wrong on our side (500)" in page
