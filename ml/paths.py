"""Where data, pretrained weights, caches and models live; every location is overridable by env var."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_VERSION = "wbc-mnv2-v1.2"


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    return _env_path("HEMATOVISION_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")


def pretrained_dir() -> Path:
    return _env_path("HEMATOVISION_PRETRAINED_DIR", PROJECT_ROOT.parent / "shared" / "pretrained")


def cache_dir() -> Path:
    return _env_path("HEMATOVISION_CACHE_DIR", PROJECT_ROOT / "var" / "cache")


def default_model_dir() -> Path:
    return _env_path("HEMATOVISION_MODEL_DIR", PROJECT_ROOT / "ml" / "models" / DEFAULT_MODEL_VERSION)


def kaggle_dir() -> Path:
    return data_dir() / "blood-cells"


def pbc_dir() -> Path:
    return data_dir() / "pbc"


def cellavision_dir() -> Path:
    return data_dir() / "cellavision-blog"
