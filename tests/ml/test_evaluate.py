import json

import pytest

from ml.evaluate import main
from ml.testing import CLASSES
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
