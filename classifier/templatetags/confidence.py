from django import template

from classifier.confidence import confidence_percent, threshold_percent
from classifier.models import Prediction

register = template.Library()


@register.filter
def prediction_confidence(prediction: Prediction) -> str:
    """The prediction's confidence shown so that it never contradicts its threshold comparison."""
    return confidence_percent(prediction.confidence, prediction.model_version.review_threshold)


@register.filter
def prediction_threshold(prediction: Prediction) -> str:
    return threshold_percent(prediction.confidence, prediction.model_version.review_threshold)
