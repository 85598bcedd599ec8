import numpy as np
import pytest

from ml.metrics import (
    balanced_accuracy,
    confusion_matrix,
    coverage_accuracy,
    expected_calibration_error,
    macro_f1,
    per_class_scores,
)


def test_confusion_matrix_and_per_class_scores_match_hand_computation():
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(truth, predicted, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    scores = per_class_scores(matrix)
    # class 0: P=2/2, R=2/3, F1=0.8; class 1: P=1/2, R=1/2, F1=0.5; class 2: P=1/2, R=1, F1=2/3
    assert scores[0] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert scores[1]["f1"] == pytest.approx(0.5)
    assert scores[2]["f1"] == pytest.approx(2 / 3)
    assert macro_f1(matrix) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert balanced_accuracy(matrix) == pytest.approx((2 / 3 + 0.5 + 1) / 3)


def test_macro_f1_ignores_classes_absent_from_the_truth():
    matrix = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 4)
    assert macro_f1(matrix) == 1.0


def test_ece_of_hand_built_bins():
    # Two predictions at confidence 0.9 (one right) and two at 0.6 (both right):
    # |0.5-0.9|*0.5 + |1.0-0.6|*0.5 = 0.4
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    truth = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, truth) == pytest.approx(0.4)


def test_coverage_accuracy_keeps_the_most_confident_fraction():
    probabilities = np.array([[0.99, 0.01], [0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.55, 0.45]])
    truth = np.array([0, 0, 0, 0, 1])  # only the least confident one is wrong
    assert coverage_accuracy(probabilities, truth, 0.8) == 1.0
    assert coverage_accuracy(probabilities, truth, 1.0) == pytest.approx(0.8)
