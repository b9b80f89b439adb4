"""Fixtures shared by the robustness tests."""

from pathlib import Path

import pytest


@pytest.fixture
def own_store(tmp_path, monkeypatch) -> Path:
    """An empty store of this test's own; the bundled dataset and model stay visible."""
    root = tmp_path / "store"
    for part in ("datasets", "models"):
        (root / part).mkdir(parents=True)
    monkeypatch.setenv("XRD_DATASETS_DIR", str(root / "datasets"))
    monkeypatch.setenv("XRD_MODELS_DIR", str(root / "models"))
    return root
