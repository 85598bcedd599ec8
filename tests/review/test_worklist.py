"""The pathologists' worklist: slides awaiting review with patient, sample age, priority and
turnaround time; urgent first, then the longest waiting; sortable by column, paginated; its first
slides on the pathologist's home page."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from cases.models import Priority, SlideStatus
from review.selectors import slide_worklist
from review.templatetags.durations import duration
from tests.factories import slide_make

pytestmark = pytest.mark.django_db
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def make_waiting(patient, lab_staff):
    def make(accession: str, *, received_hours_ago: float, priority: str = Priority.ROUTINE, **fields):
        received = timezone.now() - received_hours_ago * HOUR
        defaults = {"collected_at": received - HOUR, "status": SlideStatus.READY_FOR_REVIEW}
        return slide_make(
            patient, lab_staff, accession, received_at=received, priority=priority, **{**defaults, **fields}
        )

    return make


@pytest.fixture
def waiting(make_waiting, patient, lab_staff):
    """Routine slides received 30, 5 and 2 hours ago, urgent ones 1 and 3 hours ago; a draft and
    a signed slide that are not waiting."""
    make_waiting("R-30", received_hours_ago=30, status=SlideStatus.SUBMITTED)
    make_waiting("R-5", received_hours_ago=5, status=SlideStatus.IN_REVIEW)
    make_waiting("R-2", received_hours_ago=2)
    make_waiting("U-1", received_hours_ago=1, priority=Priority.URGENT)
    make_waiting("U-3", received_hours_ago=3, priority=Priority.URGENT)
    make_waiting("D-9", received_hours_ago=9, status=SlideStatus.DRAFT)
    make_waiting("S-9", received_hours_ago=9, status=SlideStatus.SIGNED)


def accessions(slides) -> list[str]:  # noqa: ANN001
    return [slide.accession_number for slide in slides]


def page_accessions(html: str) -> list[str]:
    table = html.split('id="worklist"', 1)[1].split("</table>", 1)[0]
    return [part.split('"', 1)[0] for part in table.split('data-accession="')[1:]]


def test_urgent_slides_come_first_then_the_longest_waiting(pathologist, waiting):
    assert accessions(slide_worklist(user=pathologist)) == ["U-3", "U-1", "R-30", "R-5", "R-2"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("age", ["R-30", "R-5", "U-3", "R-2", "U-1"]),
        ("-age", ["U-1", "R-2", "U-3", "R-5", "R-30"]),
        ("turnaround", ["R-30", "R-5", "U-3", "R-2", "U-1"]),
        ("received", ["R-30", "R-5", "U-3", "R-2", "U-1"]),
        ("-received", ["U-1", "R-2", "U-3", "R-5", "R-30"]),
        ("accession", ["R-2", "R-30", "R-5", "U-1", "U-3"]),
        ("-priority", ["R-2", "R-5", "R-30", "U-1", "U-3"]),
        ("nonsense", ["U-3", "U-1", "R-30", "R-5", "R-2"]),  # the default
    ],
)
def test_each_column_sorts_and_reverses(pathologist, waiting, sort, expected):
    assert accessions(slide_worklist(user=pathologist, sort=sort)) == expected


def test_sorting_by_patient_orders_by_name(pathologist, make_waiting, lab_staff):
    from tests.factories import patient_make

    other = patient_make(lab_staff, "MRN-A", family_name="Abel")
    make_waiting("P-DOE", received_hours_ago=1)
    slide_make(other, lab_staff, "P-ABEL", status=SlideStatus.READY_FOR_REVIEW)
    assert accessions(slide_worklist(user=pathologist, sort="patient")) == ["P-ABEL", "P-DOE"]
    assert accessions(slide_worklist(user=pathologist, sort="-patient")) == ["P-DOE", "P-ABEL"]


def test_the_status_filter_narrows_the_list(pathologist, waiting):
    assert accessions(slide_worklist(user=pathologist, status=SlideStatus.IN_REVIEW)) == ["R-5"]
    assert accessions(slide_worklist(user=pathologist, status=SlideStatus.DRAFT)) == accessions(
        slide_worklist(user=pathologist)
    )  # drafts are no pathologist's work: the filter falls back to the waiting slides


def test_turnaround_runs_to_now_and_for_signed_slides_to_the_first_sign_off(
    pathologist, make_signed_slide, make_waiting
):
    make_waiting("W-4", received_hours_ago=4)
    signed = make_signed_slide("SIGNED-1", ["NEUTROPHIL"], days_ago=1)
    signed_at = signed.signatures.get().signed_at
    received = signed_at - 6 * HOUR
    type(signed).objects.filter(pk=signed.pk).update(received_at=received)

    [waiting] = slide_worklist(user=pathologist)
    [done] = slide_worklist(user=pathologist, status=SlideStatus.SIGNED)

    assert 4 * HOUR <= waiting.turnaround < 4 * HOUR + datetime.timedelta(minutes=1)
    assert done.turnaround == 6 * HOUR and done.signed_at == signed_at


def test_the_page_shows_patient_priority_age_and_turnaround_in_order(pathologist_client, waiting):
    response = pathologist_client.get(reverse("review:worklist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert page_accessions(html) == ["U-3", "U-1", "R-30", "R-5", "R-2"]
    row = html.split('data-accession="R-30"', 1)[1].split("</tr>", 1)[0]
    assert "Doe, Jane" in row and "MRN-5001" in row and "Routine" in row
    assert "1 d 7 h" in row  # collected an hour before it was received, 30 hours ago
    assert "data-turnaround>1 d 6 h" in row
    assert 'aria-sort="ascending"' in html and 'href="?sort=-priority"' in html


def test_a_sorted_page_links_the_reverse_and_keeps_the_filter(pathologist_client, waiting):
    html = pathologist_client.get(
        reverse("review:worklist"), {"sort": "received", "status": "ready_for_review"}
    )
    text = html.content.decode()
    assert page_accessions(text) == ["U-3", "R-2", "U-1"]
    assert (
        'href="?sort=-received&amp;status=ready_for_review"' in text
        or 'href="?status=ready_for_review&amp;sort=-received"' in text
    )


def test_the_worklist_is_paginated(pathologist_client, make_waiting):
    for index in range(30):
        make_waiting(f"P-{index:02d}", received_hours_ago=100 - index)

    first = pathologist_client.get(reverse("review:worklist")).content.decode()
    second = pathologist_client.get(reverse("review:worklist"), {"page": 2}).content.decode()

    assert len(page_accessions(first)) == 25 and page_accessions(first)[0] == "P-00"
    assert page_accessions(second) == [f"P-{index}" for index in range(25, 30)]
    assert "Page 1 of 2" in first


def test_the_page_costs_a_fixed_number_of_queries(
    django_assert_max_num_queries, pathologist_client, make_waiting
):
    for index in range(20):
        make_waiting(f"Q-{index:02d}", received_hours_ago=index + 1)
    with django_assert_max_num_queries(12):
        response = pathologist_client.get(reverse("review:worklist"))
    assert len(page_accessions(response.content.decode())) == 20


def test_lab_staff_have_no_worklist(lab_client, lab_staff, waiting):
    assert lab_client.get(reverse("review:worklist")).status_code == 403
    assert list(slide_worklist(user=lab_staff)) == []
    assert 'id="home-worklist"' not in lab_client.get(reverse("home")).content.decode()


def test_the_pathologists_home_page_shows_the_first_slides_and_links_the_rest(
    settings, pathologist_client, waiting
):
    settings.HEMATOVISION_WORKLIST_HOME_SIZE = 2

    html = pathologist_client.get(reverse("home")).content.decode()

    section = html.split('id="home-worklist"', 1)[1].split("</section>", 1)[0]
    assert page_accessions(section) == ["U-3", "U-1"]
    assert f'href="{reverse("review:worklist")}"' in section and "All 5 slides awaiting review" in section


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (datetime.timedelta(minutes=12, seconds=50), "12 min"),
        (datetime.timedelta(hours=3, minutes=20), "3 h 20 min"),
        (datetime.timedelta(days=2, hours=4, minutes=59), "2 d 4 h"),
        (datetime.timedelta(seconds=-5), "0 min"),
        (None, ""),
    ],
)
def test_durations_read_as_a_lab_reads_them(span, text):
    assert duration(span) == text
