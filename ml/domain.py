"""Know when the model is out of its validated domain, and never auto-accept there.

A lab the model has never seen (another stain, camera or analyser) gives confident, wrong
answers: calibration does not transfer between labs. So the model directory describes its
validated domain in the model's own features (`ml.model.with_features`: channel statistics of
an early and a mid layer, where one lab's images differ from another's). The domain is the
union of the training sources (labs): per source, one Gaussian per class with a single shared
covariance, shrunk towards a scaled identity (Ledoit-Wolf) so it is estimable from a few
hundred cells. A cell's distance to a source is its squared Mahalanobis distance to that
source's nearest class mean, per feature dimension, divided by the median distance of that
source's own validation cells; its domain score is the distance to the nearest source. So about
1 is a typical in-domain cell, and a cell must resemble one validated lab, not a blend of them.

Two thresholds, both fitted on in-domain validation cells (`ml.domain_fit`):
- cell: a cell scoring above it is out of domain;
- slide: a slide whose median cell score is above it is out of domain. One odd cell does not move
  a median, a slide of another lab's cells does, and the median of many cells varies far less
  than one cell's score, so the slide threshold can sit much closer to the domain.

Optionally, one review threshold per source (`ml.domain_fit.fit_review_thresholds`): a lab's
confident errors are its own (Kaggle's come from a few originals misread in every copy, PBC's
are rare), so one pooled threshold promises too much on one lab and too little on the other. A
cell is held to the threshold of its nearest source; a source whose validation could not support
the promise has REVIEW_EVERYTHING, so none of its cells is accepted without review.

`decide_auto_accept` is the one rule that says which cells may be accepted without review; the
app and `ml.evaluate` both call it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from ml.card import ModelDirectoryError, verify_file

DOMAIN_FILE = "domain_statistics.npz"
# A review threshold of 1.0 means no confidence was validated: every cell is reviewed.
REVIEW_EVERYTHING = 1.0
# Fewer cells than this give a noisy slide median: the verdict is still given, flagged as such.
MIN_SLIDE_CELLS = 10


class Verdict(StrEnum):
    IN_DOMAIN = "in_domain"
    OUT_OF_DOMAIN = "out_of_domain"
    UNKNOWN = "unknown"  # the model has no domain statistics, or the slide has no scored cell


@dataclass(frozen=True)
class DomainThresholds:
    cell: float
    slide: float


@dataclass(frozen=True)
class DomainStatistics:
    """Per training source: class means, the whitening of the shared shrunk covariance, a scale."""

    sources: list[str]
    means: np.ndarray  # (sources, classes, features)
    whitening: np.ndarray  # (sources, features, features): (x - mean) @ whitening is white
    scales: np.ndarray  # (sources,): median distance of the source's own validation cells
    thresholds: DomainThresholds
    # (sources,): the review threshold of cells nearest each source; None: the card's one for all
    review_thresholds: np.ndarray | None = None

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(sources, cells): distance to each training source, in units of its typical validation cell."""
        return np.stack(
            [
                source_distance(features, self.means[index], self.whitening[index]) / self.scales[index]
                for index in range(len(self.sources))
            ]
        )

    def score(self, features: np.ndarray) -> np.ndarray:
        """Distance to the nearest training source."""
        return self.distances(features).min(axis=0)

    def nearest_source(self, features: np.ndarray) -> np.ndarray:
        """Index into `sources` of each cell's nearest training source."""
        return self.distances(features).argmin(axis=0)

    def cell_review_thresholds(self, features: np.ndarray, default: float) -> np.ndarray:
        """Each cell's review threshold: its nearest source's, or `default` without per-source ones."""
        if self.review_thresholds is None:
            return np.full(len(features), default)
        return self.review_thresholds[self.nearest_source(features)].astype(np.float64)

    def cell_in_domain(self, score: float) -> bool:
        return bool(score <= self.thresholds.cell)


def source_distance(features: np.ndarray, means: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance to the nearest class mean, divided by the dimension."""
    whitened = features.astype(np.float32) @ whitening
    whitened_means = means.astype(np.float32) @ whitening
    squared = (
        (whitened**2).sum(axis=1, keepdims=True)
        - 2 * whitened @ whitened_means.T
        + (whitened_means**2).sum(axis=1)
    )
    return np.maximum(squared.min(axis=1), 0.0) / features.shape[1]


def slide_statistic(scores: Sequence[float]) -> float:
    """The slide's robust summary of its cells' domain scores."""
    return float(np.median(np.asarray(scores, dtype=np.float64)))


def fit_gaussians(features: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(class means, whitening matrix) with the shared covariance shrunk by Ledoit-Wolf."""
    features = features.astype(np.float64)
    means = np.stack([features[labels == label].mean(axis=0) for label in range(classes)])
    centred = features - means[labels]
    covariance = ledoit_wolf(centred)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    whitening = eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-12))
    return means.astype(np.float32), whitening.astype(np.float32)


def ledoit_wolf(centred: np.ndarray) -> np.ndarray:
    """Covariance shrunk towards a scaled identity with the Ledoit-Wolf (2004) optimal weight."""
    count, dimension = centred.shape
    sample = centred.T @ centred / count
    target = np.trace(sample) / dimension
    distance = ((sample - target * np.eye(dimension)) ** 2).sum()
    # sum_i ||x_i x_i^T - S||^2 = sum_i ||x_i||^4 - n ||S||^2, without forming n outer products.
    spread = (((centred**2).sum(axis=1) ** 2).sum() - count * (sample**2).sum()) / count**2
    weight = float(np.clip(spread / distance, 0.0, 1.0)) if distance > 0 else 1.0
    return (1 - weight) * sample + weight * target * np.eye(dimension)


