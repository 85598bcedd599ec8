"""The whole-field locator on small drawn fields: stained white cells among pale pink red cells."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.cells import LocalisationConfig, crop_cell
from ml.locate import (
    Box,
    classify_cells,
    classify_crops,
    crop_for_classifier,
    iou,
    label_regions,
    locate_cells,
    main,
)
from ml.locate_eval import Annotation, evaluate_fields, match_boxes, read_annotations
from ml.predict import Predictor
from tests.ml.conftest import SHARED, requires_shared

BACKGROUND = (205, 200, 195)
RED_CELL = (215, 160, 165)
CYTOPLASM = (200, 180, 205)
NUCLEUS = (110, 60, 170)
RED_CELL_CENTRES = [(60, 60), (200, 70), (580, 80), (90, 400), (560, 420), (330, 420), (480, 250)]


def field_with_cells(cells: list[tuple[int, int]], size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A drawn field: red discs (radius 40) and a white cell (cytoplasm 70, nucleus 45) per centre."""
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    for x, y in RED_CELL_CENTRES:
        draw.ellipse((x - 40, y - 40, x + 40, y + 40), fill=RED_CELL)
    for x, y in cells:
        draw.ellipse((x - 70, y - 70, x + 70, y + 70), fill=CYTOPLASM)
        draw.ellipse((x - 45, y - 45, x + 45, y + 45), fill=NUCLEUS)
    return image


def cell_box(x: int, y: int) -> tuple[int, int, int, int]:
    return x - 70, y - 70, x + 70, y + 70


def test_one_stained_cell_among_red_discs_gives_one_box_on_it():
    boxes = locate_cells(field_with_cells([(300, 220)]))
    assert len(boxes) == 1
    assert iou(boxes[0], cell_box(300, 220)) > 0.5
    assert 0.5 <= boxes[0].score <= 1.0


def test_a_field_of_red_discs_only_gives_no_box():
    assert locate_cells(field_with_cells([])) == []


def test_two_cells_give_two_boxes_one_on_each():
    centres = [(180, 220), (460, 240)]
    boxes = locate_cells(field_with_cells(centres))
    assert len(boxes) == 2
    for centre in centres:
        assert max(iou(box, cell_box(*centre)) for box in boxes) > 0.5


def test_a_single_cell_crop_given_as_a_field_gives_one_box():
    crop = field_with_cells([(160, 120)], size=(320, 240))
    boxes = locate_cells(crop)
    assert len(boxes) == 1
    assert iou(boxes[0], cell_box(160, 120)) > 0.5


def test_a_cell_cut_by_the_border_is_boxed_inside_the_field():
    boxes = locate_cells(field_with_cells([(20, 240)]))
    assert len(boxes) == 1
    assert boxes[0].x_min == 0 and boxes[0].x_max <= 640


def test_small_violet_specks_like_platelets_are_not_white_cells():
    image = field_with_cells([])
    draw = ImageDraw.Draw(image)
    for x, y in [(300, 200), (350, 300), (100, 250)]:
        draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=NUCLEUS)
    assert locate_cells(image) == []


def test_regions_are_labelled_apart():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 1:3] = True
    mask[4:6, 5:8] = True
    labels = label_regions(mask)
    assert len(np.unique(labels[mask])) == 2
    assert (labels[~mask] == 0).all()


def test_iou_of_identical_and_disjoint_boxes():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_a_one_cell_field_is_cropped_exactly_as_in_training():
    field = field_with_cells([(300, 220)])
    config = LocalisationConfig()
    training_crop = np.asarray(crop_cell(field, config, 64))
    box = locate_cells(field)[0]
    assert np.array_equal(np.asarray(crop_for_classifier(field, box, config, 64)), training_crop)


def test_each_of_two_cells_gets_its_own_crop_centred_on_it():
    field = field_with_cells([(180, 220), (460, 240)])
    for box in locate_cells(field):
        crop = np.asarray(crop_for_classifier(field, box, LocalisationConfig(), 64)).astype(int)
        ys, xs = np.nonzero(crop[..., 2] - crop[..., 1] > 80)
        assert abs(xs.mean() - 32) < 4 and abs(ys.mean() - 32) < 4


def test_located_cells_are_classified(tiny_model_dir):
    predictor = Predictor(tiny_model_dir)
    field = field_with_cells([(180, 220), (460, 240)])
    cells = classify_cells(predictor, field, locate_cells(field))
    assert len(cells) == 2
    assert all(cell.prediction.label in predictor.classes for cell in cells)
    assert classify_cells(predictor, field, []) == []


def test_stored_crops_classify_as_their_field_does_even_at_another_size(tiny_model_dir):
    predictor = Predictor(tiny_model_dir)
    field = field_with_cells([(180, 220), (460, 240)])
    boxes = locate_cells(field)
    crops = [crop_for_classifier(field, box, predictor.localisation, predictor.input_size) for box in boxes]
    from_field = [cell.prediction for cell in classify_cells(predictor, field, boxes)]
    assert classify_crops(predictor, crops) == from_field
    larger = [crop.resize((predictor.input_size * 2,) * 2) for crop in crops]
    assert [p.label for p in classify_crops(predictor, larger)] == [p.label for p in from_field]
    assert classify_crops(predictor, []) == []


