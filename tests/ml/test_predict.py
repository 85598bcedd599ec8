import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ml.card import ModelDirectoryError
from ml.domain import DomainThresholds
from ml.predict import CellPrediction, ImageDecodeError, Predictor
from ml.testing import CLASSES, make_tiny_model_dir
from tests.ml.conftest import synthetic_cell


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_predictor_exposes_the_card(tiny_model_dir):
    predictor = Predictor(tiny_model_dir)
    assert predictor.classes == CLASSES
    assert predictor.version == "tiny-test"
    assert predictor.review_threshold == 0.9
    assert predictor.card["serving"]["format"] == "tflite"


def test_predictions_are_calibrated_distributions_over_the_classes(tiny_model_dir):
    images = [synthetic_cell((40 + i, 45), 14) for i in range(40)]  # more than one internal batch
    predictions = Predictor(tiny_model_dir).predict(images)
    assert len(predictions) == 40
    for prediction in predictions:
        assert isinstance(prediction, CellPrediction)
        assert list(prediction.probabilities) == CLASSES
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
        assert prediction.confidence == max(prediction.probabilities.values())
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)


def test_bytes_and_pil_inputs_give_the_same_prediction(tiny_model_dir):
    image = synthetic_cell((50, 40), 15)
    predictor = Predictor(tiny_model_dir)
    from_pil, from_bytes = predictor.predict([image, png_bytes(image)])
    assert from_pil == from_bytes


def test_predict_raises_with_the_index_of_an_undecodable_image(tiny_model_dir):
    with pytest.raises(ImageDecodeError) as raised:
        Predictor(tiny_model_dir).predict([synthetic_cell((50, 40), 15), b"\x00garbage"])
    assert raised.value.index == 1


def test_predict_each_reports_bad_images_in_place_and_classifies_the_rest(tiny_model_dir):
    good = synthetic_cell((50, 40), 15)
    outcomes = Predictor(tiny_model_dir).predict_each([good, b"garbage", png_bytes(good)[:40], good])
    assert isinstance(outcomes[0], CellPrediction) and isinstance(outcomes[3], CellPrediction)
    assert [o.index for o in outcomes if isinstance(o, ImageDecodeError)] == [1, 2]


def test_concurrent_calls_return_the_same_results_as_sequential_ones(tiny_model_dir):
    predictor = Predictor(tiny_model_dir)
    batches = [[synthetic_cell((30 + 3 * i + j, 45), 12) for j in range(5)] for i in range(8)]
    expected = [predictor.predict(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(predictor.predict, batches)) == expected


def test_keras_serving_matches_tflite_serving(tmp_path):
    image = synthetic_cell((50, 40), 15)
    via_keras = Predictor(make_tiny_model_dir(tmp_path / "k", serving="keras")).predict([image])[0]
    via_tflite = Predictor(make_tiny_model_dir(tmp_path / "t", serving="tflite")).predict([image])[0]
    assert via_keras.label == via_tflite.label
    assert via_keras.confidence == pytest.approx(via_tflite.confidence, abs=1e-4)


def test_a_tampered_model_file_is_refused(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "m")
    with (model_dir / "model.tflite").open("ab") as handle:
        handle.write(b"extra")
    with pytest.raises(ModelDirectoryError, match="sha256"):
        Predictor(model_dir)


def test_a_directory_without_card_is_refused(tmp_path):
    with pytest.raises(ModelDirectoryError, match="model_card.json"):
        Predictor(tmp_path)


def test_temperature_from_the_card_is_applied(tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "m")
    image = synthetic_cell((50, 40), 15)
    sharp = Predictor(model_dir).predict([image])[0]
    card = json.loads((model_dir / "model_card.json").read_text())
    (model_dir / "model_card.json").write_text(json.dumps({**card, "temperature": 100.0}))
    flat = Predictor(model_dir).predict([image])[0]
    assert flat.confidence < sharp.confidence
    assert flat.confidence == pytest.approx(0.25, abs=0.01)


def test_a_model_without_domain_statistics_returns_no_domain_score(tiny_model_dir):
    prediction = Predictor(tiny_model_dir).predict([synthetic_cell((50, 40), 15)])[0]
    assert prediction.domain_score is None and prediction.in_domain is None


@pytest.mark.parametrize("serving", ["tflite", "keras"])
def test_each_prediction_carries_its_domain_score_and_cell_flag(tmp_path, serving):
    images = [synthetic_cell((40 + 2 * i, 45), 10 + i) for i in range(6)]
    probe = make_tiny_model_dir(tmp_path / "probe", serving=serving, domain=DomainThresholds(1e9, 1e9))
    scores = [p.domain_score for p in Predictor(probe).predict(images)]
    assert all(score >= 0 for score in scores) and len(set(scores)) > 1
    middle = float(np.median(scores))
    model_dir = make_tiny_model_dir(tmp_path / "m", serving=serving, domain=DomainThresholds(middle, 1e9))
    predictions = Predictor(model_dir).predict(images)
    assert [p.domain_score for p in predictions] == pytest.approx(scores, rel=1e-5)
    assert [p.in_domain for p in predictions] == [score <= middle for score in scores]


def test_the_domain_score_does_not_change_the_classification(tmp_path, tiny_model_dir):
    image = synthetic_cell((50, 40), 15)
    plain = Predictor(tiny_model_dir).predict([image])[0]
    gated = Predictor(make_tiny_model_dir(tmp_path / "m", domain=DomainThresholds(1.0, 1.0))).predict(
        [image]
    )[0]
    assert (gated.label, gated.probabilities) == (plain.label, plain.probabilities)


def test_each_prediction_carries_the_review_threshold_it_is_held_to(tmp_path, tiny_model_dir):
    image = synthetic_cell((50, 40), 15)
    assert Predictor(tiny_model_dir).predict([image])[0].review_threshold == 0.9  # the card's
    common = make_tiny_model_dir(tmp_path / "common", domain=DomainThresholds(1e9, 1e9))
    assert Predictor(common).predict([image])[0].review_threshold == 0.9
    per_source = make_tiny_model_dir(
        tmp_path / "source", domain=DomainThresholds(1e9, 1e9), source_review_threshold=0.75
    )
    assert Predictor(per_source).predict([image])[0].review_threshold == 0.75
