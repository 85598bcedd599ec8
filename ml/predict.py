"""Serving: load a model directory once and classify white-cell images.

Interface used by the Django inference pipeline::

    predictor = Predictor()                      # default model; or Predictor("path/to/model_dir")
    results = predictor.predict([pil_image, jpeg_bytes, ...])       # raises on a bad image
    outcomes = predictor.predict_each([pil_image, b"not an image"]) # CellPrediction | ImageDecodeError

`predict` is all-or-nothing: an undecodable input raises `ImageDecodeError` (its `index` says
which one) before any inference runs. `predict_each` never raises for a bad image: it returns the
`ImageDecodeError` in that image's slot and classifies the rest, so a caller can store one failure
row per bad image. Both are thread-safe; the model is never run by two threads at once.

Each `CellPrediction` also carries `domain_score` (distance of the image's features from the
training domain, `ml.domain`) and `in_domain` (score within the model's cell threshold). Both
are None when the model directory has no domain statistics: its domain is unknown, which
`ml.domain.decide_auto_accept` treats as out of domain. `review_threshold` is the one the cell is
held to: its nearest training source's when the model has per-source thresholds, else the card's.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ml.card import ModelDirectoryError, read_card, verify_file
from ml.cells import LocalisationConfig, crop_cell
from ml.domain import DomainStatistics, load_domain_statistics
from ml.paths import default_model_dir

ImageInput = Image.Image | bytes
BATCH_SIZE = 32


class ImageDecodeError(ValueError):
    """An input could not be decoded as an image; `index` is its position in the request."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"image {index} could not be decoded: {reason}")
        self.index = index
        self.reason = reason


@dataclass(frozen=True)
class CellPrediction:
    label: str
    probabilities: dict[str, float]
    confidence: float
    domain_score: float | None = None
    in_domain: bool | None = None
    review_threshold: float | None = None


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def decode_image(image: ImageInput, index: int) -> Image.Image:
    """Decode bytes or accept a PIL image, fully loaded and RGB, or raise ImageDecodeError."""
    try:
        if isinstance(image, bytes | bytearray | memoryview):
            image = Image.open(io.BytesIO(bytes(image)))
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected PIL image or bytes, got {type(image).__name__}")
        image.load()
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, TypeError, ValueError, SyntaxError) as error:
        raise ImageDecodeError(index, str(error) or type(error).__name__) from error


# A backend returns (logits, features); features are None for a file exported without them.
ModelOutputs = tuple[np.ndarray, np.ndarray | None]


def _output_indices(interpreter) -> tuple[int, int | None]:
    """Tensor indices of (logits, features): named outputs, or the single output of older exports."""
    has_signature = bool(interpreter.get_signature_list())
    named = interpreter.get_signature_runner().get_output_details() if has_signature else {}
    if "logits" in named:
        return named["logits"]["index"], named["features"]["index"]
    return interpreter.get_output_details()[0]["index"], None


class _TFLiteBackend:
    """TFLite interpreter (XNNPACK on CPU); resized only when the batch size changes."""

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        self._input = self._interpreter.get_input_details()[0]
        self._logits, self._features = _output_indices(self._interpreter)
        self._batch = 0

    def __call__(self, pixels: np.ndarray) -> ModelOutputs:
        if pixels.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], list(pixels.shape))
            self._interpreter.allocate_tensors()
            self._input = self._interpreter.get_input_details()[0]
            self._batch = pixels.shape[0]
        self._interpreter.set_tensor(self._input["index"], pixels.astype(self._input["dtype"]))
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._logits).astype(np.float32)
        if self._features is None:
            return logits, None
        return logits, self._interpreter.get_tensor(self._features).astype(np.float32)


class _KerasBackend:
    def __init__(self, path: Path) -> None:
        import keras

        from ml.model import with_features

        self._model = with_features(keras.saving.load_model(path, compile=False))

    def __call__(self, pixels: np.ndarray) -> ModelOutputs:
        outputs = self._model(pixels, training=False)
        return np.asarray(outputs["logits"], np.float32), np.asarray(outputs["features"], np.float32)


_BACKENDS = {"tflite": _TFLiteBackend, "keras": _KerasBackend}


