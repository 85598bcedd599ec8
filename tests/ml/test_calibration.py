import numpy as np
import pytest

from ml.calibration import error_bound_within, fit_temperature, grouped_review_threshold, review_threshold
from ml.domain import REVIEW_EVERYTHING
from ml.predict import softmax


def test_fit_temperature_recovers_the_generating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 4))
    truth = np.array([rng.choice(4, p=p) for p in softmax(logits, 2.0)])
    assert fit_temperature(logits, truth) == pytest.approx(2.0, rel=0.15)


def test_review_threshold_is_lowest_confidence_reaching_target_accuracy():
    probabilities = np.array([[0.99, 0.01], [0.97, 0.03], [0.9, 0.1], [0.7, 0.3]])
    truth = np.array([0, 0, 0, 1])
    assert review_threshold(probabilities, truth, 0.99) == pytest.approx(0.9)


def test_review_threshold_is_one_when_target_is_never_reached():
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2]])
    assert review_threshold(probabilities, np.array([1, 1]), 0.99) == 1.0


def test_the_error_bound_needs_299_clean_cells_to_promise_one_percent():
    # Zero errors in n cells bound the rate by about 3/n at 95%: 299 cells is the first n <= 1%.
    assert error_bound_within(0, 299, 0.01)
    assert not error_bound_within(0, 298, 0.01)
    assert not error_bound_within(0, 0, 0.01)
    assert error_bound_within(3, 800, 0.01) and not error_bound_within(5, 800, 0.01)


def test_the_grouped_threshold_accepts_only_as_much_as_the_distinct_cells_can_bound():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 1000)
    correct = np.ones(1000, dtype=bool)
    # 1,000 distinct, all right: everything can be accepted.
    assert grouped_review_threshold(confidence, correct, np.arange(1000)) == confidence.min()
    # The same images as 100 copies of 10 originals: 10 cells bound nothing, so review everything.
    assert grouped_review_threshold(confidence, correct, np.arange(1000) % 10) == REVIEW_EVERYTHING


def test_the_grouped_threshold_stops_above_a_band_of_confident_errors():
    confidence = np.linspace(0.999, 0.5, 1000)
    correct = np.ones(1000, dtype=bool)
    correct[600:620] = False  # 20 wrong cells just below the 600 most confident
    threshold = grouped_review_threshold(confidence, correct, np.arange(1000))
    # 1 error in 601 cells still bounds the rate by 1%; 2 in 602 does not, nor does any later cut.
    assert threshold == confidence[600]
    assert error_bound_within(1, 601, 0.01) and not error_bound_within(2, 602, 0.01)


def test_ties_at_the_threshold_are_accepted_or_refused_together():
    confidence = np.array([0.99] * 300 + [0.98] * 300)
    correct = np.array([True] * 300 + [True] * 290 + [False] * 10)
    # Cutting inside the tied 0.98 block would accept its right cells only; it is all or nothing.
    assert grouped_review_threshold(confidence, correct, np.arange(600)) == 0.99