def save_domain_statistics(model_dir: Path, statistics: DomainStatistics) -> Path:
    """Write DOMAIN_FILE (plain arrays, no pickle); its sha256 goes into the card with write_card."""
    buffer = io.BytesIO()
    optional = {}
    if statistics.review_thresholds is not None:
        optional["review_thresholds"] = statistics.review_thresholds
    np.savez(
        buffer,
        sources=np.array(statistics.sources),
        means=statistics.means,
        whitening=statistics.whitening,
        scales=statistics.scales,
        thresholds=np.array([statistics.thresholds.cell, statistics.thresholds.slide]),
        **optional,
    )
    path = model_dir / DOMAIN_FILE
    path.write_bytes(buffer.getvalue())
    return path


def load_domain_statistics(model_dir: Path, card: dict) -> DomainStatistics | None:
    """The model's domain statistics, None when its card declares none (domain unknown).

    A declared file that is missing, unhashed or does not match its sha256 is refused, never
    ignored: ignoring it would serve the model as if it had no domain to check.
    """
    declared = card.get("domain")
    if not declared:
        return None
    path = verify_file(model_dir, card, declared["file"])
    if declared["file"] not in card.get("files", {}):
        raise ModelDirectoryError(f"{path} has no sha256 in the model card")
    with np.load(path, allow_pickle=False) as arrays:
        cell, slide = (float(value) for value in arrays["thresholds"])
        return DomainStatistics(
            sources=[str(name) for name in arrays["sources"]],
            means=arrays["means"],
            whitening=arrays["whitening"],
            scales=arrays["scales"],
            thresholds=DomainThresholds(cell, slide),
            review_thresholds=arrays.get("review_thresholds"),
        )


def thresholds_from_card(card: dict) -> DomainThresholds | None:
    """The thresholds the card declares (None: domain unknown), without loading the statistics.

    For callers that store them with a registered model and decide later (`decide_auto_accept`);
    the card's values are those in DOMAIN_FILE, written together by `ml.domain_fit`.
    """
    declared = card.get("domain")
    if not declared:
        return None
    return DomainThresholds(float(declared["cell_threshold"]), float(declared["slide_threshold"]))


@dataclass(frozen=True)
class CellEvidence:
    """What the decision needs of one cell: calibrated confidence and domain score (None: unknown).

    `review_threshold` is the cell's own (its nearest source's); None: the slide's common one.
    """

    confidence: float
    domain_score: float | None
    review_threshold: float | None = None


def is_confident(confidence: float, review_threshold: float) -> bool:
    """At or above the review threshold; REVIEW_EVERYTHING (nothing validated) is never reached."""
    return review_threshold < REVIEW_EVERYTHING and confidence >= review_threshold


@dataclass(frozen=True)
class CellDecision:
    auto_acceptable: bool
    confident: bool  # calibrated confidence >= the review threshold
    in_domain: bool | None  # None when the domain is unknown
    domain_score: float | None


@dataclass(frozen=True)
class SlideDecision:
    verdict: Verdict
    statistic: float | None  # median cell domain score; None when the domain is unknown
    cell_count: int
    few_cells: bool  # fewer than MIN_SLIDE_CELLS cells: the verdict rests on what there is
    cells: list[CellDecision]

    @property
    def in_domain(self) -> bool:
        return self.verdict == Verdict.IN_DOMAIN


def slide_verdict(
    scores: Sequence[float | None], thresholds: DomainThresholds | None
) -> tuple[Verdict, float | None]:
    """(verdict, slide statistic); unknown without thresholds or without any scored cell."""
    known = [score for score in scores if score is not None]
    if thresholds is None or not known:
        return Verdict.UNKNOWN, None
    statistic = slide_statistic(known)
    verdict = Verdict.IN_DOMAIN if statistic <= thresholds.slide else Verdict.OUT_OF_DOMAIN
    return verdict, statistic


def decide_auto_accept(
    cells: Sequence[CellEvidence], *, review_threshold: float, thresholds: DomainThresholds | None
) -> SlideDecision:
    """Which of one slide's cells may be accepted without review.

    A cell is auto-acceptable only if its confidence reaches its review threshold (its own when
    it carries one, else `review_threshold`), its own domain score is within the cell threshold
    and its slide is in domain. `thresholds` None (a model without domain statistics) makes the
    slide's domain unknown, so nothing is accepted.
    """
    verdict, statistic = slide_verdict([cell.domain_score for cell in cells], thresholds)
    decisions = []
    for cell in cells:
        own = review_threshold if cell.review_threshold is None else cell.review_threshold
        confident = is_confident(cell.confidence, own)
        in_domain = None
        if thresholds is not None and cell.domain_score is not None:
            in_domain = cell.domain_score <= thresholds.cell
        accepted = confident and in_domain is True and verdict == Verdict.IN_DOMAIN
        decisions.append(CellDecision(accepted, confident, in_domain, cell.domain_score))
    return SlideDecision(verdict, statistic, len(cells), len(cells) < MIN_SLIDE_CELLS, decisions)


def main(argv: list[str] | None = None) -> int:
    from ml.domain_fit import main as fit_main

    return fit_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
