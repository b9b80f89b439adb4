"""Cached access to datasets and models for the pages.

Caches are keyed by the file's modification time, so a dataset or model changed on disk is
reloaded, and an unchanged one is never read twice.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import dataset as store
from core import registry
from core.classify import Classifier


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(show_spinner="Loading dataset…", max_entries=8)
def _load_dataset(name: str, mtime: float) -> store.Dataset:
    return store.load(name)


def load_dataset(name: str) -> store.Dataset:
    """The dataset ``name`` (cached). Raises :class:`core.dataset.DatasetError`."""
    return _load_dataset(name, _mtime(store.dataset_path(name)))


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _load_classifier(name: str, mtime: float) -> Classifier:
    return Classifier.load(name)


def load_classifier(name: str) -> Classifier:
    """A loaded model (cached). Raises :class:`core.registry.ModelError`."""
    folder = registry.model_path(name)
    return _load_classifier(name, _mtime(folder / registry.MODEL_FILE))


def usable_models() -> list[registry.ModelMetadata]:
    """Saved models that finished training and can be loaded."""
    return [m for m in registry.list_models() if m.status in ("done", "stopped")]
