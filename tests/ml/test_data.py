from pathlib import Path

import pandas as pd
import pytest

from ml.data import (
    CLASSES,
    DatasetError,
    Sample,
    grouped_split,
    read_class_folders,
    read_kaggle_groups,
    stratified_split,
)
from ml.paths import kaggle_dir
from tests.ml.conftest import requires_shared


def test_class_folders_are_matched_case_insensitively_and_all_formats_read(class_folder_dataset):
    samples = read_class_folders(class_folder_dataset)
    assert sorted({s.label for s in samples}) == [0, 1, 2, 3]
    assert {s.path.suffix for s in samples} == {".png", ".jpg", ".jpeg"}


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_class_folders(tmp_path / "absent")


def test_directory_without_class_folders_is_a_clear_error(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(DatasetError, match="no class folder"):
        read_class_folders(tmp_path)


def test_class_folders_without_images_are_a_clear_error(tmp_path):
    (tmp_path / "Neutrophil").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        read_class_folders(tmp_path)


def test_grouped_split_never_puts_a_group_on_both_sides():
    table = pd.DataFrame(
        {
            "group": [f"G{i // 5}" for i in range(200)],
            "label": [CLASSES[(i // 5) % 4] for i in range(200)],
        }
    )
    train, validation = grouped_split(table, 0.25, seed=3)
    assert set(train["group"]).isdisjoint(validation["group"])
    assert len(train) + len(validation) == 200
    assert set(validation["label"]) == set(CLASSES)


@requires_shared("data", "blood-cells", "groups.csv")
def test_kaggle_train_validation_split_shares_no_original():
    table = read_kaggle_groups(kaggle_dir())
    train, validation = grouped_split(table[table["split"] == "TRAIN"], 0.2, seed=0)
    assert set(train["group"]).isdisjoint(validation["group"])
    assert set(train["source_image"]).isdisjoint(validation["source_image"])
    assert "TEST" not in set(train["split"]) | set(validation["split"])


def test_stratified_split_is_seeded_disjoint_and_complete():
    samples = [
        Sample(Path(f"{label}_{i}.jpg"), label, "pbc", f"{label}_{i}")
        for label in range(4)
        for i in range(20)
    ]
    first = stratified_split(samples, (0.7, 0.15, 0.15), seed=0)
    again = stratified_split(samples, (0.7, 0.15, 0.15), seed=0)
    assert first == again
    paths = [{s.path for s in part} for part in first]
    assert paths[0].isdisjoint(paths[1]) and paths[0].isdisjoint(paths[2]) and paths[1].isdisjoint(paths[2])
    assert sum(len(p) for p in paths) == 80
    assert [len(p) for p in first] == [56, 12, 12]
