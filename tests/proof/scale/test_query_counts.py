"""Every page and API list that grows with the data costs the same number of queries with 10,000
cells as with 20 (no N+1), and still answers correctly at that size."""

import pytest

from audit.selectors import audit_chain_verify
from cases.models import CellImage, SlideStatus
from classifier.models import Prediction
from devtools.scale_pages import PAGES, PageCase
from review.models import Review
from review.selectors import QUEUE_SLIDE_STATUSES
from review.views import QUEUE_PAGE_SIZE
from tests.proof.scale.conftest import page_get


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_costs_the_same_queries_with_10000_cells_as_with_20(scale_world, db, page: PageCase):
    small_status, small_queries = scale_world.small_pages[page.name]

    status, queries, _ = page_get(page, scale_world.large, page.role)

    assert (small_status, status) == (200, 200)
    assert queries == small_queries


def test_the_large_dataset_holds_10000_cells_with_predictions_and_reviews(scale_world, db):
    large = scale_world.large

    assert CellImage.objects.filter(slide__in=large.slides).count() == 10_000 == large.cells
    assert Prediction.objects.filter(cell_image__slide__in=large.slides).count() == 9_000 == large.predictions
    assert Review.objects.filter(prediction__cell_image__slide__in=large.slides).count() == large.reviews
    assert large.reviews > 4_000
    assert {slide.status for slide in large.slides} == set(SlideStatus.values)


def test_seeded_audit_events_extend_the_hash_chain(scale_world, db):
    assert audit_chain_verify().intact


def test_review_screen_carries_all_100_cells_of_a_large_slide(scale_world, db):
    page = next(page for page in PAGES if page.name == "review screen")

    status, _, body = page_get(page, scale_world.large, page.role)

    assert status == 200
    slide = scale_world.large.slide_in(SlideStatus.IN_REVIEW)
    assert body.count(b'"review_url"') == Prediction.objects.filter(cell_image__slide=slide).count() == 100


def test_review_queue_pages_through_every_cell_of_slides_awaiting_review(scale_world, db):
    page = next(page for page in PAGES if page.name == "review queue")
    in_queue = Prediction.objects.filter(cell_image__slide__status__in=QUEUE_SLIDE_STATUSES).count()

    status, _, body = page_get(page, scale_world.large, page.role)

    assert status == 200
    assert f"Page 1 of {-(-in_queue // QUEUE_PAGE_SIZE)}".encode() in body
