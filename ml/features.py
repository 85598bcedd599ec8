"""tf.data input pipeline: decode each image once, render its views, cache the frozen activations.

With the lower MobileNetV2 blocks frozen, their output for a given view never changes, so it is
computed once per view and cached (float16) instead of every epoch; training then only runs the
upper blocks. Several randomly augmented views per image stand in for on-the-fly augmentation.

Image side (`view_dataset`, `extract`): list the samples, read and decode each file once, render
all its views in a parallel map (Pillow/numpy through `tf.numpy_function`, so the views are exactly
those `ml.cells` and `ml.augment` define, seeded per image), batch, run the frozen lower network,
prefetch, and `cache` the activations to a file under the cache dir keyed by the samples and
settings; an identical run reads that file instead of decoding anything.

Training (``ml.train.fit``) draws each epoch's class/source-balanced views from these cached
activations.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.augment import AugmentConfig, augmented_pixels
from ml.cells import LocalisationConfig, crop_cell
from ml.data import Sample

BATCH = 64
PROGRESS_EVERY = 40  # batches between progress lines


@dataclass(frozen=True)
class FeatureSet:
    features: np.ndarray  # (views, *activation shape), float16
    labels: np.ndarray  # (views,)
    sample_index: np.ndarray  # which sample each view came from


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGB")


def view_rng(path: str, seed: int) -> np.random.Generator:
    """Seeded per image (by path), so views do not depend on order, batching or parallelism."""
    return np.random.default_rng(
        [seed, int(hashlib.md5(path.encode(), usedforsecurity=False).hexdigest()[:8], 16)]
    )


def view_count(augment: AugmentConfig | None, views: int) -> int:
    return 1 if augment is None else views


def render_views(
    image: Image.Image,
    path: str,
    size: int,
    localisation: LocalisationConfig,
    augment: AugmentConfig | None,
    views: int,
    seed: int,
) -> np.ndarray:
    """(views, size, size, 3) float32: view 0 is the plain crop, the others are augmented."""
    plain = np.asarray(crop_cell(image, localisation, size), dtype=np.float32)
    if augment is None:
        return plain[np.newaxis]
    rng = view_rng(path, seed)
    augmented = [augmented_pixels(image, localisation, size, augment, rng) for _ in range(views - 1)]
    return np.stack([plain, *augmented])


def view_dataset(
    samples: list[Sample],
    *,
    size: int,
    localisation: LocalisationConfig,
    augment: AugmentConfig | None,
    views: int,
    seed: int,
):
    """tf.data.Dataset of (pixels, label, sample index), one element per view, in sample order."""
    import tensorflow as tf

    count = view_count(augment, views)

    def render(path: bytes, data: bytes) -> np.ndarray:
        return render_views(decode(data), path.decode(), size, localisation, augment, views, seed)

    def load(path, label, index):
        pixels = tf.numpy_function(render, [path, tf.io.read_file(path)], tf.float32, stateful=False)
        pixels.set_shape((count, size, size, 3))
        return pixels, tf.fill([count], label), tf.fill([count], index)

    listed = tf.data.Dataset.from_tensor_slices(
        (
            [str(sample.path) for sample in samples],
            np.array([sample.label for sample in samples], np.int64),
            np.arange(len(samples), dtype=np.int64),
        )
    )
    # deterministic=True keeps sample order while images are rendered in parallel.
    rendered = listed.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return rendered.unbatch()


def activation_dataset(views, extractor, cache_file: Path | None):
    """Batches of (float16 activations, labels, sample indices), cached to `cache_file` if given."""
    import tensorflow as tf

    def activations(pixels, labels, owners):
        return tf.cast(extractor(pixels, training=False), tf.float16), labels, owners

    batches = views.batch(BATCH).prefetch(tf.data.AUTOTUNE).map(activations)
    if cache_file is not None:
        batches = batches.cache(str(cache_file))
    return batches.prefetch(tf.data.AUTOTUNE)


def cache_key(samples: list[Sample], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for sample in samples:
        digest.update(str(sample.path).encode())
    return digest.hexdigest()[:20]


def cache_files(prefix: Path) -> list[Path]:
    """The files tf.data's cache writes for a prefix (an index and data shards)."""
    return sorted(prefix.parent.glob(f"{prefix.name}.*"))


def is_cached(prefix: Path) -> bool:
    return prefix.with_name(f"{prefix.name}.index").is_file()


def publish_cache(temporary: Path, final: Path) -> None:
    """Rename a completed per-process cache to its shared name, index last (the index marks it done)."""
    for part in sorted(cache_files(temporary), key=lambda p: p.suffix == ".index"):
        os.replace(part, final.with_name(final.name + part.name[len(temporary.name) :]))


def extract(
    samples: list[Sample],
    extractor,
    *,
    size: int,
    localisation: LocalisationConfig,
    augment: AugmentConfig | None,
    views: int,
    seed: int,
    cache: Path | None,
    name: str,
    extractor_id: str,
) -> FeatureSet:
    """Activations of every view of every sample, from the cache when an identical run made them."""
    settings = {
        "size": size,
        "localisation": localisation.to_dict(),
        "augment": augment and augment.to_dict(),
        "views": views,
        "seed": seed,
        "extractor": extractor_id,
    }
    final = cache / f"{name}-{cache_key(samples, settings)}.tfdata" if cache else None
    reuse = final is not None and is_cached(final)
    # A new cache is written under a per-process name and published when complete, so an
    # interrupted or concurrent run never leaves (or reads) a partial cache.
    target = final if reuse or final is None else final.with_name(f"{final.name}.tmp{os.getpid()}")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
    views_per_sample = view_dataset(
        samples, size=size, localisation=localisation, augment=augment, views=views, seed=seed
    )
    result = collect(activation_dataset(views_per_sample, extractor, target), len(samples), name)
    expected = len(samples) * view_count(augment, views)
    if len(result.labels) != expected:
        raise RuntimeError(f"{name}: {len(result.labels)} views from {target}, expected {expected}")
    if target is not None and not reuse:
        publish_cache(target, final)
    return result


def collect(batches, total: int, name: str) -> FeatureSet:
    """Read a whole activation dataset into memory (which also completes its cache file).

    TensorFlow logs "did not fully read the dataset being cached" after every completed file
    cache (a known false positive, tensorflow/tensorflow#75002); `extract` checks the view count.
    """
    features, labels, owners = [], [], []
    started = time.monotonic()
    for number, (activations, label, owner) in enumerate(batches.as_numpy_iterator(), start=1):
        features.append(activations)
        labels.append(label)
        owners.append(owner)
        if number % PROGRESS_EVERY == 0:
            done = int(owner[-1]) + 1
            rate = done / (time.monotonic() - started)
            print(f"  features {name}: {done}/{total} images ({rate:.0f} img/s)", file=sys.stderr, flush=True)
    return FeatureSet(np.concatenate(features), np.concatenate(labels), np.concatenate(owners))
