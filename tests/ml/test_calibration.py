import numpy as np
import pytest

from ml.calibration import fit_temperature, review_threshold
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
