"""Classification metrics in numpy (no scikit-learn): per-class scores, ECE, coverage accuracy."""

from __future__ import annotations

import numpy as np


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support per class; 0 where a ratio is undefined."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted_count = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(
        true_positive, predicted_count, out=np.zeros_like(true_positive), where=predicted_count > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return [
        {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for p, r, f, s in zip(precision, recall, f1, support, strict=True)
    ]


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over classes that occur in the truth (absent classes would only add zeros)."""
    scores = [row["f1"] for row in per_class_scores(matrix) if row["support"] > 0]
    return float(np.mean(scores)) if scores else 0.0


def balanced_accuracy(matrix: np.ndarray) -> float:
    scores = [row["recall"] for row in per_class_scores(matrix) if row["support"] > 0]
    return float(np.mean(scores)) if scores else 0.0


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = 15) -> float:
    """Confidence-binned |accuracy - confidence|, weighted by bin size (equal-width bins)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = bin_of == index
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def coverage_accuracy(probabilities: np.ndarray, truth: np.ndarray, coverage: float = 0.8) -> float:
    """Accuracy on the `coverage` fraction of images the model is most confident about."""
    keep = max(1, round(len(truth) * coverage))
    order = np.argsort(-probabilities.max(axis=1), kind="stable")[:keep]
    return float((probabilities[order].argmax(axis=1) == truth[order]).mean())
