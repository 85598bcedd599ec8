import dataclasses
import json

import numpy as np
import pytest

from ml.card import ModelDirectoryError, read_card, write_card
from ml.domain import (
    DOMAIN_FILE,
    REVIEW_EVERYTHING,
    CellEvidence,
    DomainThresholds,
    Verdict,
    decide_auto_accept,
    load_domain_statistics,
    save_domain_statistics,
    thresholds_from_card,
)
from ml.domain_fit import fit_domain, fit_thresholds
from ml.evaluate import pseudo_slides
from ml.testing import make_tiny_model_dir

THRESHOLDS = DomainThresholds(cell=2.0, slide=1.0)
REVIEW = 0.9


def decide(cells, thresholds=THRESHOLDS):
    return decide_auto_accept(
        [CellEvidence(c, s) for c, s in cells], review_threshold=REVIEW, thresholds=thresholds
    )


def test_a_confident_in_domain_cell_on_an_in_domain_slide_is_auto_acceptable():
    decision = decide([(0.95, 0.5)] * 12)
    assert decision.verdict == Verdict.IN_DOMAIN
    assert decision.statistic == 0.5
    assert decision.cell_count == 12 and not decision.few_cells
    assert all(cell.auto_acceptable for cell in decision.cells)


def test_a_low_confidence_cell_is_not_auto_acceptable():
    decision = decide([(0.5, 0.5)] + [(0.95, 0.5)] * 11)
    first = decision.cells[0]
    assert not first.auto_acceptable and not first.confident and first.in_domain
    assert all(cell.auto_acceptable for cell in decision.cells[1:])


def test_an_out_of_domain_cell_is_not_auto_acceptable_on_an_in_domain_slide():
    decision = decide([(0.99, 5.0)] + [(0.95, 0.5)] * 11)
    assert decision.verdict == Verdict.IN_DOMAIN
    first = decision.cells[0]
    assert first.confident and first.in_domain is False and not first.auto_acceptable
    assert first.domain_score == 5.0


def test_no_cell_of_an_out_of_domain_slide_is_auto_acceptable():
    # Every cell is within the cell threshold, but the slide's median is beyond the slide one.
    decision = decide([(0.99, 1.5)] * 12)
    assert decision.verdict == Verdict.OUT_OF_DOMAIN
    assert decision.statistic == 1.5
    assert all(cell.in_domain and cell.confident for cell in decision.cells)
    assert not any(cell.auto_acceptable for cell in decision.cells)


def test_the_slide_statistic_is_the_median_so_a_few_odd_cells_do_not_flag_a_slide():
    decision = decide([(0.99, 50.0)] * 3 + [(0.99, 0.2)] * 9)
    assert decision.verdict == Verdict.IN_DOMAIN
    assert [cell.auto_acceptable for cell in decision.cells] == [False] * 3 + [True] * 9


def test_a_slide_with_few_cells_gets_a_verdict_and_says_so():
    inside = decide([(0.99, 0.3)] * 4)
    outside = decide([(0.99, 1.8)] * 4)
    assert inside.few_cells and inside.cell_count == 4 and inside.verdict == Verdict.IN_DOMAIN
    assert outside.few_cells and outside.verdict == Verdict.OUT_OF_DOMAIN


def test_a_model_without_domain_statistics_makes_every_slide_unknown_and_accepts_nothing():
    decision = decide([(0.999, None)] * 30, thresholds=None)
    assert decision.verdict == Verdict.UNKNOWN and not decision.in_domain
    assert decision.statistic is None
    assert all(cell.confident and cell.in_domain is None for cell in decision.cells)
    assert not any(cell.auto_acceptable for cell in decision.cells)


def test_an_empty_slide_is_unknown():
    decision = decide([])
    assert decision.verdict == Verdict.UNKNOWN
    assert decision.cell_count == 0 and decision.few_cells


def test_verdicts_are_the_strings_the_app_stores():
    assert [v.value for v in Verdict] == ["in_domain", "out_of_domain", "unknown"]


def gaussian_cells(rng, count=400, dimension=6, shift=0.0):
    labels = rng.integers(0, 3, count)
    centres = np.eye(3, dimension) * 4
    return centres[labels] + rng.normal(size=(count, dimension)) + shift, labels


def two_sources(rng):
    """Two labs: the second's cells sit 6 units away, with twice the spread."""
    first, first_labels = gaussian_cells(rng)
    second, second_labels = gaussian_cells(rng)
    return {"first": (first, first_labels), "second": (2 * second + 6, second_labels)}


def test_cells_far_from_every_training_source_score_higher():
    rng = np.random.default_rng(0)
    train, validation = two_sources(rng), two_sources(rng)
    statistics, report = fit_domain(train, {s: f for s, (f, _) in validation.items()}, 3)
    assert statistics.sources == ["first", "second"] and report["fit_cells"] == {"first": 400, "second": 400}
    fresh = two_sources(rng)
    for features, _ in fresh.values():
        assert np.median(statistics.score(features)) == pytest.approx(1.0, abs=0.2)
    between = (fresh["first"][0] + fresh["second"][0]) / 2  # a blend of both labs is neither
    assert np.median(statistics.score(between)) > 2 * statistics.thresholds.slide
    assert (statistics.score(between) > statistics.thresholds.cell).mean() > 0.5


