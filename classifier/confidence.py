"""How a confidence is shown beside the review threshold it is compared with.

A cell is flagged when its confidence is below the threshold (0.9715 < 0.972), so rounding both to
"97 %" would show two equal numbers, one flagged and one not. Both are floored instead, with as
many decimals as it takes for the shown numbers to compare the way the stored ones do.
"""

from decimal import ROUND_FLOOR, Decimal

MOST_DECIMALS = 4


def _floored_percent(value: float, decimals: int) -> Decimal:
    # repr() gives the shortest text of the float: 0.972 stays 0.972, not 0.97199999...
    return (Decimal(repr(value)) * 100).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_FLOOR)


def confidence_decimals(confidence: float, threshold: float) -> int:
    """The fewest decimals (at least one) at which confidence and threshold, both floored, compare
    as the stored numbers do. A confidence at or above the threshold always does at one decimal."""
    below = confidence < threshold
    for decimals in range(1, MOST_DECIMALS + 1):
        if (_floored_percent(confidence, decimals) < _floored_percent(threshold, decimals)) == below:
            return decimals
    return MOST_DECIMALS


def confidence_percent(confidence: float, threshold: float | None = None) -> str:
    """E.g. "97.1 %"; never shown above the value it stands for."""
    decimals = 1 if threshold is None else confidence_decimals(confidence, threshold)
    return f"{_floored_percent(confidence, decimals)} %"


def threshold_percent(confidence: float, threshold: float) -> str:
    """The threshold with the decimals its comparison with ``confidence`` needs, e.g. "97.2 %"."""
    return f"{_floored_percent(threshold, confidence_decimals(confidence, threshold))} %"
