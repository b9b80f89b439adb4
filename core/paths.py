"""Where datasets and models live. Environment variables let tests and users move them."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATASET = "default"
BUNDLED_MODEL = "default"


def datasets_dir() -> Path:
    """Folder of the dataset store (``XRD_DATASETS_DIR``, default ``<project>/datasets``)."""
    return Path(os.environ.get("XRD_DATASETS_DIR", PROJECT_ROOT / "datasets"))


def models_dir() -> Path:
    """Folder of saved models (``XRD_MODELS_DIR``, default ``<project>/models``)."""
    return Path(os.environ.get("XRD_MODELS_DIR", PROJECT_ROOT / "models"))


def bundled_dataset_path() -> Path:
    """The dataset shipped with the project; it always lives in the project folder."""
    return PROJECT_ROOT / "datasets" / f"{BUNDLED_DATASET}.parquet"


def bundled_model_path() -> Path:
    """The model shipped with the project."""
    return PROJECT_ROOT / "models" / BUNDLED_MODEL
