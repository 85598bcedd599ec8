"""End-to-end: the committed default model classifies real shared cells through the Predictor."""

import pytest

from ml.data import pbc_splits
from ml.domain import CellEvidence, Verdict, decide_auto_accept
from ml.paths import default_model_dir
from ml.predict import Predictor
from tests.ml.conftest import requires_shared

pytestmark = [pytest.mark.slow, requires_shared("data", "pbc")]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(default_model_dir())


def test_card_matches_the_serving_contract(predictor):
    assert predictor.classes == ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]
    assert 0 < predictor.review_threshold <= 1
    assert predictor.temperature > 0
    assert predictor.card["preprocessing"]["cell_localisation"]["method"] == "stain_blob_v1"


def test_it_classifies_held_out_pbc_cells(predictor):
    test_cells = pbc_splits()[2]
    chosen = [
        [s for s in test_cells if s.label == label][index] for label in range(4) for index in (0, 40, 80)
    ]
    predictions = predictor.predict([sample.path.read_bytes() for sample in chosen])
    correct = sum(p.label == predictor.classes[s.label] for p, s in zip(predictions, chosen, strict=True))
    assert correct >= len(chosen) - 1


def test_the_default_model_has_domain_statistics_and_held_out_pbc_cells_are_in_its_domain(predictor):
    assert predictor.domain is not None
    assert predictor.card["parent_version"] == "wbc-mnv2-v1"
    test_cells = pbc_splits()[2]
    by_class = [[s for s in test_cells if s.label == label] for label in range(4)]
    chosen = [cells[index] for cells in by_class for index in (1, 41, 81)]
    predictions = predictor.predict([sample.path.read_bytes() for sample in chosen])
    decision = decide_auto_accept(
        [CellEvidence(p.confidence, p.domain_score) for p in predictions],
        review_threshold=predictor.review_threshold,
        thresholds=predictor.domain.thresholds,
    )
    assert decision.verdict == Verdict.IN_DOMAIN and not decision.few_cells
    assert sum(p.in_domain for p in predictions) >= len(chosen) - 1
