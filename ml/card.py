"""The model card: the single JSON file that describes a model directory and how to serve it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CARD_NAME = "model_card.json"


class ModelDirectoryError(RuntimeError):
    """A model directory is missing, incomplete or does not match its card."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(model_dir: Path) -> dict:
    card_path = model_dir / CARD_NAME
    if not card_path.is_file():
        raise ModelDirectoryError(f"no {CARD_NAME} in model directory {model_dir}")
    return json.loads(card_path.read_text())


def write_card(model_dir: Path, card: dict) -> None:
    """Write the card, recording the sha256 of every other file so tampering is detectable."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name != CARD_NAME)
    card = {**card, "files": {p.name: sha256_of(p) for p in files}}
    (model_dir / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")


def verify_file(model_dir: Path, card: dict, name: str) -> Path:
    """Path of `name` after checking it exists and its hash matches the card."""
    path = model_dir / name
    if not path.is_file():
        raise ModelDirectoryError(f"model file {path} is missing")
    expected = card.get("files", {}).get(name)
    if expected and sha256_of(path) != expected:
        raise ModelDirectoryError(f"{path} does not match the sha256 recorded in the model card")
    return path
