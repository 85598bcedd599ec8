"""The one door from Django to ``ml/``: a registered model version becomes a loaded Predictor
(and a Grad-CAM explainer); no other module of the project imports ``ml``.

Loading is expensive (files hashed, interpreter built), so each process keeps the predictors it
loaded; Celery workers warm the active one when a pool process starts (``classifier.tasks``).
Web processes never call ``predictor_for`` or ``explainer_for``.
"""

import hashlib
import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ml.adapt import AdaptationCancelled, AdaptationRefused, AdaptConfig, Progress, adapt
from ml.card import ModelDirectoryError, read_card
from ml.cells import LocalisationConfig
from ml.data import DatasetError
from ml.domain import (
    MIN_SLIDE_CELLS,
    REVIEW_EVERYTHING,
    CellEvidence,
    DomainThresholds,
    SlideDecision,
    Verdict,
    decide_auto_accept,
    is_confident,
    thresholds_from_card,
)
from ml.gradcam import GradCamExplainer
from ml.lab import MIN_CELLS_PER_CLASS, LabDataError
from ml.locate import Box, LocatorConfig, classify_crops, crop_for_classifier, locate_cells
from ml.paths import default_model_dir
from ml.predict import CellPrediction, ImageDecodeError, Predictor, decode_image

# The ml names the rest of the app works with, re-exported so that this stays the only door.
__all__ = [
    "MIN_CELLS_PER_CLASS",
    "MIN_SLIDE_CELLS",
    "REVIEW_EVERYTHING",
    "Box",
    "LocatedCrop",
    "crops_predict",
    "field_box_crop",
    "field_cells_locate",
    "AdaptationCancelled",
    "AdaptationRefused",
    "AdaptationUnusable",
    "AdaptConfig",
    "Progress",
    "adapt",
    "CellEvidence",
    "CellPrediction",
    "DomainThresholds",
    "SlideDecision",
    "Verdict",
    "decide_auto_accept",
    "is_confident",
    "ImageDecodeError",
    "ModelDirectoryError",
    "ModelLoadError",
    "default_model_directory",
    "explainer_for",
    "predictor_for",
    "thresholds_from_card",
    "validated_domains",
]

logger = logging.getLogger(__name__)

_predictors: dict[tuple[int, str], Predictor] = {}
_predictors_lock = threading.Lock()
_explainers: dict[tuple[int, str], GradCamExplainer] = {}
_explainers_lock = threading.Lock()


# What ``ml.adapt.adapt`` raises when the request cannot be run (lab data, base model, output).
AdaptationUnusable = (LabDataError, AdaptationRefused, DatasetError, ModelDirectoryError)


class ModelLoadError(RuntimeError):
    """A registered model cannot be served: files missing, changed since registration, or unreadable."""


def default_model_directory() -> Path:
    """The default model shipped with the code (or HEMATOVISION_MODEL_DIR)."""
    return default_model_dir()


def model_directory_resolve(directory: str) -> Path:
    """Relative directories are under HEMATOVISION_MODELS_ROOT, so each machine can put it elsewhere."""
    path = Path(directory)
    return path if path.is_absolute() else Path(settings.HEMATOVISION_MODELS_ROOT) / path


def model_directory_store(path: Path) -> str:
    """The form of ``path`` to record: relative to the models root when it lies inside it."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path(settings.HEMATOVISION_MODELS_ROOT).resolve()))
    except ValueError:
        return str(path)


def model_directory_hashes(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (the card included), by relative POSIX name."""
    if not path.is_dir():
        raise ModelLoadError(f"Model directory {path} does not exist.")
    return {
        file.relative_to(path).as_posix(): _file_sha256(file)
        for file in sorted(path.rglob("*"))
        if file.is_file() and "__pycache__" not in file.parts
    }


