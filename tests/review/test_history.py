"""The patient's earlier results: the signed differentials in a table, oldest first, with a delta
flag past ``HEMATOVISION_DELTA_POINTS``, a server-drawn SVG trend chart, on the patient page, the
sign page (this slide against the previous signed result) and the report."""

import re

import pytest
from django.urls import reverse

from classifier.models import CellClass
from review.history import patient_signed_points, result_history
from review.services import slide_amend
from tests.conftest import PASSWORD
from tests.factories import reauth_request, reviews_make

pytestmark = pytest.mark.django_db
N, L, M, E = CellClass.NEUTROPHIL, CellClass.LYMPHOCYTE, CellClass.MONOCYTE, CellClass.EOSINOPHIL


@pytest.fixture
def two_results(make_signed_slide):
    """Neutrophils 60 % then 40 % (−20 points), lymphocytes 20 % then 25 % (+5), monocytes 20 % then
    25 % (+5), eosinophils 0 % then 10 % (+10: not more than 10)."""
    first = make_signed_slide("H-1", [N, N, N, L, M], days_ago=30)
    second = make_signed_slide("H-2", [N] * 8 + [L] * 5 + [M] * 5 + [E] * 2, days_ago=10)
    return first, second


def cells_by_class(history, row) -> dict:  # noqa: ANN001
    return {column.label: cell for column, cell in zip(history.columns, row.cells, strict=True)}


def history_table(html: str) -> str:
    return html.split('id="result-history"', 1)[1].split("</table>", 1)[0]


def row_of(table: str, accession: str) -> str:
    return table.split(f'data-accession="{accession}"', 1)[1].split("</tr>", 1)[0]


def test_each_class_is_compared_with_the_result_before_it(pathologist, patient, two_results):
    history = result_history(points=patient_signed_points(user=pathologist, patient=patient))

    assert [column.label for column in history.columns] == [E, L, M, N]
    first, second = history.rows
    assert [cell.delta for cell in first.cells] == [None] * 4
    assert {label: cell.delta for label, cell in cells_by_class(history, second).items()} == {
        E: 10.0,
        L: 5.0,
        M: 5.0,
        N: -20.0,
    }
    flagged = {label for label, cell in cells_by_class(history, second).items() if cell.delta_flagged}
    assert flagged == {N}  # 10 points exactly is not "more than" 10


def test_the_delta_limit_is_a_setting(settings, pathologist, patient, two_results):
    settings.HEMATOVISION_DELTA_POINTS = 4
    history = result_history(points=patient_signed_points(user=pathologist, patient=patient))
    flagged = {
        label for label, cell in cells_by_class(history, history.rows[1]).items() if cell.delta_flagged
    }
    assert flagged == {E, L, M, N}


def test_the_patient_page_shows_the_earlier_results_and_the_trend(lab_client, patient, two_results):
    html = lab_client.get(reverse("cases:patient_detail", args=[patient.pk])).content.decode()

    table = history_table(html)
    assert table.index('data-accession="H-1"') < table.index('data-accession="H-2"')  # oldest first
    later = row_of(table, "H-2")
    assert later.count("data-delta-flag") == 1 and "-20.0" in later and "+10.0" in later
    assert "data-delta-flag" not in row_of(table, "H-1")
    chart = html.split('id="trend-chart"', 1)[1].split("</svg>", 1)[0]
    assert chart.count("<polyline") == 4  # every class was above 0 % once
    assert "Results CSV" in html  # the exports stay on the page


def test_the_trend_chart_puts_each_result_at_its_percentage(pathologist, patient, two_results):
    history = result_history(points=patient_signed_points(user=pathologist, patient=patient))
    neutrophils = next(series for series in history.chart.series if series.label == N)
    # 60 % and 40 % on a 162-unit-high plot starting at y = 10: 10 + 162 × 0.4 and 10 + 162 × 0.6.
    assert neutrophils.points == "36,74.8 628,107.2"
    assert [title for _, _, title in neutrophils.dots][0].startswith("Neutrophil 60.0 %")


def test_a_patient_without_signed_results_says_so(lab_client, patient, slide):
    html = lab_client.get(reverse("cases:patient_detail", args=[patient.pk])).content.decode()
    assert 'id="result-history-empty"' in html and "<svg" not in html.split('id="patient-results"', 1)[1]


def test_the_sign_page_compares_this_slide_with_the_previous_signed_result(
    pathologist, pathologist_client, make_slide, add_prediction, two_results
):
    slide = make_slide("H-3")
    reviews_make([add_prediction(slide, label) for label in [N, L, L, L, M]], pathologist)  # N 20 %, L 60 %

    html = pathologist_client.get(reverse("review:slide_sign", args=[slide.pk])).content.decode()

    assert "Compared with slide H-2" in html and "a class moved more than 10 percentage points" in html
    current = row_of(history_table(html), "H-3")
    assert "this slide, not signed" in current and current.count("data-delta-flag") == 2  # N −20, L +35


def test_the_sign_page_of_a_first_result_has_nothing_to_compare(
    pathologist, pathologist_client, slide, predictions
):
    reviews_make(predictions, pathologist)
    html = pathologist_client.get(reverse("review:slide_sign", args=[slide.pk])).content.decode()
    assert "No earlier signed result of this patient to compare with." in html
    assert 'id="result-history"' not in html


def test_the_report_shows_the_previous_result_and_the_delta_flags(lab_client, two_results):
    _, second = two_results
    html = lab_client.get(reverse("review:slide_report", args=[second.pk])).content.decode()

    rows = html.split('id="report-differential"', 1)[1].split("</table>", 1)[0]
    neutrophil = rows.split('data-class="NEUTROPHIL"', 1)[1].split("</tr>", 1)[0]
    assert "60.0" in neutrophil and "-20.0" in neutrophil and "∆" in neutrophil
    eosinophil = rows.split('data-class="EOSINOPHIL"', 1)[1].split("</tr>", 1)[0]
    assert "+10.0" in eosinophil and "∆" not in eosinophil
    assert "Previous: slide" in html and "H-1" in html


def test_a_reopened_slide_keeps_its_signed_result_marked_reopened(
    pathologist, lab_client, patient, two_results
):
    _, second = two_results
    slide_amend(
        actor=pathologist, slide=second, reason="Recount", password=PASSWORD, request=reauth_request()
    )

    html = lab_client.get(reverse("cases:patient_detail", args=[patient.pk])).content.decode()
    assert "reopened" in row_of(history_table(html), "H-2")


def test_the_earlier_results_cost_a_fixed_number_of_queries(
    django_assert_max_num_queries, lab_client, patient, make_signed_slide
):
    for index in range(6):
        make_signed_slide(f"Q-{index}", [N, L], days_ago=60 - index)
    with django_assert_max_num_queries(30):
        html = lab_client.get(reverse("cases:patient_detail", args=[patient.pk])).content.decode()
    assert len(re.findall(r'data-accession="Q-\d"', history_table(html))) == 6
