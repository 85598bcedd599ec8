import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.augment import AugmentConfig, augmented_pixels
from ml.cells import LocalisationConfig, crop_cell
from ml.data import Sample
from ml.features import extract, view_dataset
from ml.testing import build_tiny_classifier
from tests.ml.conftest import synthetic_cell

SIZE = 32


@pytest.fixture
def samples(tmp_path) -> list[Sample]:
    """Three tiny cells (JPEG and PNG) of different classes."""
    made = []
    for index, (centre, suffix) in enumerate([((40, 45), "jpg"), ((70, 30), "png"), ((60, 50), "jpeg")]):
        path = tmp_path / f"cell{index}.{suffix}"
        synthetic_cell(centre, 12 + 2 * index).save(path)
        made.append(Sample(path, index, "pbc", f"pbc:{path.name}"))
    return made


def reference_views(sample: Sample, augment: AugmentConfig | None, views: int, seed: int) -> list[np.ndarray]:
    """How views were rendered before the tf.data pipeline: open the file, plain crop, then
    augmented views drawn from a generator seeded by (seed, md5 of the path)."""
    with Image.open(sample.path) as opened:
        image = opened.convert("RGB")
    plain = np.asarray(crop_cell(image, LocalisationConfig(), SIZE), dtype=np.float32)
    if augment is None:
        return [plain]
    path_hash = int(hashlib.md5(str(sample.path).encode(), usedforsecurity=False).hexdigest()[:8], 16)
    rng = np.random.default_rng([seed, path_hash])
    augmented = [augmented_pixels(image, LocalisationConfig(), SIZE, augment, rng) for _ in range(views - 1)]
    return [plain, *augmented]


def pipeline_views(samples: list[Sample], augment: AugmentConfig | None, views: int, seed: int):
    dataset = view_dataset(
        samples, size=SIZE, localisation=LocalisationConfig(), augment=augment, views=views, seed=seed
    )
    pixels, labels, owners = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.stack(pixels), np.array(labels), np.array(owners)


@pytest.mark.parametrize("augment", [AugmentConfig(), None])
def test_pipeline_renders_exactly_the_reference_views_in_sample_order(samples, augment):
    pixels, labels, owners = pipeline_views(samples, augment, views=3, seed=7)
    expected = [view for sample in samples for view in reference_views(sample, augment, 3, 7)]
    per_sample = 3 if augment else 1
    assert pixels.dtype == np.float32
    assert np.array_equal(pixels, np.stack(expected))
    assert labels.tolist() == owners.tolist() == [i for i in range(3) for _ in range(per_sample)]


def test_augmented_views_change_with_the_seed(samples):
    first, _, _ = pipeline_views(samples[:1], AugmentConfig(), views=2, seed=1)
    other, _, _ = pipeline_views(samples[:1], AugmentConfig(), views=2, seed=2)
    assert np.array_equal(first[0], other[0])  # the plain crop does not depend on the seed
    assert not np.array_equal(first[1], other[1])


def run_extract(samples, extractor, cache: Path | None, seed: int = 0):
    return extract(
        samples,
        extractor,
        size=SIZE,
        localisation=LocalisationConfig(),
        augment=AugmentConfig(),
        views=2,
        seed=seed,
        cache=cache,
        name="tiny-train",
        extractor_id="tiny",
    )


def test_activations_are_the_extractor_output_on_the_rendered_views(samples):
    extractor = build_tiny_classifier(SIZE, 4, seed=0)
    result = run_extract(samples, extractor, cache=None)
    pixels, labels, owners = pipeline_views(samples, AugmentConfig(), views=2, seed=0)
    expected = extractor.predict(pixels, verbose=0).astype(np.float16)
    assert result.features.dtype == np.float16
    assert np.allclose(result.features, expected, atol=1e-3)
    assert np.array_equal(result.labels, labels) and np.array_equal(result.sample_index, owners)


def test_an_identical_run_reads_the_cache_and_a_changed_one_does_not(samples, tmp_path):
    cache = tmp_path / "cache"
    first = run_extract(samples, build_tiny_classifier(SIZE, 4, seed=0), cache)
    written = sorted(p.name for p in cache.iterdir())
    assert [name.rsplit(".", 1)[-1] for name in written] == ["data-00000-of-00001", "index"]
    # Different weights under the same extractor id: only a cache read gives the first result.
    again = run_extract(samples, build_tiny_classifier(SIZE, 4, seed=1), cache)
    assert np.array_equal(again.features, first.features)
    assert sorted(p.name for p in cache.iterdir()) == written
    changed = run_extract(samples, build_tiny_classifier(SIZE, 4, seed=1), cache, seed=3)
    assert not np.array_equal(changed.features, first.features)
    assert len(list(cache.iterdir())) == 4