def test_matching_pairs_each_annotation_once():
    annotations = [Annotation(box=(0, 0, 100, 100))]
    located = [Box(0, 0, 100, 100, 1.0), Box(2, 2, 100, 100, 0.9)]
    pairs = match_boxes(located, annotations)
    assert [annotation is not None for _, annotation in pairs] == [True, False]


@pytest.fixture
def synthetic_set(tmp_path) -> dict[str, Path]:
    """Three fields (one cell, two cells, none), a BCCD-style box CSV, a subtype CSV and a split."""
    fields = tmp_path / "fields"
    fields.mkdir()
    layout = {
        "BloodImage_00001": [(300, 220)],
        "BloodImage_00002": [(180, 220), (460, 240)],
        "BloodImage_00003": [],
    }
    for name, centres in layout.items():
        field_with_cells(centres).save(fields / f"{name}.jpg", quality=95)
    boxes = tmp_path / "bccd_boxes.csv"
    subtypes = tmp_path / "bccd_wbc_boxes_with_kaggle_category.csv"
    with boxes.open("w", newline="") as box_file, subtypes.open("w", newline="") as subtype_file:
        box_rows = csv.writer(box_file)
        box_rows.writerow(["image", "label", "xmin", "ymin", "xmax", "ymax", "difficult", "truncated"])
        box_rows.writerow(["BloodImage_00001.jpg", "RBC", 20, 20, 100, 100, 0, 0])
        subtype_rows = csv.writer(subtype_file)
        subtype_rows.writerow(
            ["image", "wbc_box_index", "xmin", "ymin", "xmax", "ymax", "image_category"]
            + ["subtype_label", "status"]
        )
        for name, centres in layout.items():
            for index, centre in enumerate(centres):
                box_rows.writerow([f"{name}.jpg", "WBC", *cell_box(*centre), 0, 0])
                status = "unambiguous" if len(centres) == 1 else "ambiguous_multi"
                label = "NEUTROPHIL" if status == "unambiguous" else ""
                subtype_rows.writerow([f"{name}.jpg", index, *cell_box(*centre), "NEUTROPHIL", label, status])
    split = tmp_path / "test.txt"
    split.write_text("\n".join(layout) + "\n")
    return {"fields": fields, "boxes": boxes, "subtypes": subtypes, "split": split}


def test_evaluation_counts_located_and_classified_cells(synthetic_set, tiny_model_dir):
    predictor = Predictor(tiny_model_dir)
    result = evaluate_fields(
        synthetic_set["fields"], synthetic_set["boxes"], synthetic_set["split"], predictor=predictor
    )
    assert result["fields"] == 3
    assert result["iou_threshold"] == 0.5
    assert (result["precision"], result["recall"]) == (1.0, 1.0)
    assert (result["true_positives"], result["false_positives"], result["false_negatives"]) == (3, 0, 0)
    assert result["classified"] == 1
    field = Image.open(synthetic_set["fields"] / "BloodImage_00001.jpg")
    expected = classify_cells(predictor, field, locate_cells(field))[0].prediction.label == "NEUTROPHIL"
    assert result["classified_correct"] == int(expected)


def test_subtypes_are_read_from_the_csv_beside_the_boxes(synthetic_set):
    annotations = read_annotations(synthetic_set["boxes"])
    assert [a.subtype for a in annotations["BloodImage_00001"]] == ["NEUTROPHIL"]
    assert [a.subtype for a in annotations["BloodImage_00002"]] == ["", ""]
    assert "BloodImage_00003" not in annotations


def test_cli_writes_the_evaluation_json(synthetic_set, tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "out" / "locate.json"
    arguments = ["--fields", synthetic_set["fields"], "--boxes", synthetic_set["boxes"], "--split"]
    arguments += [synthetic_set["split"], "--json", output, "--model", tiny_model_dir]
    assert main([str(argument) for argument in arguments]) == 0
    written = json.loads(output.read_text())
    for key in ("fields", "iou_threshold", "precision", "recall", "classified", "classified_correct"):
        assert key in written
    assert json.loads(capsys.readouterr().out)["fields"] == 3


def test_cli_prints_boxes_and_classes_of_images(synthetic_set, tiny_model_dir, capsys):
    image = synthetic_set["fields"] / "BloodImage_00002.jpg"
    assert main([str(image), "--model", str(tiny_model_dir)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "BloodImage_00002.jpg: 2 white cells"
    assert len(printed) == 3 and "score" in printed[1]


def test_cli_benchmark_prints_seconds_per_field(synthetic_set, tiny_model_dir, capsys):
    arguments = ["--bench", str(synthetic_set["fields"]), "--repeats", "1", "--model", str(tiny_model_dir)]
    assert main(arguments) == 0
    assert json.loads(capsys.readouterr().out)["seconds_per_field_median"] > 0


@requires_shared("data", "blood-cells", "Original_Images", "BloodImage_00000.jpg")
def test_a_real_train_field_is_located_and_classified_by_the_default_model():
    field = Image.open(SHARED / "data" / "blood-cells" / "Original_Images" / "BloodImage_00000.jpg")
    cells = classify_cells(Predictor(), field, locate_cells(field))
    assert len(cells) == 1
    assert iou(cells[0].box, (260, 177, 491, 376)) > 0.5
    assert cells[0].prediction.label == "NEUTROPHIL"
