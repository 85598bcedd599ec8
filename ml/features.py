"""Decode each image once, render its views, and cache the frozen lower network's activations.

With the lower MobileNetV2 blocks frozen, their output for a given view never changes, so it is
computed once per view and stored (float16) instead of every epoch; training then only runs the
upper blocks. Several randomly augmented views per image stand in for on-the-fly augmentation.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.augment import AugmentConfig, augmented_pixels
from ml.cells import LocalisationConfig, crop_cell
from ml.data import Sample

CHUNK = 256


@dataclass(frozen=True)
class FeatureSet:
    features: np.ndarray  # (views, *activation shape), float16
    labels: np.ndarray  # (views,)
    sample_index: np.ndarray  # which sample each view came from


def render_views(
    sample: Sample,
    size: int,
    localisation: LocalisationConfig,
    augment: AugmentConfig | None,
    views: int,
    seed: int,
) -> list[np.ndarray]:
    """View 0 is the plain crop; the others are augmented (seeded per image, so reproducible)."""
    with Image.open(sample.path) as opened:
        image = opened.convert("RGB")
    plain = np.asarray(crop_cell(image, localisation, size), dtype=np.float32)
    if augment is None:
        return [plain]
    rng = np.random.default_rng(
        [seed, int(hashlib.md5(str(sample.path).encode(), usedforsecurity=False).hexdigest()[:8], 16)]
    )
    return [plain] + [augmented_pixels(image, localisation, size, augment, rng) for _ in range(views - 1)]


def cache_key(samples: list[Sample], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for sample in samples:
        digest.update(str(sample.path).encode())
    return digest.hexdigest()[:20]


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
    path = cache / f"{name}-{cache_key(samples, settings)}.npz" if cache else None
    if path and path.is_file():
        with np.load(path) as stored:
            return FeatureSet(stored["features"], stored["labels"], stored["sample_index"])
    result = _extract(samples, extractor, size, localisation, augment, views, seed, name)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=result.features, labels=result.labels, sample_index=result.sample_index)
    return result


def _extract(samples, extractor, size, localisation, augment, views, seed, name) -> FeatureSet:
    features, labels, owners = [], [], []
    started = time.monotonic()
    for start in range(0, len(samples), CHUNK):
        pixels = []
        for index in range(start, min(start + CHUNK, len(samples))):
            rendered = render_views(samples[index], size, localisation, augment, views, seed)
            pixels.extend(rendered)
            labels.extend([samples[index].label] * len(rendered))
            owners.extend([index] * len(rendered))
        features.append(extractor.predict(np.stack(pixels), batch_size=64, verbose=0).astype(np.float16))
        done = min(start + CHUNK, len(samples))
        rate = done / (time.monotonic() - started)
        print(
            f"  features {name}: {done}/{len(samples)} images ({rate:.0f} img/s)", file=sys.stderr, flush=True
        )
    return FeatureSet(np.concatenate(features), np.array(labels, np.int64), np.array(owners, np.int64))
