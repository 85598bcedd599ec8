"""The offline ImageNet import matches the TFLite model it was converted from."""

import numpy as np
import pytest
from PIL import Image

from ml.paths import kaggle_dir, pbc_dir, pretrained_dir
from ml.pretrained import TFLITE_NAME, imagenet_mobilenet_v2
from tests.ml.conftest import requires_shared

pytestmark = [pytest.mark.slow, requires_shared("pretrained", TFLITE_NAME)]


@pytest.fixture(scope="module")
def keras_model():
    model, _ = imagenet_mobilenet_v2(224, include_top=True)
    return model


@pytest.fixture(scope="module")
def interpreter():
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(pretrained_dir() / TFLITE_NAME))
    interpreter.allocate_tensors()
    return interpreter


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), np.uint8)


def keras_top1(model, batch: np.ndarray) -> np.ndarray:
    # The TFLite input quantisation (scale 1/128, zero point 128) defines what it sees; feed the
    # same real values so only the network differs.
    scaled = (batch.astype(np.float32) - 128.0) / 128.0
    return model.predict(scaled, batch_size=32, verbose=0).argmax(axis=1) + 1  # +1: TFLite background row


def tflite_scores(interpreter, batch: np.ndarray) -> np.ndarray:
    rows = []
    for image in batch:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].astype(int))
    return np.array(rows)


def test_sanity_images_get_their_imagenet_labels(keras_model):
    labels = (pretrained_dir() / "imagenet_labels.txt").read_text().splitlines()
    batch = np.stack([pixels(pretrained_dir() / "cat.bmp"), pixels(pretrained_dir() / "bird.bmp")])
    assert [labels[i] for i in keras_top1(keras_model, batch)] == ["Egyptian cat", "chickadee"]


@requires_shared("data", "pbc")
@requires_shared("data", "blood-cells", "images", "TEST")
def test_top1_agrees_with_the_tflite_interpreter_on_cell_images(keras_model, interpreter):
    kaggle = sorted((kaggle_dir() / "images" / "TEST").glob("*/*.jpeg"))[::40][:64]
    pbc = sorted(pbc_dir().glob("*/*.jpg"))[::60][:64]
    batch = np.stack([pixels(p) for p in kaggle + pbc])
    assert len(batch) >= 50
    keras_top = keras_top1(keras_model, batch)
    scores = tflite_scores(interpreter, batch)
    # Cells are far from ImageNet, so the uint8 softmax often ties its top classes at the same
    # quantised value; Keras agrees when its top-1 is one of TFLite's (possibly tied) top-1s.
    agreement = np.mean([row[top] == row.max() for row, top in zip(scores, keras_top, strict=True)])
    assert agreement >= 0.9
