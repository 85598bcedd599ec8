"""Finish a trained model directory: fast export gate, domain statistics, test metrics, card hashes.

    python -m ml.finalise --model DIR

Runs after training (`python -m ml.train` calls it). TEST is read here only to *report* the
model and to check that a fast export is as accurate as the Keras model it was converted from;
nothing here changes the trained weights or chooses between trained models. The domain
statistics (`ml.domain_fit`) are fitted on training and validation cells only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ml.card import read_card, write_card
from ml.data import training_splits
from ml.domain_fit import fit_into_model
from ml.evaluate import evaluate, plot_confusion
from ml.export import export_tflite
from ml.paths import cellavision_dir, kaggle_dir, pbc_dir
from ml.predict import Predictor

# Export candidates, fastest first; one is served only if within this many accuracy points.
EXPORT_CANDIDATES = ("int8", "float16")
MAX_ACCURACY_DROP = 0.005
REPRESENTATIVE_IMAGES = 200
HEADLINE_FIELDS = (
    "n",
    "accuracy",
    "macro_f1",
    "ece",
    "coverage_accuracy",
    "auto_accept",
    "cells_flagged_rate",
    "test_clean",
    "cell_level",
)


def representative_pixels(predictor: Predictor) -> np.ndarray:
    """Preprocessed validation crops (never TEST) to calibrate int8 activation ranges."""
    from PIL import Image

    splits = training_splits()
    samples = splits.val_kaggle[:: max(1, len(splits.val_kaggle) // 100)] + splits.val_pbc[::5]
    pixels = []
    for sample in samples[:REPRESENTATIVE_IMAGES]:
        with Image.open(sample.path) as opened:
            pixels.append(predictor.preprocess(opened.convert("RGB")))
    return np.stack(pixels)


def headline(result: dict) -> dict:
    return {key: result[key] for key in HEADLINE_FIELDS if key in result}


def evaluate_sets(predictor: Predictor) -> dict[str, dict]:
    return {
        "kaggle_test": evaluate(kaggle_dir() / "images" / "TEST", predictor),
        "pbc_test": evaluate(pbc_dir(), predictor, "test"),
    }


def report_sets(predictor: Predictor) -> dict[str, dict]:
    """The test sets, plus the other labs' cells when present (reported, never used to choose)."""
    results = evaluate_sets(predictor)
    if cellavision_dir().is_dir():
        results["cellavision_blog"] = evaluate(cellavision_dir(), predictor)
    return results


def within_tolerance(reference: dict[str, dict], candidate: dict[str, dict]) -> bool:
    return all(
        reference[name]["accuracy"] - candidate[name]["accuracy"] <= MAX_ACCURACY_DROP for name in reference
    )


def choose_serving(model_dir: Path, keras_results: dict[str, dict]) -> tuple[str, dict]:
    """Export each candidate; keep the fastest that matches Keras accuracy, else serve Keras.

    Returns the chosen file and the headline comparison.
    """
    import keras

    keras_predictor = Predictor(model_dir, serving_file="model.keras")
    model = keras.saving.load_model(model_dir / "model.keras", compile=False)
    representative = representative_pixels(keras_predictor)
    comparison: dict[str, dict] = {"keras": {k: headline(v) for k, v in keras_results.items()}}
    chosen = "model.keras"
    for mode in EXPORT_CANDIDATES:
        path = export_tflite(model, model_dir / f"model_{mode}.tflite", mode, representative)
        write_card(model_dir, read_card(model_dir))
        results = evaluate_sets(Predictor(model_dir, serving_file=path.name))
        comparison[mode] = {k: headline(v) for k, v in results.items()}
        if within_tolerance(keras_results, results) and chosen == "model.keras":
            chosen = path.name
        else:
            path.unlink()
    return chosen, comparison


def finalise(model_dir: Path) -> dict:
    keras_results = evaluate_sets(Predictor(model_dir, serving_file="model.keras"))
    chosen, comparison = choose_serving(model_dir, keras_results)
    card = read_card(model_dir)
    card["serving"] = {"format": Path(chosen).suffix.lstrip("."), "file": chosen}
    write_card(model_dir, card)
    # The statistics describe the served file's own features, so they are fitted after the choice.
    card["domain"] = fit_into_model(model_dir)
    write_card(model_dir, card)
    return write_reports(
        model_dir,
        card,
        {
            "export_comparison": comparison,
            "export_rule": f"fastest export within {MAX_ACCURACY_DROP * 100:.1f} accuracy points of Keras "
            "on each set",
        },
    )


def write_reports(model_dir: Path, card: dict, export: dict) -> dict:
    """Report the served model on every test set: confusion PNGs, evaluation.json, card metrics."""
    served = report_sets(Predictor(model_dir))
    for name, result in served.items():
        plot_confusion(result, model_dir / f"confusion_{name}.png")
    evaluation = {
        "served_file": card["serving"]["file"],
        "results": served,
        **export,
        "domain": card["domain"],
    }
    (model_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=1) + "\n")
    card["metrics"] = {
        **card.get("metrics", {}),
        **{name: headline(result) for name, result in served.items()},
    }
    write_card(model_dir, card)
    return {"served_file": card["serving"]["file"], **card["metrics"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.finalise", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(finalise(args.model), indent=1), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
