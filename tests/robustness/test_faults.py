"""Faults: jobs killed with SIGKILL, writes that fail half-way, and corrupt files in the
model and dataset stores. Nothing may be left half-written where the app looks, every model
listed as finished must load, and the pages must report a broken file rather than crash.

Each test works in its own store (``XRD_MODELS_DIR`` / ``XRD_DATASETS_DIR`` pointed at a
temporary folder), so the broken files never reach other tests.
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import dataset as store
from core import registry
from core.classify import Classifier
from core.grid import DEFAULT_GRID
from tests.conftest import PROJECT

START_TIMEOUT_S = 300  # a subprocess importing TensorFlow on a busy 2-core machine is slow




def _rows(bundled, n: int):
    return bundled.table.groupby("sg_number", group_keys=False).head(1).sample(
        n=min(n, bundled.table["sg_number"].nunique()), random_state=1)


def _tiny_model(name: str) -> Path:
    """A small untrained model saved through the registry (seconds, no training)."""
    from core.models import build

    model = build("baseline_ann", DEFAULT_GRID.size, units=8, depth=1)
    metadata = registry.ModelMetadata(name=name, kind="baseline_ann",
                                      hyperparameters={"units": 8, "depth": 1})
    return registry.save_model(model, metadata)


class Watched:
    """A ``python -m core`` subprocess whose merged output is collected by a thread."""

    def __init__(self, *args: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen([sys.executable, "-m", "core", *args], cwd=PROJECT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._output = bytearray()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while chunk := self.proc.stdout.read1(65536):
            self._output += chunk

    @property
    def text(self) -> str:
        return self._output.decode("utf-8", "replace")

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            if self.proc.poll() is not None:
                time.sleep(0.2)
                pytest.fail(f"the job ended (exit {self.proc.returncode}) before "
                            f"{pattern!r}:\n{self.text[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {pattern!r} within {timeout} s:\n{self.text[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._thread.join(timeout=10)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


# ----------------------------------------------------------------------------- killed jobs


def test_training_killed_mid_epoch_leaves_the_registry_consistent(own_store, bundled_dataset):
    store.create("small", _rows(bundled_dataset, 60), command="robustness test")
    _tiny_model("finished_before")
    job = Watched("train", "--name", "killed_run", "--model", "baseline_ann",
                  "--hyperparameters", '{"units": 16}', "--epochs", "50", "--steps", "5",
                  "--batch-size", "8", "--dataset", "small")
    try:
        job.wait_for(r"epoch \d+: \w+=", START_TIMEOUT_S)  # first epoch done, the next running
    finally:
        job.kill()
    assert job.proc.returncode == -signal.SIGKILL

    models = own_store / "models"
    for folder in _visible(models):  # staging folders are hidden (".name.xxxx")
        assert folder.is_dir() and (folder / registry.METADATA_FILE).exists(), folder
    listed = {m.name: m for m in registry.list_models()}
    assert "killed_run" not in listed or listed["killed_run"].status in ("done", "stopped")
    assert {"default", "finished_before"} <= set(listed)
    for meta in listed.values():
        assert meta.status != "corrupt", meta.error
        if meta.status == "done":
            model, loaded = registry.load_model(meta.name)
            assert loaded.name == meta.name and model.output_shape[-1] == len(loaded.classes)
    # The name is free again: a new run of the same name is not blocked by leftovers.
    registry.check_name("killed_run")
    assert not registry.model_path("killed_run").exists()


def test_generation_killed_while_writing_keeps_the_original_rows(own_store, bundled_dataset):
    original = store.create("g", bundled_dataset.table, command="robustness test").table
    groups = ["1", "2", "4", "14", "15", "19", "33", "61", "62", "139", "194", "225", "221", "227"]
    job = Watched("generate", "--name", "g", "--per-group", "1", "--seed", "3", "--chunk", "2",
                  "--append", "--processes", "1", "--max-atoms", "12", "--space-groups", *groups)
    try:
        # The line is printed just before a chunk is appended (read, concatenate, write):
        # killing shortly after it lands in the middle of that write most of the time.
        job.wait_for(r"synthetic: \d+ patterns", START_TIMEOUT_S)
        time.sleep(0.4)
    finally:
        job.kill()

    datasets = own_store / "datasets"
    assert [p.name for p in _visible(datasets)] == ["g.parquet"]  # leftovers are hidden .tmp files
    assert store.list_datasets() == ["default", "g"]
    table = store.load("g").table
    n = len(original)
    assert len(table) >= n
    head = table.iloc[:n].reset_index(drop=True)
    assert list(head["id"]) == list(original["id"])
    assert list(head["sg_number"]) == list(original["sg_number"])
    for column in ("two_theta", "intensity", "h"):
        assert all((a == b).all() for a, b in zip(head[column], original[column]))
    added = table.iloc[n:]
    assert added["id"].is_unique and not set(added["id"]) & set(original["id"])
    assert all(str(i).startswith("syn-") for i in added["id"])
    assert all(len(t) == len(i) > 0 for t, i in zip(added["two_theta"], added["intensity"]))


class _FullDisk(io.RawIOBase):
    """A file that takes ``limit`` bytes, then fails like a full disk."""

    def __init__(self, path, limit: int):
        self._handle = open(path, "wb")
        self.left = limit
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        part = data[:self.left]
        self._handle.write(part)
        self._handle.flush()
        self.left -= len(part)
        self.written += len(part)
        if len(part) < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def test_a_write_failing_half_way_leaves_the_dataset_intact(own_store, bundled_dataset, monkeypatch):
    import pyarrow.parquet as pq

    store.create("g", _rows(bundled_dataset, 40), command="robustness test")
    path = store.dataset_path("g")
    before = path.read_bytes()
    real_write = pq.write_table
    sinks = []

    def failing_write(table, where, **kwargs):
        sink = _FullDisk(where, 2048)
        sinks.append((where, sink))
        try:
            real_write(table, sink, **kwargs)
        finally:
            sink.close()

    monkeypatch.setattr(pq, "write_table", failing_write)
    more = _rows(bundled_dataset, 50).assign(id=lambda t: [f"extra-{i}" for i in range(len(t))])
    with pytest.raises(OSError):
        store.append("g", more)
    monkeypatch.setattr(pq, "write_table", real_write)

    assert sinks and sinks[0][1].written == 2048  # the write really was cut off half-way
    assert Path(sinks[0][0]).parent == path.parent
    assert path.read_bytes() == before
    assert store.load("g").table["id"].tolist() == store.load(path).table["id"].tolist()
    assert len(store.load("g")) == 40
    assert [p.name for p in (own_store / "datasets").iterdir()] == ["g.parquet"]  # temp removed


def test_a_crashed_save_leaves_only_a_hidden_folder(own_store, monkeypatch):
    """A model save that dies half-way (here: writing metadata fails) leaves nothing listed,
    and the name can be saved again."""
    from core.models import build

    def broken(folder, metadata):
        raise OSError(errno.EIO, "Input/output error")

    working = registry.write_metadata
    monkeypatch.setattr(registry, "write_metadata", broken)
    model = build("baseline_ann", DEFAULT_GRID.size, units=8, depth=1)
    with pytest.raises(OSError):
        registry.save_model(model, registry.ModelMetadata(name="half", kind="baseline_ann"))
    monkeypatch.setattr(registry, "write_metadata", working)
    assert _visible(own_store / "models") == []
    assert "half" not in {m.name for m in registry.list_models()}
    # A staging folder left behind by a process killed while saving is ignored too.
    leftover = own_store / "models" / ".half.abc123"
    leftover.mkdir()
    (leftover / registry.MODEL_FILE).write_bytes(b"PK\x03\x04 half a zip")
    assert "half" not in {m.name for m in registry.list_models()}
    _tiny_model("half")
    assert registry.load_model("half")[1].name == "half"


# ----------------------------------------------------------------------------- corrupt files


@pytest.fixture
def corrupt_store(own_store, bundled_dataset) -> Path:
    """A store holding a truncated model file, a model file that is a zip of junk, garbage
    metadata, a truncated dataset, a Parquet file of someone else's, and one good dataset."""
    folder = _tiny_model("truncated")
    model_file = folder / registry.MODEL_FILE
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])

    scrambled = _tiny_model("scrambled") / registry.MODEL_FILE
    with zipfile.ZipFile(scrambled, "w") as archive:  # a complete zip, but not a Keras model
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{\"class_name\": ")
        archive.writestr("model.weights.h5", b"\x89HDF junk")

    garbage = own_store / "models" / "garbage"
    garbage.mkdir()
    (garbage / registry.METADATA_FILE).write_bytes(b"\x00\xff{not json at all")
    (garbage / registry.MODEL_FILE).write_bytes(b"junk")

    store.create("good", bundled_dataset.table.head(120), command="robustness test")
    store.create("broken", _rows(bundled_dataset, 80), command="robustness test")
    broken = store.dataset_path("broken")
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])

    import pandas as pd

    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(own_store / "datasets" / "foreign.parquet")
    return own_store


