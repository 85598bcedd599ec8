"""Temperature scaling and the review threshold, both fitted on validation data only."""

from __future__ import annotations

import math

import numpy as np

from ml.domain import REVIEW_EVERYTHING
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
    return accuracy_threshold(
        probabilities.max(axis=1), probabilities.argmax(axis=1) == truth, target_accuracy
    )


def accuracy_threshold(confidence: np.ndarray, correct: np.ndarray, target_accuracy: float) -> float:
    """`review_threshold` on each prediction's confidence and whether it is right."""
    order = np.argsort(-confidence, kind="stable")
    running_accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    reaching = np.nonzero(running_accuracy >= target_accuracy)[0]
    if len(reaching) == 0:
        return 1.0
    return float(confidence[order][reaching[-1]])


BOUND_LEVEL = 0.95  # one-sided confidence of the upper bound on the error among accepted cells


def binomial_cdf(successes: int, trials: int, probability: float) -> float:
    """P(X <= successes) for X ~ Binomial(trials, probability), 0 < probability < 1."""
    log_p, log_q = math.log(probability), math.log1p(-probability)
    log_norm = math.lgamma(trials + 1)
    return sum(
        math.exp(
            log_norm - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p + (trials - k) * log_q
        )
        for k in range(min(successes, trials) + 1)
    )


def error_bound_within(errors: float, cells: float, max_error: float, level: float = BOUND_LEVEL) -> bool:
    """Whether the one-sided Clopper-Pearson upper bound on the error rate is at most max_error.

    The bound is at most max_error exactly when seeing this few errors would be unlikely
    (probability <= 1 - level) if the true rate were max_error. Weighted counts are rounded the
    cautious way: errors up, cells down.
    """
    trials = math.floor(cells + 1e-9)
    if trials < 1:
        return False
    return binomial_cdf(math.ceil(errors - 1e-9), trials, max_error) <= 1 - level


def grouped_review_threshold(
    confidence: np.ndarray, correct: np.ndarray, groups: np.ndarray, max_error: float = 0.01
) -> float:
    """Lowest confidence threshold whose accepted cells' error rate is, with BOUND_LEVEL confidence,
    at most max_error, counting each distinct original cell once.

    Augmented copies of one original are one piece of evidence, right or wrong together, so each
    image weighs 1 / (copies of its original): the evidence is the number of distinct cells. With
    few distinct cells no threshold qualifies (zero errors in n cells bound the rate by about 3/n),
    and REVIEW_EVERYTHING is returned.
    """
    _, group_index = np.unique(groups, return_inverse=True)
    weights = 1.0 / np.bincount(group_index)[group_index]
    order = np.argsort(-confidence, kind="stable")
    cells = np.cumsum(weights[order])
    errors = np.cumsum(weights[order] * ~correct[order])
    sorted_confidence = confidence[order]
    # Only cut between distinct confidences: every cell at the threshold is accepted with the rest.
    cuts = np.nonzero(np.append(sorted_confidence[1:] < sorted_confidence[:-1], True))[0]
    # The lowest qualifying threshold is the largest qualifying cut: search from the largest down.
    for cut in cuts[::-1]:
        if error_bound_within(errors[cut], cells[cut], max_error):
            return float(sorted_confidence[cut])
    return REVIEW_EVERYTHING
