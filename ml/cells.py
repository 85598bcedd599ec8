"""Locate the stained white cell in a smear image and crop a square around it.

Sources differ in framing and magnification (a Kaggle field shows a cell among red cells at one
scale, a CellaVision image shows a centred cell ~1.3x larger). Cropping a square sized from the
nucleus extent makes every source look alike to the network, and makes an uploaded field usable
without manual cropping. Everything here is numpy + Pillow so serving never needs TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class LocalisationConfig:
    """Parameters of the crop; stored in the model card so serving repeats training exactly."""

    method: str = "stain_blob_v1"  # or "none": no localisation, resize the whole image
    # Work on a small copy: the nucleus is large, and this keeps localisation under a millisecond.
    work_size: int = 128
    # Nuclei (haematoxylin/azure) are blue-violet: blue well above green. Red cells and
    # background are not. The threshold adapts per image (Otsu) but never drops below this floor,
    # so a cell-free image does not turn noise into a "nucleus".
    min_stain_score: float = 25.0
    # Window (fraction of the short side) over which stain density is summed to find the cell.
    density_window: float = 0.15
    # Only stained pixels within this radius (fraction of the short side) of the densest point
    # belong to the cell; neighbouring cells farther away are ignored.
    cell_radius: float = 0.3
    # Crop side = nucleus extent x context, so the cytoplasm and a rim of background are kept.
    context: float = 1.6
    min_side: float = 0.3
    max_side: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def stain_score(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel nucleus evidence: blue minus green (int16 to avoid uint8 wrap-around)."""
    return rgb[..., 2].astype(np.int16) - rgb[..., 1].astype(np.int16)


def otsu_threshold(values: np.ndarray) -> float:
    """Threshold maximising between-class variance of a 1-D sample (integer-valued scores)."""
    histogram, edges = np.histogram(values, bins=128)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(histogram * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


def box_sum(mask: np.ndarray, window: int) -> np.ndarray:
    """Sum of `mask` over a window x window box centred on each pixel (integral image)."""
    padded = np.pad(mask.astype(np.float32), window // 2 + 1)
    integral = padded.cumsum(0).cumsum(1)
    height, width = mask.shape
    return (
        integral[window : window + height, window : window + width]
        - integral[:height, window : window + width]
        - integral[window : window + height, :width]
        + integral[:height, :width]
    )


def locate_cell(rgb: np.ndarray, config: LocalisationConfig) -> tuple[float, float, float] | None:
    """Return (centre_x, centre_y, side) in fractions of the image, or None if no stain found."""
    height, width = rgb.shape[:2]
    short = min(height, width)
    score = stain_score(rgb)
    # Rotation-augmented images have black corners; exclude them from the threshold statistics.
    valid = rgb.sum(axis=-1) > 30
    if valid.sum() < 16:
        return None
    threshold = max(otsu_threshold(score[valid]), config.min_stain_score)
    mask = (score > threshold) & valid
    if mask.sum() < 4:
        return None
    density = box_sum(mask, max(3, int(short * config.density_window)))
    peak_y, peak_x = np.unravel_index(int(np.argmax(density)), density.shape)
    ys, xs = np.nonzero(mask)
    near = (ys - peak_y) ** 2 + (xs - peak_x) ** 2 <= (config.cell_radius * short) ** 2
    ys, xs = ys[near], xs[near]
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    side = float(np.clip(extent * config.context, config.min_side * short, config.max_side * short))
    centre_x = (xs.min() + xs.max() + 1) / 2
    centre_y = (ys.min() + ys.max() + 1) / 2
    return centre_x / width, centre_y / height, side / short


def crop_cell(image: Image.Image, config: LocalisationConfig, output_size: int) -> Image.Image:
    """Square crop around the white cell, resized to output_size; centre crop when none is found.

    method "none" resizes the whole image instead (the seed recipe's preprocessing).
    """
    image = image.convert("RGB")
    if config.method == "none":
        return image.resize((output_size, output_size), Image.Resampling.BILINEAR)
    small = image.copy()
    small.thumbnail((config.work_size, config.work_size), Image.Resampling.BILINEAR)
    found = locate_cell(np.asarray(small), config)
    centre_x, centre_y, side = found if found else (0.5, 0.5, config.max_side)
    short = min(image.size)
    half = side * short / 2
    left = round(centre_x * image.width - half)
    top = round(centre_y * image.height - half)
    side_pixels = max(1, round(2 * half))
    # crop() fills outside the image with black, which the rotated Kaggle crops also contain,
    # so the network sees out-of-frame regions the same way in every source.
    square = image.crop((left, top, left + side_pixels, top + side_pixels))
    return square.resize((output_size, output_size), Image.Resampling.BILINEAR)
