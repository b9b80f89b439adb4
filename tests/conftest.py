"""Shared fixtures. Tests never write into the project's datasets/ or models/ folders: the
store folders point at a per-session temporary directory, while the bundled dataset and
model are still read from the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "data"
RRUFF_DEV = SHARED / "rruff_dev"
COD_CIFS = SHARED / "cod_cifs"

needs_rruff = pytest.mark.skipif(not RRUFF_DEV.exists(), reason="../shared/data/rruff_dev not present")
needs_cod = pytest.mark.skipif(not COD_CIFS.exists(), reason="../shared/data/cod_cifs not present")


@pytest.fixture(scope="session", autouse=True)
def isolated_store(tmp_path_factory):
    """Point the dataset and model stores at a temporary folder for the whole session."""
    root = tmp_path_factory.mktemp("store")
    old = {k: os.environ.get(k) for k in ("XRD_DATASETS_DIR", "XRD_MODELS_DIR")}
    os.environ["XRD_DATASETS_DIR"] = str(root / "datasets")
    os.environ["XRD_MODELS_DIR"] = str(root / "models")
    (root / "datasets").mkdir()
    (root / "models").mkdir()
    yield root
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def bundled_dataset():
    from core import dataset as store

    return store.load("default")


@pytest.fixture(scope="session")
def small_dataset(bundled_dataset):
    """A few hundred rows of the bundled dataset, saved in the store as ``small``."""
    import numpy as np

    from core import dataset as store

    rows = bundled_dataset.table.groupby("sg_number", group_keys=False).head(2)
    rows = rows.sample(n=min(300, len(rows)), random_state=0)
    return store.create("small", rows, command="test fixture")


def rows_outside(dataset, source, count: int):
    """``count`` rows of ``source`` (a dataset) that ``dataset`` does not hold: a second
    dataset made of them can be combined with ``dataset`` (no shared crystals)."""
    table = source.table[~source.table["id"].isin(dataset.table["id"])]
    return table.head(count).reset_index(drop=True)


@pytest.fixture(scope="session")
def tiny_model(small_dataset):
    """A small residual CNN trained for a few batches and saved in the store as ``tiny``."""
    from core.training import TrainingConfig, train

    config = TrainingConfig(name="tiny", kind="resnet1d", epochs=2, steps_per_epoch=3,
                            batch_size=32, hyperparameters={"width": 8, "dense_units": 64})
    return train(small_dataset, config)
