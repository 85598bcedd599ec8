"""The verifier study on drawn fields: white cells (boxed) beside small violet specks (not boxed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.locate import LocatorConfig
from ml.locate_study import collect_candidates, fit_logistic, kept_counts, main
from ml.predict import Predictor

BACKGROUND = (205, 200, 195)
CYTOPLASM = (200, 180, 205)
NUCLEUS = (110, 60, 170)
CELL_CENTRE = (220, 240)
SPECK_CENTRE = (500, 120)


def drawn_field(shift: int) -> Image.Image:
    """One white cell (nucleus radius 45) and one violet speck (radius 20, below the area rule)."""
    image = Image.new("RGB", (640, 480), BACKGROUND)
    draw = ImageDraw.Draw(image)
    x, y = CELL_CENTRE[0] + shift, CELL_CENTRE[1]
    draw.ellipse((x - 70, y - 70, x + 70, y + 70), fill=CYTOPLASM)
    draw.ellipse((x - 45, y - 45, x + 45, y + 45), fill=NUCLEUS)
    x, y = SPECK_CENTRE[0], SPECK_CENTRE[1] + shift
    draw.ellipse((x - 20, y - 20, x + 20, y + 20), fill=NUCLEUS)
    return image


@pytest.fixture
def drawn_set(tmp_path) -> dict[str, Path]:
    """Ten fields, the white cell of each boxed as WBC; train.txt holds six, val.txt four."""
    fields, splits = tmp_path / "fields", tmp_path / "splits"
    fields.mkdir()
    splits.mkdir()
    names = [f"BloodImage_{index:05d}" for index in range(10)]
    boxes = tmp_path / "bccd_boxes.csv"
    with boxes.open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["image", "label", "xmin", "ymin", "xmax", "ymax", "difficult", "truncated"])
        for index, name in enumerate(names):
            shift = 8 * index
            drawn_field(shift).save(fields / f"{name}.jpg", quality=95)
            x, y = CELL_CENTRE[0] + shift, CELL_CENTRE[1]
            rows.writerow([f"{name}.jpg", "WBC", x - 70, y - 70, x + 70, y + 70, 0, 0])
    (splits / "train.txt").write_text("\n".join(names[:6]) + "\n")
    (splits / "val.txt").write_text("\n".join(names[6:]) + "\n")
    return {"fields": fields, "boxes": boxes, "splits": splits}


def test_a_separable_set_is_scored_apart():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(2, 1, (40, 3)), rng.normal(-2, 1, (10, 3))])
    labels = np.array([True] * 40 + [False] * 10)
    scores = fit_logistic(features, labels).scores(features)
    assert scores[labels].min() > 0.5 > scores[~labels].max()


def test_candidates_are_the_boxed_cells_and_the_unboxed_specks(drawn_set, tiny_model_dir):
    split = drawn_set["splits"] / "train.txt"
    candidates = collect_candidates(drawn_set["fields"], drawn_set["boxes"], split, Predictor(tiny_model_dir))
    assert len(candidates.fields) == 12
    assert candidates.annotated.sum() == 6
    assert candidates.areas[~candidates.annotated].max() < LocatorConfig().min_area
    assert candidates.areas[candidates.annotated].min() >= LocatorConfig().min_area
    counts = kept_counts(candidates, np.ones(12), LocatorConfig().min_area)
    assert counts["area_rule"] == {"white_cells": 6, "others": 0}
    assert counts["area_rule_and_score_0.9"] == {"white_cells": 6, "others": 0}


def test_cli_writes_the_study_for_train_val_and_cross_validation(drawn_set, tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "study.json"
    arguments = ["--fields", drawn_set["fields"], "--boxes", drawn_set["boxes"], "--splits"]
    arguments += [drawn_set["splits"], "--model", tiny_model_dir, "--json", output]
    assert main([str(argument) for argument in arguments]) == 0
    written = json.loads(output.read_text())
    assert written["candidates"] == {"train": 12, "val": 8}
    assert written["fit_on_train"]["val"]["area_rule"] == {"white_cells": 4, "others": 0}
    assert written["cross_validated_train_val"]["area_rule"] == {"white_cells": 10, "others": 0}
    assert json.loads(capsys.readouterr().out)["model_version"] == written["model_version"]
