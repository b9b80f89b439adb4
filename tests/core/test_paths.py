"""Store locations and the clean-up of interrupted saves."""

from __future__ import annotations

import os
import time

import pandas as pd

from core import dataset as store
from core import registry
from core.paths import STALE_AFTER_S, datasets_dir, models_dir, remove_stale_temporaries


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_environment_moves_the_stores(isolated_store):
    assert datasets_dir() == isolated_store / "datasets"
    assert models_dir() == isolated_store / "models"


def test_only_old_leftovers_of_our_own_saves_are_removed(tmp_path):
    stale_file = tmp_path / ".train_v1.k2j4h5_a.tmp"
    fresh_file = tmp_path / ".train_v1.z9y8x7w6.tmp"
    staging = tmp_path / ".run1.abcd1234"
    lookalike = tmp_path / ".cache.abcdefgh"        # named like a staging folder, not ours
    visible = tmp_path / "run2.abcd1234.tmp"         # not hidden: a user's file
    for path in (stale_file, fresh_file, visible):
        path.write_text("x")
    staging.mkdir()
    (staging / "model.keras").write_text("partial")
    (staging / ".metadata.json.q1w2e3r4.tmp").write_text("{")
    lookalike.mkdir()
    (lookalike / "notes.txt").write_text("keep me")
    for path in (stale_file, staging, lookalike, visible):
        _age(path, STALE_AFTER_S + 60)
    removed = remove_stale_temporaries(tmp_path, frozenset({"model.keras"}))
    assert sorted(p.name for p in removed) == sorted([stale_file.name, staging.name])
    assert not stale_file.exists() and not staging.exists()
    assert fresh_file.exists() and lookalike.exists() and visible.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_saves_clean_up_after_killed_saves(isolated_store, small_dataset, tiny_model):
    leftover_model = models_dir() / ".crashed.abcd1234"
    leftover_model.mkdir()
    (leftover_model / registry.MODEL_FILE).write_text("half a zip")
    leftover_data = datasets_dir() / ".crashed.a1b2c3d4.tmp"
    leftover_data.write_text("half a parquet")
    for path in (leftover_model, leftover_data):
        _age(path, STALE_AFTER_S + 60)
    store.save(store.Dataset("copy", pd.DataFrame(small_dataset.table), {}))
    registry.save_model(tiny_model.model, registry.ModelMetadata(name="copy", kind="resnet1d"))
    assert not leftover_model.exists() and not leftover_data.exists()
    assert registry.model_path("copy").exists() and (datasets_dir() / "copy.parquet").exists()
