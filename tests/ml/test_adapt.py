"""ml.adapt on tiny images and the tiny model: card, lineage, refusals, corrupt files, output served."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ml.adapt import AdaptationCancelled, AdaptationRefused, AdaptConfig, adapt, inspect_lab, main
from ml.card import read_card, sha256_of
from ml.lab import LabDataError, fingerprint_lab, holdout_split, read_lab
from ml.predict import Predictor
from ml.testing import CLASSES

from .conftest import synthetic_cell

FAST = AdaptConfig(
    epochs=2,
    steps_per_epoch=2,
    batch_size=8,
    lab_views=2,
    source_cells_per_class=0,
    export="keras",
    min_lab_domain_cells=1,
)


def make_lab(root: Path, per_class: int = 5, slides: bool = False) -> Path:
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            prefix = f"S{index % 3}__" if slides else ""
            synthetic_cell((30 + 8 * label + index, 40), 10 + label).save(folder / f"{prefix}cell{index}.png")
    return root


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, tiny_model_dir) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("adapt")
    lab = make_lab(root / "lab")
    (lab / CLASSES[0] / "broken.png").write_bytes(b"not a png")
    events = []
    card = adapt(lab, root / "out", tiny_model_dir, "tiny-lab-1", progress=events.append, config=FAST)
    return lab, root / "out", {"card": card, "events": events}


def test_the_card_records_lineage_fingerprint_and_counts(adapted, tiny_model_dir):
    lab, out, result = adapted
    card = read_card(out)
    assert card["version"] == "tiny-lab-1"
    assert card["parent_version"] == read_card(tiny_model_dir)["version"]
    assert card["lineage"] == ["tiny-test"]
    adaptation = card["adaptation"]
    assert adaptation["class_counts"] == dict.fromkeys(CLASSES, 5)
    assert sum(adaptation["train_counts"].values()) + sum(adaptation["holdout_counts"].values()) == 20
    samples = read_lab(lab, CLASSES).samples
    assert adaptation["lab_fingerprint_sha256"] == fingerprint_lab(samples, CLASSES)
    assert set(card["metrics"]["validation"]["lab_holdout"]) == {"adapted", "parent"}
    assert card["data"]["validation_images"]["val_lab"] == 4


def test_every_file_is_hashed_and_the_output_is_served(adapted):
    _, out, _ = adapted
    card = read_card(out)
    assert card["files"] == {p.name: sha256_of(p) for p in out.iterdir() if p.name != "model_card.json"}
    predictor = Predictor(out)
    [prediction] = predictor.predict([synthetic_cell((40, 40), 12)])
    assert prediction.label in CLASSES
    assert prediction.in_domain is not None
    assert predictor.domain.sources == ["lab"]


def test_corrupt_images_are_listed_and_skipped(adapted):
    _, out, result = adapted
    skipped = read_card(out)["adaptation"]["skipped"]
    assert [Path(item["path"]).name for item in skipped] == ["broken.png"]
    assert any("broken.png" in event.message for event in result["events"])


def test_progress_is_reported_per_step_and_epoch(adapted):
    events = adapted[2]["events"]
    assert [e.step for e in events if e.stage == "train" and e.message.startswith("epoch")] == [1, 2]
    assert [e.step for e in events if e.message.startswith("step")] == [1, 2, 3, 4]
    assert events[-1].stage == "done"


def test_it_refuses_a_class_below_the_minimum(tmp_path, tiny_model_dir):
    lab = make_lab(tmp_path / "lab")
    for path in sorted((lab / CLASSES[2]).iterdir())[:2]:
        path.unlink()
    with pytest.raises(LabDataError, match="fewer than 5 .*MONOCYTE 3"):
        adapt(lab, tmp_path / "out", tiny_model_dir, config=FAST)
    assert not (tmp_path / "out").exists()


def test_it_refuses_a_missing_class(tmp_path, tiny_model_dir, capsys):
    lab = make_lab(tmp_path / "lab")
    for path in (lab / CLASSES[1]).iterdir():
        path.unlink()
    (lab / CLASSES[1]).rmdir()
    code = main(["--data", str(lab), "--out", str(tmp_path / "out"), "--base", str(tiny_model_dir)])
    assert code == 2
    assert "no verified cells for LYMPHOCYTE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_it_refuses_an_existing_output(tmp_path, tiny_model_dir):
    (tmp_path / "out").mkdir()
    with pytest.raises(AdaptationRefused, match="already exists"):
        adapt(make_lab(tmp_path / "lab"), tmp_path / "out", tiny_model_dir, config=FAST)


def test_cancelling_leaves_no_directory(tmp_path, tiny_model_dir):
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(AdaptationCancelled):
        adapt(make_lab(tmp_path / "lab"), tmp_path / "out", tiny_model_dir, cancelled=cancelled, config=FAST)
    assert list(tmp_path.iterdir()) == [tmp_path / "lab"]


def test_a_lab_with_few_held_out_cells_stays_out_of_domain(tmp_path, tiny_model_dir):
    config = dataclasses.replace(FAST, min_lab_domain_cells=5)
    adapt(make_lab(tmp_path / "lab"), tmp_path / "out", tiny_model_dir, config=config)
    predictor = Predictor(tmp_path / "out")
    assert predictor.domain is None
    assert predictor.predict([synthetic_cell((40, 40), 12)])[0].in_domain is None


def test_holdout_keeps_whole_slides_on_one_side(tmp_path):
    samples = read_lab(make_lab(tmp_path / "lab", per_class=6, slides=True), CLASSES).samples
    train, held = holdout_split(samples, 0.2, seed=0)
    assert {s.group for s in train}.isdisjoint({s.group for s in held})
    assert held and all(s.group.startswith("slide:") for s in samples)
    assert {s.label for s in train} == set(range(4))


def test_holdout_without_slides_is_stratified(tmp_path):
    samples = read_lab(make_lab(tmp_path / "lab", per_class=10), CLASSES).samples
    train, held = holdout_split(samples, 0.2, seed=0)
    assert sorted(s.label for s in held) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(train) == 32


def test_the_cli_writes_a_model_and_prints_its_figures(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setattr("ml.adapt.AdaptConfig", lambda: FAST)
    out = tmp_path / "out"
    lab = make_lab(tmp_path / "lab")
    assert main(["--data", str(lab), "--out", str(out), "--base", str(tiny_model_dir)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"].startswith("tiny-test-lab-")
    assert "lab_holdout" in summary


def test_inspect_lab_counts_without_training(tmp_path):
    lab = make_lab(tmp_path / "lab", slides=True)
    (lab / CLASSES[3] / "S0__bad.jpg").write_bytes(b"")
    summary = inspect_lab(lab, CLASSES)
    assert summary["class_counts"] == dict.fromkeys(CLASSES, 5)
    assert summary["slides_known"] is True
    assert [Path(item["path"]).name for item in summary["skipped"]] == ["S0__bad.jpg"]
