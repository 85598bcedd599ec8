"""The review-rule study on a constructed lab like Kaggle validation: few distinct cells, many
copies each, a few cells misread confidently in every copy."""

import numpy as np

from ml.review_study import study_source


def kaggle_like(rng, cells=50, copies=40, misread=3):
    groups = np.repeat(np.arange(cells), copies)
    confidence = rng.uniform(0.9, 0.995, cells * copies)
    correct = groups >= misread  # the first cells are wrong in every copy, as confidently as the rest
    return confidence, correct, groups.astype(str)


def test_counting_copies_as_evidence_breaks_the_promise_and_counting_cells_keeps_it():
    result = study_source(*kaggle_like(np.random.default_rng(0)), splits=20)
    rules = result["rules"]
    assert result["distinct_cells"] == 50 and result["bound_met_with_no_error_needs_cells"] == 299
    assert rules["point_estimate_images"]["held_out_wrong_rate"] > 0.02
    assert rules["bound_originals"]["threshold_on_all_validation"] == 1.0
    assert rules["bound_originals"]["held_out_accepted"] == 0


def test_with_many_distinct_right_cells_the_kept_rule_accepts_most_of_them():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.9, 0.995, 1000)
    correct = np.ones(1000, dtype=bool)
    correct[rng.choice(1000, 3, replace=False)] = False
    rules = study_source(confidence, correct, np.arange(1000).astype(str), splits=20)["rules"]
    assert rules["bound_originals"]["held_out_coverage"] > 0.9
    assert rules["bound_originals"]["held_out_wrong_rate"] <= 0.01
