from django import template

from classifier.confidence import confidence_percent, threshold_percent
from classifier.domain import threshold_validated
from classifier.models import Prediction

register = template.Library()


@register.filter
def prediction_confidence(prediction: Prediction) -> str:
    """The prediction's confidence shown so that it never contradicts its threshold comparison."""
    return confidence_percent(prediction.confidence, prediction.cell_review_threshold)


@register.filter
def prediction_threshold(prediction: Prediction) -> str:
    """The cell's review threshold; "none validated" where every cell like it is reviewed."""
    if not threshold_validated(prediction.cell_review_threshold):
        return "none validated"
    return threshold_percent(prediction.confidence, prediction.cell_review_threshold)
