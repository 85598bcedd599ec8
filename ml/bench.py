"""Throughput of the Predictor versus the seed's serving style: `python -m ml.bench [--json FILE]`.

All three measurements start from encoded image bytes and include decoding and preprocessing:
- predictor_b1_ips: `Predictor.predict([one image])` per image (the model's fast export);
- predictor_b32_ips: `Predictor.predict(32 images)` per call;
- seed_style_ips: the seed's serving loop, the same Keras model file called with
  `model.predict(x[None])` one image at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ml.data import read_class_folders
from ml.paths import kaggle_dir
from ml.predict import Predictor, decode_image

WARMUP_CALLS = 2


def sample_images(count: int) -> list[bytes]:
    """Encoded Kaggle TEST images spread over the classes (any JPEGs would do)."""
    samples = read_class_folders(kaggle_dir() / "images" / "TEST")
    step = max(1, len(samples) // count)
    return [sample.path.read_bytes() for sample in samples[::step][:count]]


def images_per_second(run: Callable[[list[bytes]], object], images: list[bytes], batch: int) -> float:
    batches = [images[start : start + batch] for start in range(0, len(images), batch)]
    for warmup in batches[:WARMUP_CALLS]:
        run(warmup)
    started = time.perf_counter()
    for chunk in batches:
        run(chunk)
    return len(images) / (time.perf_counter() - started)


def seed_style(model_dir: Path) -> Callable[[list[bytes]], object]:
    import keras

    predictor = Predictor(model_dir, serving_file="model.keras")
    model = keras.saving.load_model(model_dir / "model.keras", compile=False)

    def run(images: list[bytes]) -> list[np.ndarray]:
        outputs = []
        for index, data in enumerate(images):
            pixels = predictor.preprocess(decode_image(data, index))
            outputs.append(model.predict(pixels[np.newaxis], verbose=0))
        return outputs

    return run


def benchmark(model_dir: Path | None, count: int) -> dict:
    predictor = Predictor(model_dir)
    images = sample_images(count)
    result = {
        "model_version": predictor.version,
        "serving_file": predictor.serving_file,
        "images": len(images),
        "cpu_count": os.cpu_count(),
        "predictor_b1_ips": images_per_second(predictor.predict, images, 1),
        "predictor_b32_ips": images_per_second(predictor.predict, images, 32),
        "seed_style_ips": images_per_second(seed_style(predictor.model_dir), images, 1),
    }
    result["speedup_b32_vs_seed"] = result["predictor_b32_ips"] / result["seed_style_ips"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model directory (default: the committed default model)")
    parser.add_argument("--images", type=int, default=256, help="how many test images to time")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = benchmark(args.model, args.images)
    for key, value in result.items():
        print(f"{key:>22}: {value:.1f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