class Predictor:
    """A loaded model directory: classes, card, calibrated `predict`."""

    def __init__(self, model_dir: str | Path | None = None, *, serving_file: str | None = None) -> None:
        """serving_file overrides the card's serving file (e.g. to compare exports); format by suffix."""
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.card: dict = read_card(self.model_dir)
        self.classes: list[str] = list(self.card["classes"])
        self.version: str = str(self.card["version"])
        self.review_threshold: float = float(self.card["review_threshold"])
        self.temperature: float = float(self.card.get("temperature", 1.0))
        self.input_size: int = int(self.card["input_size"])
        self.localisation = LocalisationConfig(**self.card["preprocessing"]["cell_localisation"])
        serving = self.card["serving"]
        if serving_file is not None:
            serving = {"file": serving_file, "format": Path(serving_file).suffix.lstrip(".")}
        if serving["format"] not in _BACKENDS:
            raise ModelDirectoryError(f"unknown serving format {serving['format']!r}")
        self.serving_file: str = serving["file"]
        path = verify_file(self.model_dir, self.card, serving["file"])
        self._run = _BACKENDS[serving["format"]](path)
        self._lock = threading.Lock()
        self.domain: DomainStatistics | None = load_domain_statistics(self.model_dir, self.card)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Exactly the training-time preprocessing: cell crop, resize, RGB 0..255 float32."""
        crop = crop_cell(image, self.localisation, self.input_size)
        return np.asarray(crop, dtype=np.float32)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Uncalibrated model outputs for preprocessed pixels, in batches of BATCH_SIZE."""
        return self.outputs(pixels)[0]

    def outputs(self, pixels: np.ndarray) -> ModelOutputs:
        """(logits, penultimate features or None), in batches of BATCH_SIZE."""
        logits, features = [], []
        for start in range(0, len(pixels), BATCH_SIZE):
            with self._lock:
                batch_logits, batch_features = self._run(pixels[start : start + BATCH_SIZE])
            logits.append(batch_logits)
            features.append(batch_features)
        if not logits:
            return np.zeros((0, len(self.classes))), None
        return np.concatenate(logits), None if features[0] is None else np.concatenate(features)

    def domain_scores(self, features: np.ndarray | None) -> np.ndarray | None:
        """Each image's domain score, or None when the model has no domain statistics."""
        if self.domain is None or features is None:
            return None
        return self.domain.score(features)

    def review_thresholds(self, features: np.ndarray | None, count: int) -> np.ndarray:
        """Each image's review threshold: its nearest source's, or the card's for every image."""
        if self.domain is None or features is None:
            return np.full(count, self.review_threshold)
        return self.domain.cell_review_thresholds(features, self.review_threshold)

    def predict(self, images: Sequence[ImageInput]) -> list[CellPrediction]:
        decoded = [decode_image(image, index) for index, image in enumerate(images)]
        return self._classify(decoded)

    def predict_each(self, images: Sequence[ImageInput]) -> list[CellPrediction | ImageDecodeError]:
        outcomes: list[CellPrediction | ImageDecodeError | Image.Image] = []
        for index, image in enumerate(images):
            try:
                outcomes.append(decode_image(image, index))
            except ImageDecodeError as error:
                outcomes.append(error)
        good = [item for item in outcomes if isinstance(item, Image.Image)]
        predictions = iter(self._classify(good))
        return [item if isinstance(item, ImageDecodeError) else next(predictions) for item in outcomes]

    def _classify(self, images: list[Image.Image]) -> list[CellPrediction]:
        if not images:
            return []
        pixels = np.stack([self.preprocess(image) for image in images])
        logits, features = self.outputs(pixels)
        probabilities = softmax(logits, self.temperature)
        scores = self.domain_scores(features)
        thresholds = self.review_thresholds(features, len(probabilities))
        if scores is None:
            return [
                self._to_prediction(row, None, float(t))
                for row, t in zip(probabilities, thresholds, strict=True)
            ]
        return [
            self._to_prediction(row, float(s), float(t))
            for row, s, t in zip(probabilities, scores, thresholds, strict=True)
        ]

    def _to_prediction(
        self, row: np.ndarray, domain_score: float | None, review_threshold: float
    ) -> CellPrediction:
        best = int(np.argmax(row))
        return CellPrediction(
            label=self.classes[best],
            probabilities={name: float(p) for name, p in zip(self.classes, row, strict=True)},
            confidence=float(row[best]),
            domain_score=domain_score,
            in_domain=None if domain_score is None else self.domain.cell_in_domain(domain_score),
            review_threshold=review_threshold,
        )
