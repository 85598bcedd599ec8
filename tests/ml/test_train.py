from pathlib import Path

import numpy as np
import pytest

from ml.data import Sample
from ml.features import FeatureSet
from ml.model import build_head
from ml.train import RECIPES, apply_overrides, average_weights, fit, limit_per_group, sampling_weights


def make_samples() -> list[Sample]:
    kaggle = [Sample(Path(f"k{i}.jpg"), i % 2, "kaggle", f"G{i % 3}") for i in range(12)]
    pbc = [Sample(Path(f"p{i}.jpg"), i % 4, "pbc", f"p{i}") for i in range(40)]
    return kaggle + pbc


def test_sampling_weights_balance_sources_and_classes():
    samples = make_samples()
    views = FeatureSet(np.zeros((52, 1)), np.array([s.label for s in samples]), np.arange(52))
    weights = sampling_weights(samples, views, kaggle_share=0.6)
    sources = np.array([s.source for s in samples])
    assert weights.sum() == pytest.approx(1.0)
    assert weights[sources == "kaggle"].sum() == pytest.approx(0.6)
    for label in range(4):
        assert weights[(sources == "pbc") & (views.labels == label)].sum() == pytest.approx(0.1)


def test_limit_per_group_caps_copies_of_each_original():
    samples = [Sample(Path(f"{i}.jpg"), 0, "kaggle", f"G{i % 2}") for i in range(10)]
    kept = limit_per_group(samples, 3, seed=0)
    assert sorted(s.group for s in kept) == ["G0"] * 3 + ["G1"] * 3
    assert limit_per_group(samples, 0, seed=0) == samples


def test_overrides_are_cast_to_the_field_type():
    recipe = apply_overrides(RECIPES["default"], ["epochs=3", "learning_rate=0.01", "augment=false"])
    assert (recipe.epochs, recipe.learning_rate, recipe.augment) == (3, 0.01, False)
    with pytest.raises(SystemExit):
        apply_overrides(RECIPES["default"], ["no_such_field=1"])


def test_average_weights_is_elementwise_mean():
    averaged = average_weights([[np.zeros(2), np.ones(1)], [np.full(2, 2.0), np.full(1, 3.0)]])
    assert [a.tolist() for a in averaged] == [[1.0, 1.0], [2.0]]


def test_fit_learns_a_separable_problem_and_stops_early(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    features = (np.eye(4)[labels] * 3 + rng.normal(0, 0.3, (200, 4))).astype(np.float16)
    samples = [Sample(Path(f"{i}.jpg"), int(label), "pbc", str(i)) for i, label in enumerate(labels)]
    train = FeatureSet(features, labels, np.arange(200))
    recipe = apply_overrides(
        RECIPES["default"], ["epochs=30", "patience=3", "samples_per_epoch=256", "learning_rate=0.05"]
    )
    head = build_head((4,), None, 4, dropout=0.0)
    history, selection = fit(
        recipe, head, train, sampling_weights(samples, train, 0.5), {"val_pbc": train}, tmp_path
    )
    assert selection["score"] > 0.95
    assert len(history) < 30
    assert not (tmp_path / "checkpoint.weights.h5").exists()


def test_fit_is_reproducible_for_a_seed(tmp_path):
    import keras

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 20)
    features = (np.eye(4)[labels] + rng.normal(0, 0.5, (80, 4))).astype(np.float16)
    samples = [Sample(Path(f"{i}.jpg"), int(label), "pbc", str(i)) for i, label in enumerate(labels)]
    train = FeatureSet(features, labels, np.arange(80))
    recipe = apply_overrides(RECIPES["default"], ["epochs=3", "patience=0", "samples_per_epoch=96"])
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(recipe.seed)
        head = build_head((4,), None, 4, dropout=0.5)
        weights = sampling_weights(samples, train, 0.5)
        history, _ = fit(recipe, head, train, weights, {"val_pbc": train}, tmp_path)
        runs.append(([row["loss"] for row in history], head.get_weights()))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