def test_damaged_model_files_are_reported(corrupt_store):
    listed = {m.name: m for m in registry.list_models()}
    assert listed["truncated"].status == "corrupt"
    assert "truncated" in listed["truncated"].error and "damaged" in listed["truncated"].error
    assert listed["scrambled"].status == "done"  # a sound zip: only loading can tell
    for name in ("truncated", "scrambled"):
        with pytest.raises(registry.ModelError, match=rf"{name}.*cannot be loaded"):
            registry.load_model(name)
        with pytest.raises(registry.ModelError, match=name):
            Classifier.load(name)


def test_garbage_metadata_is_listed_as_corrupt(corrupt_store):
    listed = {m.name: m for m in registry.list_models()}
    assert listed["garbage"].status == "corrupt"
    assert "garbage" in listed["garbage"].error and "metadata" in listed["garbage"].error
    with pytest.raises(registry.ModelError, match=r"garbage.*metadata"):
        registry.load_model("garbage")
    assert listed["default"].status == "done"


def test_truncated_and_foreign_datasets_are_reported(corrupt_store):
    with pytest.raises(store.DatasetError, match=r"broken\.parquet: unreadable"):
        store.load("broken")
    with pytest.raises(store.DatasetError, match=r"foreign\.parquet: not an xrd-classify dataset"):
        store.load("foreign")
    assert len(store.load("good")) > 0
    assert {"broken", "foreign", "good"} <= set(store.list_datasets())


def _page(name: str, state: dict) -> AppTest:
    at = AppTest.from_file(str(PROJECT / "pages" / f"{name}.py"), default_timeout=300)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def test_classify_page_reports_a_corrupt_model(corrupt_store):
    at = _page("classify", {"classify_model": "scrambled"})
    offered = at.selectbox(key="classify_model").options
    assert "scrambled" in offered and not {"truncated", "garbage"} & set(offered)
    assert "scrambled" in _errors(at) and "cannot be loaded" in _errors(at)


def test_compare_page_skips_a_corrupt_model_and_reports_a_broken_dataset(corrupt_store):
    at = _page("compare", {"compare_models": ["default", "scrambled"], "compare_dataset": "good"})
    assert "scrambled" in _errors(at)
    assert at.dataframe, "the working model's metrics are still shown"
    at.selectbox(key="compare_dataset").set_value("broken").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "broken" in _errors(at)
    at.selectbox(key="compare_dataset").set_value("foreign").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "foreign" in _errors(at)


def test_dataset_page_reports_a_broken_dataset(corrupt_store):
    at = _page("dataset", {"ds_name": "broken"})
    assert "broken" in _errors(at)
    at.selectbox(key="ds_name").set_value("foreign").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "foreign" in _errors(at)