def test_thresholds_flag_at_most_one_percent_of_each_validation_source():
    rng = np.random.default_rng(1)
    # 1% of 572 cells is not a whole cell: the threshold must still leave at most 5 above it.
    scores = {"tight": rng.gamma(2.0, 0.1, 3000), "broad": rng.gamma(2.0, 1.0, 572)}
    thresholds, per_source = fit_thresholds(scores)
    for values in scores.values():
        assert (values > thresholds.cell).mean() <= 0.01
        medians = [np.median(values[i]) for i in pseudo_slides(len(values), 25)]
        assert np.mean(np.array(medians) > thresholds.slide) <= 0.01
    assert thresholds.cell == per_source["broad"]["cell_quantile"]
    assert thresholds.slide < thresholds.cell


def save_fitted(model_dir):
    rng = np.random.default_rng(2)
    train = two_sources(rng)
    statistics, _ = fit_domain(train, {s: f for s, (f, _) in two_sources(rng).items()}, 3)
    model_dir.mkdir(exist_ok=True)
    save_domain_statistics(model_dir, statistics)
    write_card(model_dir, {"version": "t", "domain": {"file": DOMAIN_FILE}})
    return statistics, np.concatenate([f for f, _ in train.values()])


def test_domain_statistics_survive_a_save_and_load(tmp_path):
    statistics, features = save_fitted(tmp_path)
    card = read_card(tmp_path)
    loaded = load_domain_statistics(tmp_path, card)
    assert card["files"][DOMAIN_FILE]
    assert loaded.thresholds == statistics.thresholds and loaded.sources == statistics.sources
    np.testing.assert_allclose(loaded.score(features), statistics.score(features), rtol=1e-6)


def test_a_tampered_domain_file_is_refused(tmp_path):
    save_fitted(tmp_path)
    with (tmp_path / DOMAIN_FILE).open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(ModelDirectoryError, match="sha256"):
        load_domain_statistics(tmp_path, read_card(tmp_path))


def test_a_declared_but_missing_or_unhashed_domain_file_is_refused(tmp_path):
    save_fitted(tmp_path)
    card = read_card(tmp_path)
    unhashed = {**card, "files": {}}
    with pytest.raises(ModelDirectoryError, match="no sha256"):
        load_domain_statistics(tmp_path, unhashed)
    (tmp_path / DOMAIN_FILE).unlink()
    with pytest.raises(ModelDirectoryError, match="missing"):
        load_domain_statistics(tmp_path, card)


def test_a_card_without_domain_means_no_statistics_and_no_thresholds(tmp_path):
    (tmp_path / "model_card.json").write_text(json.dumps({"version": "t"}))
    assert load_domain_statistics(tmp_path, read_card(tmp_path)) is None
    assert thresholds_from_card(read_card(tmp_path)) is None


def test_the_card_declares_the_thresholds_of_its_domain_file(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "m", domain=DomainThresholds(cell=2.5, slide=1.25))
    card = read_card(model_dir)
    assert thresholds_from_card(card) == load_domain_statistics(model_dir, card).thresholds
    assert thresholds_from_card(card) == DomainThresholds(cell=2.5, slide=1.25)


def test_a_cell_is_held_to_its_own_review_threshold_when_it_carries_one():
    cells = [CellEvidence(0.95, 0.5, 0.97), CellEvidence(0.95, 0.5, 0.9), CellEvidence(0.95, 0.5)]
    decision = decide_auto_accept(cells * 4, review_threshold=REVIEW, thresholds=THRESHOLDS)
    assert [cell.auto_acceptable for cell in decision.cells[:3]] == [False, True, True]
    assert not decision.cells[0].confident and decision.cells[0].in_domain


def test_a_review_threshold_of_one_accepts_nothing_not_even_certainty():
    decision = decide_auto_accept(
        [CellEvidence(1.0, 0.5, REVIEW_EVERYTHING)] * 12, review_threshold=REVIEW, thresholds=THRESHOLDS
    )
    assert decision.verdict == Verdict.IN_DOMAIN
    assert not any(cell.confident or cell.auto_acceptable for cell in decision.cells)


def test_each_cell_gets_the_review_threshold_of_its_nearest_source():
    rng = np.random.default_rng(3)
    train, validation = two_sources(rng), two_sources(rng)
    statistics, _ = fit_domain(train, {s: f for s, (f, _) in validation.items()}, 3)
    fresh = two_sources(rng)
    features = np.concatenate([fresh["first"][0], fresh["second"][0]])
    assert (statistics.nearest_source(features) == np.repeat([0, 1], 400)).mean() > 0.99
    assert set(statistics.cell_review_thresholds(features, 0.5)) == {0.5}
    per_source = dataclasses.replace(statistics, review_thresholds=np.array([0.9, REVIEW_EVERYTHING]))
    thresholds = per_source.cell_review_thresholds(features, 0.5)
    assert (thresholds[:400] == 0.9).mean() > 0.99 and (thresholds[400:] == REVIEW_EVERYTHING).mean() > 0.99


def test_per_source_review_thresholds_survive_a_save_and_load(tmp_path):
    statistics, features = save_fitted(tmp_path)
    assert load_domain_statistics(tmp_path, read_card(tmp_path)).review_thresholds is None
    per_source = dataclasses.replace(statistics, review_thresholds=np.array([0.95, 0.99]))
    save_domain_statistics(tmp_path, per_source)
    write_card(tmp_path, read_card(tmp_path))
    loaded = load_domain_statistics(tmp_path, read_card(tmp_path))
    np.testing.assert_array_equal(loaded.review_thresholds, [0.95, 0.99])
    np.testing.assert_array_equal(
        loaded.cell_review_thresholds(features, 0.5), per_source.cell_review_thresholds(features, 0.5)
    )