def model_directory_digest(file_hashes: dict[str, str]) -> str:
    lines = "".join(f"{name}\t{digest}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def model_card_read(path: Path) -> dict:
    try:
        return read_card(path)
    except (ModelDirectoryError, ValueError) as error:
        raise ModelLoadError(f"Cannot read the model card in {path}: {error}") from error


# The training sources a card's ``data.train_sources`` names, as the Models page says them.
SOURCE_NAMES = {
    "kaggle": "Kaggle blood-cells (BCCD smears, one lab)",
    "pbc": "PBC (CellaVision DM96, Hospital Clinic of Barcelona)",
    "lab": "This lab's verified cells (ml.adapt)",
}


def validated_domains(card: dict) -> dict:
    """The domains a model was trained and validated on, from its card: sources, image counts and,
    when the model has them, each source's own review threshold."""
    data = card.get("data") or {}
    sources = [name for name in str(data.get("train_sources", "")).split("+") if name]
    validation = data.get("validation_images") or {}
    review = (card.get("domain") or {}).get("review_thresholds") or {}
    return {
        "train_images": data.get("train_images"),
        "per_source_review_thresholds": bool(review),
        "sources": [
            {
                "source": source,
                "name": SOURCE_NAMES.get(source, source),
                "validation_images": validation.get(f"val_{source}"),
                "review_threshold": review.get(source),
                "review_threshold_validated": source in review and review[source] < REVIEW_EVERYTHING,
            }
            for source in sources
        ],
    }


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_directory_verify(*, name: str, directory: str, expected_hashes: dict[str, str]) -> Path:
    """The directory's path after checking its files are exactly those recorded at registration."""
    path = model_directory_resolve(directory)
    actual = model_directory_hashes(path)
    changed = sorted(n for n in expected_hashes.keys() & actual.keys() if expected_hashes[n] != actual[n])
    missing = sorted(expected_hashes.keys() - actual.keys())
    added = sorted(actual.keys() - expected_hashes.keys())
    if changed or missing or added:
        details = "; ".join(
            f"{label}: {', '.join(names)}"
            for label, names in (("changed", changed), ("missing", missing), ("unexpected", added))
            if names
        )
        raise ModelLoadError(
            f"Model {name} refuses to load: its files in {path} do not match the sha256 recorded "
            f"at registration ({details})."
        )
    return path


def predictor_for(model_version) -> Predictor:  # noqa: ANN001  (a classifier.models.ModelVersion)
    """The loaded Predictor of a model version; loaded and verified once per process."""
    key = (model_version.pk, model_version.sha256)
    with _predictors_lock:
        if key not in _predictors:
            _predictors[key] = _predictor_load(model_version)
        return _predictors[key]


def _predictor_load(model_version) -> Predictor:  # noqa: ANN001
    path = model_directory_verify(
        name=model_version.name, directory=model_version.directory, expected_hashes=model_version.file_hashes
    )
    try:
        predictor = Predictor(path)
    except (ModelDirectoryError, OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"Model {model_version.name} could not be loaded from {path}: {error}"
        ) from error
    logger.info("Loaded model %s from %s", model_version.name, path)
    return predictor


def predictor_cache_clear() -> None:
    with _predictors_lock:
        _predictors.clear()


def explainer_for(model_version) -> GradCamExplainer:  # noqa: ANN001  (a classifier.models.ModelVersion)
    """The Grad-CAM explainer of a model version; loaded once per process, after checking the
    directory's files are those registered."""
    key = (model_version.pk, model_version.sha256)
    with _explainers_lock:
        if key not in _explainers:
            path = model_directory_verify(
                name=model_version.name,
                directory=model_version.directory,
                expected_hashes=model_version.file_hashes,
            )
            _explainers[key] = GradCamExplainer(path)
        return _explainers[key]


def explainer_cache_clear() -> None:
    with _explainers_lock:
        _explainers.clear()


# --- Whole fields (ml.locate) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocatedCrop:
    """One white cell of a field: its box and the classifier's crop (PNG bytes, size × size)."""

    box: Box
    png: bytes
    size: int


def _png(image) -> bytes:  # noqa: ANN001  (a PIL image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def field_cells_locate(predictor: Predictor, data: bytes) -> tuple[list[LocatedCrop], dict]:
    """The white cells of a field image (``ml.locate.locate_cells``, best first), each cropped as
    the model was trained (``crop_for_classifier``), and the locator's settings to record.
    Raises ``ImageDecodeError`` for bytes that are not an image."""
    image = decode_image(data, 0)
    config = LocatorConfig()
    crops = [
        LocatedCrop(
            box,
            _png(crop_for_classifier(image, box, predictor.localisation, predictor.input_size)),
            predictor.input_size,
        )
        for box in locate_cells(image, config)
    ]
    return crops, config.to_dict()


def field_box_crop(model_version, data: bytes, box: tuple[int, int, int, int]) -> LocatedCrop:  # noqa: ANN001
    """The classifier's crop of a box drawn on a field (x, y, width, height in field pixels), for
    the model version that will classify it. Reads the model card only: no model is loaded, so a
    web request may call it. Raises ``ImageDecodeError`` for bytes that are not an image."""
    card = model_card_read(model_directory_resolve(model_version.directory))
    localisation = LocalisationConfig(**card["preprocessing"]["cell_localisation"])
    size = int(card["input_size"])
    image = decode_image(data, 0)
    x, y, width, height = box
    drawn = Box(x_min=x, y_min=y, x_max=x + width, y_max=y + height, score=1.0)
    return LocatedCrop(drawn, _png(crop_for_classifier(image, drawn, localisation, size)), size)


def crops_predict(predictor: Predictor, images: Sequence[bytes]) -> list[CellPrediction | ImageDecodeError]:
    """Classify stored crops of field cells as they are (no second cell localisation)."""
    decoded: list[object] = []
    for index, data in enumerate(images):
        try:
            decoded.append(decode_image(data, index))
        except ImageDecodeError as error:
            decoded.append(error)
    good = [item for item in decoded if not isinstance(item, ImageDecodeError)]
    predictions = iter(classify_crops(predictor, good))
    return [item if isinstance(item, ImageDecodeError) else next(predictions) for item in decoded]
