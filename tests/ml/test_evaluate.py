import json

import numpy as np
import pytest

from ml.domain import REVIEW_EVERYTHING, DomainThresholds
from ml.evaluate import main, pseudo_slides
from ml.testing import CLASSES, make_tiny_model_dir
from tests.ml.conftest import synthetic_cell


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_it_writes_every_metric_and_lists_the_corrupt_image(
    capsys, tmp_path, tiny_model_dir, class_folder_dataset
):
    report = tmp_path / "out" / "eval.json"
    code, out, _ = run_cli(
        capsys, "--data", class_folder_dataset, "--model", tiny_model_dir, "--json", report
    )
    assert code == 0
    result = json.loads(report.read_text())
    expected = {
        "n",
        "accuracy",
        "macro_f1",
        "per_class",
        "labels",
        "confusion_matrix",
        "ece",
        "coverage_accuracy",
    }
    assert expected <= set(result)
    assert result["n"] == 8
    assert result["labels"] == CLASSES
    assert sum(map(sum, result["confusion_matrix"])) == 8
    assert set(result["per_class"][CLASSES[0]]) == {"precision", "recall", "f1", "support"}
    assert [item["path"].endswith("broken.jpeg") for item in result["skipped"]] == [True]
    assert "broken.jpeg" in out
    assert report.with_suffix(".png").is_file()


def test_kaggle_layout_adds_test_clean_and_cell_level(capsys, tmp_path, tiny_model_dir):
    root = tmp_path / "blood-cells"
    rows = ["path,split,label,source_image,group,match_confidence,shares_group_with_train"]
    for index in range(6):
        label = CLASSES[index % 2]
        relative = f"images/TEST/{label}/_{index}.jpeg"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        synthetic_cell((50, 40 + index), 14).save(root / relative)
        rows.append(f"{relative},TEST,{label},BloodImage_{index % 3},G{index % 3},high,{index == 0}")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    report = tmp_path / "eval.json"
    code, out, _ = run_cli(
        capsys, "--data", root / "images" / "TEST", "--model", tiny_model_dir, "--json", report
    )
    assert code == 0
    result = json.loads(report.read_text())
    assert result["test_clean"]["n"] == 5
    assert result["cell_level"]["n_cells"] == 3
    assert "TEST-clean" in out


@pytest.mark.parametrize("layout", ["missing", "empty", "no_class_folder"])
def test_bad_data_directories_exit_non_zero_with_a_message(capsys, tmp_path, tiny_model_dir, layout):
    data = tmp_path / "data"
    if layout != "missing":
        data.mkdir()
    if layout == "no_class_folder":
        (data / "platelets").mkdir()
        synthetic_cell((50, 40), 14).save(data / "platelets" / "x.png")
    code, _, err = run_cli(capsys, "--data", data, "--model", tiny_model_dir)
    assert code == 2
    assert err.startswith("error:")


def test_a_missing_model_directory_exits_non_zero(capsys, tmp_path, class_folder_dataset):
    code, _, err = run_cli(capsys, "--data", class_folder_dataset, "--model", tmp_path / "nope")
    assert code == 2
    assert "model_card.json" in err


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(75, [25, 25, 25]), (59, [25, 34]), (60, [25, 25, 10]), (30, [30]), (7, [7])],
)
def test_pseudo_slides_cut_a_fixed_shuffle_and_a_small_last_group_joins_the_previous(count, sizes):
    slides = pseudo_slides(count, 25)
    assert [len(slide) for slide in slides] == sizes
    assert sorted(np.concatenate(slides).tolist()) == list(range(count))
    assert all((a == b).all() for a, b in zip(slides, pseudo_slides(count, 25), strict=True))
    if count > 25:
        assert not (np.concatenate(slides) == np.arange(count)).all()  # shuffled, classes mixed


def class_folders(root, per_class):
    for index, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for number in range(per_class):
            synthetic_cell((35 + 3 * number, 40 + index), 10 + number % 6).save(root / name / f"{number}.png")
    return root


def test_auto_accept_is_reported_with_exactly_its_fields(capsys, tmp_path):
    data = class_folders(tmp_path / "cells", 6)  # 24 images: slides of 10, 14
    model_dir = make_tiny_model_dir(tmp_path / "m", review_threshold=0.0, domain=DomainThresholds(1e9, 1e9))
    report = tmp_path / "eval.json"
    code, out, _ = run_cli(capsys, "--data", data, "--model", model_dir, "--json", report, "--slide-size", 10)
    assert code == 0
    result = json.loads(report.read_text())
    wrong = sum(result["confusion_matrix"][i][j] for i in range(4) for j in range(4) if i != j)
    assert result["auto_accept"] == {
        "slide_size": 10,
        "slides": 2,
        "slides_out_of_domain": 0,
        "cells": 24,
        "accepted": 24,
        "accepted_wrong": wrong,
    }
    assert result["cells_flagged_rate"] == 0.0
    assert "auto-accept: 2 slides of 10" in out


def test_an_out_of_domain_set_has_every_slide_flagged_and_nothing_accepted(capsys, tmp_path):
    data = class_folders(tmp_path / "cells", 13)  # 52 images: 25, 27
    model_dir = make_tiny_model_dir(tmp_path / "m", review_threshold=0.0, domain=DomainThresholds(0.0, 0.0))
    report = tmp_path / "eval.json"
    assert run_cli(capsys, "--data", data, "--model", model_dir, "--json", report)[0] == 0
    result = json.loads(report.read_text())
    gate = result["auto_accept"]
    assert (gate["slide_size"], gate["slides"], gate["slides_out_of_domain"]) == (25, 2, 2)
    assert (gate["accepted"], gate["accepted_wrong"]) == (0, 0)
    assert result["cells_flagged_rate"] == 1.0


def test_a_model_without_domain_statistics_accepts_nothing(capsys, tmp_path, tiny_model_dir):
    data = class_folders(tmp_path / "cells", 3)
    report = tmp_path / "eval.json"
    code, out, _ = run_cli(capsys, "--data", data, "--model", tiny_model_dir, "--json", report)
    result = json.loads(report.read_text())
    assert code == 0
    assert result["auto_accept"]["slides_out_of_domain"] == result["auto_accept"]["slides"] == 1
    assert result["auto_accept"]["accepted"] == 0
    assert result["cells_flagged_rate"] is None
    assert "domain unknown" in out


def test_a_per_source_review_threshold_overrides_the_cards_in_auto_accept(capsys, tmp_path):
    data = class_folders(tmp_path / "cells", 6)
    in_domain = DomainThresholds(1e9, 1e9)
    model_dir = make_tiny_model_dir(
        tmp_path / "m", review_threshold=0.0, domain=in_domain, source_review_threshold=REVIEW_EVERYTHING
    )
    report = tmp_path / "eval.json"
    assert run_cli(capsys, "--data", data, "--model", model_dir, "--json", report, "--slide-size", 10)[0] == 0
    gate = json.loads(report.read_text())["auto_accept"]
    assert (gate["slides_out_of_domain"], gate["accepted"], gate["accepted_wrong"]) == (0, 0, 0)
