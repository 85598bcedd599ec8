"""Training-time views of a cell: geometry, scale, focus and stain/colour variation.

Unseen labs differ mostly in stain hue and intensity, illumination, focus and magnification, so
each of those is randomised around the cell crop. Orientation carries no meaning for a cell, so
any rotation and flip is a valid label-preserving view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageFilter

from ml.cells import LocalisationConfig, locate_cell


@dataclass(frozen=True)
class AugmentConfig:
    scale_jitter: float = 0.2  # crop side multiplied by exp(U(-s, s))
    shift_jitter: float = 0.08  # crop centre moved by up to this fraction of the side
    hue_shift: float = 0.06  # fraction of the colour wheel
    saturation: float = 0.35  # multiplied by exp(U(-s, s))
    brightness: float = 0.15
    contrast: float = 0.25
    channel_gain: float = 0.1  # independent per-channel gain: white balance / stain intensity
    grayscale_probability: float = 0.1
    blur_probability: float = 0.3
    max_blur_radius: float = 1.5
    # Per-stain optical-density scale/shift (colour deconvolution): mimics a lab staining longer,
    # shorter or with other dye batches, which moves nuclei and granules independently.
    stain_jitter: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def geometric_view(
    image: Image.Image,
    localisation: LocalisationConfig,
    size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
) -> Image.Image:
    """A rotated, flipped, rescaled and shifted square crop around the located cell."""
    small = image.copy()
    small.thumbnail((localisation.work_size, localisation.work_size), Image.Resampling.BILINEAR)
    found = locate_cell(np.asarray(small), localisation)
    centre_x, centre_y, side = found if found else (0.5, 0.5, localisation.max_side)
    short = min(image.size)
    side_pixels = side * short * float(np.exp(rng.uniform(-config.scale_jitter, config.scale_jitter)))
    centre = np.array([centre_x * image.width, centre_y * image.height])
    centre += rng.uniform(-config.shift_jitter, config.shift_jitter, 2) * side_pixels
    # Take a crop large enough to rotate without bringing in corners, then cut the square out.
    outer = side_pixels * 1.5
    left, top = np.round(centre - outer / 2).astype(int)
    outer_pixels = max(1, round(outer))
    region = image.crop((left, top, left + outer_pixels, top + outer_pixels))
    region = region.rotate(float(rng.uniform(0, 360)), Image.Resampling.BILINEAR)
    margin = (outer_pixels - side_pixels) / 2
    square = region.crop(
        (round(margin), round(margin), round(margin + side_pixels), round(margin + side_pixels))
    )
    if rng.random() < 0.5:
        square = square.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < config.blur_probability:
        square = square.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, config.max_blur_radius)))
    return square.resize((size, size), Image.Resampling.BILINEAR)


def _rotate_hue(rgb: np.ndarray, fraction: float) -> np.ndarray:
    """Rotate hue by `fraction` of a turn (rotation about the grey axis, no HSV round-trip)."""
    angle = 2 * np.pi * fraction
    cosine, sine = np.cos(angle), np.sin(angle)
    third, root = 1 / 3, np.sqrt(1 / 3)
    matrix = np.array(
        [
            [
                cosine + (1 - cosine) * third,
                third * (1 - cosine) - root * sine,
                third * (1 - cosine) + root * sine,
            ],
            [
                third * (1 - cosine) + root * sine,
                cosine + third * (1 - cosine),
                third * (1 - cosine) - root * sine,
            ],
            [
                third * (1 - cosine) - root * sine,
                third * (1 - cosine) + root * sine,
                cosine + third * (1 - cosine),
            ],
        ]
    )
    return rgb @ matrix.T


# Ruifrok & Johnston optical-density vectors (haematoxylin, eosin, residual), rows normalised.
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_STAINS = _STAINS / np.linalg.norm(_STAINS, axis=1, keepdims=True)
_UNSTAIN = np.linalg.inv(_STAINS)


def jitter_stains(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Scale and shift each stain's concentration in optical-density space (rgb in 0..1)."""
    density = -np.log(np.clip(rgb, 1 / 255, 1.0))
    concentrations = density @ _UNSTAIN
    concentrations = (
        concentrations * rng.uniform(1 - amount, 1 + amount, 3) + rng.uniform(-amount, amount, 3) / 4
    )
    return np.exp(-(concentrations @ _STAINS))


def colour_view(pixels: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random stain/illumination change of RGB float pixels in 0..255."""
    rgb = pixels.astype(np.float32) / 255.0
    if config.stain_jitter > 0:
        rgb = jitter_stains(rgb, config.stain_jitter, rng)
    rgb = _rotate_hue(rgb, rng.uniform(-config.hue_shift, config.hue_shift))
    grey = rgb.mean(axis=-1, keepdims=True)
    saturation = (
        0.0 if rng.random() < config.grayscale_probability else np.exp(rng.uniform(-1, 1) * config.saturation)
    )
    rgb = grey + (rgb - grey) * saturation
    rgb = rgb * (1 + rng.uniform(-config.channel_gain, config.channel_gain, 3))
    mean = rgb.mean()
    rgb = (rgb - mean) * np.exp(rng.uniform(-config.contrast, config.contrast)) + mean
    rgb = rgb + rng.uniform(-config.brightness, config.brightness)
    return np.clip(rgb * 255.0, 0, 255).astype(np.float32)


def augmented_pixels(
    image: Image.Image,
    localisation: LocalisationConfig,
    size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    view = geometric_view(image.convert("RGB"), localisation, size, config, rng)
    return colour_view(np.asarray(view), config, rng)
