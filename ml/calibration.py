"""Temperature scaling and the review threshold, both fitted on validation data only."""

from __future__ import annotations

import numpy as np

from ml.predict import softmax


def negative_log_likelihood(logits: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)
    return float(-np.log(np.clip(probabilities[np.arange(len(truth)), truth], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """Temperature minimising validation NLL; a 1-D log-spaced search is exact enough and robust."""
    candidates = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400))
    losses = [negative_log_likelihood(logits, truth, t) for t in candidates]
    return float(candidates[int(np.argmin(losses))])


def review_threshold(probabilities: np.ndarray, truth: np.ndarray, target_accuracy: float = 0.99) -> float:
    """Lowest confidence threshold at which predictions at or above it are >= target accurate.

    Predictions below the threshold go to a pathologist. If no threshold reaches the target,
    1.0 is returned so that everything is reviewed.
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    order = np.argsort(-confidence, kind="stable")
    running_accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    reaching = np.nonzero(running_accuracy >= target_accuracy)[0]
    if len(reaching) == 0:
        return 1.0
    return float(confidence[order][reaching[-1]])
