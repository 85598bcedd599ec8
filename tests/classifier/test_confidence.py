"""Confidences are shown the way they are compared with the review threshold (classifier.confidence)."""

import pytest

from classifier.confidence import confidence_decimals, confidence_percent, threshold_percent


@pytest.mark.parametrize(
    ("confidence", "threshold", "shown"),
    [
        (0.9715, 0.972, "97.1 %"),  # flagged: never rounded up to the threshold's 97.2 %
        (0.972, 0.972, "97.2 %"),  # exactly at the threshold: accepted, shown equal
        (0.9725, 0.972, "97.2 %"),
        (0.97219, 0.9722, "97.21 %"),  # one decimal would show 97.2 % for both: a second is needed
        (0.9999, 0.9, "99.9 %"),
        (1.0, 0.9, "100.0 %"),
    ],
)
def test_a_confidence_is_floored_with_the_decimals_its_comparison_needs(confidence, threshold, shown):
    assert confidence_percent(confidence, threshold) == shown


def test_two_cells_either_side_of_the_threshold_never_show_the_same_number():
    threshold = 0.9725
    flagged, accepted = confidence_percent(0.9721, threshold), confidence_percent(0.9729, threshold)
    assert flagged != accepted
    assert threshold_percent(0.9721, threshold) == "97.25 %" and flagged == "97.21 %"
    assert confidence_decimals(0.9729, threshold) == 1


def test_without_a_threshold_one_floored_decimal():
    assert confidence_percent(0.96666) == "96.6 %"
