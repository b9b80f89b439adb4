"""The dataset store: create, load, append, delete, summarise, split, atomic writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymatgen.core import Lattice, Structure

from core import dataset as store
from core.dataset import Dataset, DatasetError
from core.paths import bundled_dataset_path, datasets_dir
from core.simulation import simulate
from core.structures import bundled_structures


@pytest.fixture(scope="module")
def peaklists():
    batch = bundled_structures()
    chosen = [batch.structures[batch.names.index(n)] for n in ("Si", "CsCl", "TiO2")]
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    return [simulate(s) for s in (*chosen, rock_salt)]


@pytest.fixture(scope="module")
def rows(peaklists):
    return store.rows_from_peaklists(peaklists, ["si", "cscl", "tio2", "nacl"], "test",
                                     requested_sg=[227, None, None, 225])


def synthetic_table(template: pd.DataFrame, class_sizes: dict[int, int],
                    rows_per_formula: int = 1, prefix: str = "") -> pd.DataFrame:
    """A table of ``class_sizes[n]`` copies of a template row per space group ``n``; every
    ``rows_per_formula`` consecutive rows of a class share a formula; ids start ``prefix``."""
    parts = []
    for number, size in class_sizes.items():
        block = pd.concat([template.iloc[[0]]] * size, ignore_index=True)
        block["sg_number"] = number
        block["id"] = [f"{prefix}sg{number}-{i}" for i in range(size)]
        block["formula"] = [f"F{number}x{i // rows_per_formula}" for i in range(size)]
        parts.append(block)
    return pd.concat(parts, ignore_index=True)


def test_rows_columns_and_peaklist_round_trip(rows, peaklists):
    assert list(rows.columns) == ["id", "source", "formula", "sg_number", "crystal_system",
                                  "a", "b", "c", "alpha", "beta", "gamma", "n_sites",
                                  "wavelength", "requested_sg", "two_theta", "intensity",
                                  "d_spacing", "h", "k", "l"]
    assert rows["requested_sg"].tolist() == [227, -1, -1, 225]
    assert rows["sg_number"].tolist() == [p.sg_number for p in peaklists]
    for (_, row), original in zip(rows.iterrows(), peaklists):
        back = store.peaklist_of_row(row)
        np.testing.assert_allclose(back.two_theta, original.two_theta)
        np.testing.assert_allclose(back.intensity, original.intensity)
        np.testing.assert_allclose(back.d_spacing, original.d_spacing)
        np.testing.assert_array_equal(back.hkl, original.hkl)
        assert back.sg_number == original.sg_number
        assert back.lattice == pytest.approx(original.lattice)
        assert (back.formula, back.n_sites) == (original.formula, original.n_sites)
        assert back.wavelength == pytest.approx(original.wavelength)


def test_create_load_round_trip(rows, peaklists):
    created = store.create("ds_roundtrip", rows, command="pytest", seed=3)
    assert store.dataset_path("ds_roundtrip").parent == datasets_dir()
    assert store.dataset_path("ds_roundtrip").exists()
    loaded = store.load("ds_roundtrip")
    assert loaded.name == "ds_roundtrip"
    assert len(loaded) == len(created) == 4
    assert loaded.meta["command"] == "pytest"
    assert loaded.meta["seed"] == 3
    assert "created" in loaded.meta
    assert loaded.labels.tolist() == rows["sg_number"].tolist()
    back = store.peaklist_of_row(loaded.table.iloc[0])
    np.testing.assert_allclose(back.two_theta, peaklists[0].two_theta)
    np.testing.assert_array_equal(back.hkl, peaklists[0].hkl)
    # Loading by path gives the same table.
    by_path = store.load(store.dataset_path("ds_roundtrip"))
    assert by_path.table["id"].tolist() == loaded.table["id"].tolist()
    assert "ds_roundtrip" in store.list_datasets()


def test_list_datasets_puts_bundled_first(rows):
    store.create("aaa_first_alphabetically", rows)
    names = store.list_datasets()
    assert names[0] == "default"
    assert names[1:] == sorted(names[1:])
    store.delete("aaa_first_alphabetically")


def test_append_keeps_ids_unique(rows):
    store.create("ds_append", rows.iloc[:2])
    grown = store.append("ds_append", rows.iloc[1:])  # "cscl" is a duplicate id
    assert grown.table["id"].tolist() == ["si", "cscl", "tio2", "nacl"]
    assert grown.table["id"].is_unique
    assert "modified" in grown.meta
    assert len(store.load("ds_append")) == 4
    again = store.append("ds_append", rows)
    assert len(again) == 4
    # Appending to a dataset that does not exist creates it.
    fresh = store.append("ds_append_new", rows.iloc[:1])
    assert len(store.load("ds_append_new")) == len(fresh) == 1


def test_bundled_dataset_is_protected(rows):
    path = bundled_dataset_path()
    before = path.stat().st_mtime_ns
    with pytest.raises(DatasetError, match="protected"):
        store.delete("default")
    with pytest.raises(DatasetError, match="read-only"):
        store.append("default", rows)
    assert path.exists() and path.stat().st_mtime_ns == before


def test_delete(rows):
    store.create("ds_delete", rows)
    store.delete("ds_delete")
    assert not store.dataset_path("ds_delete").exists()
    assert "ds_delete" not in store.list_datasets()
    with pytest.raises(DatasetError, match="not found"):
        store.delete("ds_delete")
    with pytest.raises(DatasetError, match="not found"):
        store.load("ds_delete")


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a\\b", ".hidden"])
def test_invalid_names(name, rows):
    with pytest.raises(DatasetError, match="invalid dataset name"):
        store.dataset_path(name)
    with pytest.raises(DatasetError):
        store.create(name, rows)


def test_corrupt_and_foreign_files():
    folder = datasets_dir()
    (folder / "ds_garbage.parquet").write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DatasetError, match="ds_garbage.parquet"):
        store.load("ds_garbage")
    # A valid Parquet file that is not one of ours.
    pq.write_table(pa.table({"x": [1, 2, 3]}), folder / "ds_foreign.parquet")
    with pytest.raises(DatasetError, match="not an xrd-classify dataset"):
        store.load("ds_foreign")
    (folder / "ds_empty.parquet").write_bytes(b"")
    with pytest.raises(DatasetError):
        store.load("ds_empty")
    for name in ("ds_garbage", "ds_foreign", "ds_empty"):
        store.delete(name)


def test_interrupted_write_keeps_old_file(rows, monkeypatch):
    store.create("ds_atomic", rows.iloc[:2])
    path = store.dataset_path("ds_atomic")
    before = path.read_bytes()

    def broken_write(table, where, **kwargs):
        with open(where, "wb") as handle:  # half a file, then the crash
            handle.write(b"PAR1" + b"\0" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        store.append("ds_atomic", rows.iloc[2:])
    with pytest.raises(OSError, match="disk full"):
        store.create("ds_atomic", rows)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.load("ds_atomic").table["id"].tolist() == ["si", "cscl"]
    leftovers = [p.name for p in datasets_dir().iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_summarise(rows):
    dataset = Dataset("s", rows.copy(), {"created": "then", "command": "made by hand"})
    summary = store.summarise(dataset)
    assert summary["name"] == "s"
    assert summary["patterns"] == 4
    assert summary["space_groups"] == rows["sg_number"].nunique()
    assert summary["sources"] == {"test": 4}
    assert sum(summary["crystal_systems"].values()) == 4
    assert set(summary["crystal_systems"]) == {"triclinic", "monoclinic", "orthorhombic",
                                               "tetragonal", "trigonal", "hexagonal", "cubic"}
    assert summary["crystal_systems"]["cubic"] == int((rows["crystal_system"] == "cubic").sum())
    lengths = rows["two_theta"].map(len)
    assert summary["peaks_max"] == lengths.max()
    assert summary["peaks_median"] == pytest.approx(lengths.median())
    assert summary["wavelengths"] == [1.54184]
    assert 5 <= summary["two_theta_range"][0] < summary["two_theta_range"][1] <= 90
    assert summary["command"] == "made by hand"


def test_summarise_empty(rows):
    summary = store.summarise(Dataset("e", rows.iloc[:0], {}))
    assert summary["patterns"] == 0 and summary["peaks_max"] == 0
    assert summary["two_theta_range"] == [0.0, 0.0]


def test_class_counts():
    counts = store.class_counts(np.array([1, 1, 230, 14]))
    assert counts.shape == (230,)
    assert counts[0] == 2 and counts[13] == 1 and counts[229] == 1 and counts.sum() == 4


def check_partition(parts, n):
    together = np.concatenate([parts.train, parts.validation, parts.test])
    assert len(together) == n
    assert sorted(together.tolist()) == list(range(n))  # disjoint and complete


def test_split_stratified(rows):
    table = synthetic_table(rows, {2: 200, 14: 100, 62: 50, 225: 1})
    dataset = Dataset("strat", table, {})
    parts = store.split(dataset, validation=0.1, test=0.2, seed=0)
    check_partition(parts, len(table))
    labels = dataset.labels
    for number, size in ((2, 200), (14, 100), (62, 50)):
        in_test = np.sum(labels[parts.test] == number)
        in_val = np.sum(labels[parts.validation] == number)
        assert abs(in_test - 0.2 * size) <= 1.5
        assert abs(in_val - 0.1 * size) <= 1.5
    # A singleton class stays in training.
    assert 225 in labels[parts.train]
    # Same seed, same split; another seed, another split.
    again = store.split(dataset, validation=0.1, test=0.2, seed=0)
    np.testing.assert_array_equal(parts.test, again.test)
    other = store.split(dataset, validation=0.1, test=0.2, seed=1)
    assert not np.array_equal(parts.test, other.test)


def test_split_group_by_formula(rows):
    table = synthetic_table(rows, {2: 60, 14: 60, 62: 40, 225: 40}, rows_per_formula=4)
    dataset = Dataset("grouped", table, {})
    parts = store.split(dataset, validation=0.1, test=0.1, seed=0, group_by_formula=True)
    check_partition(parts, len(table))
    formulas = table["formula"].to_numpy()
    train, val, test = (set(formulas[p]) for p in (parts.train, parts.validation, parts.test))
    assert not train & val and not train & test and not val & test
    assert len(parts.test) > 0 and len(parts.validation) > 0
    assert 0.1 < (len(parts.test) + len(parts.validation)) / len(table) < 0.35


def test_split_empty_fractions(rows):
    table = synthetic_table(rows, {2: 10, 14: 10})
    parts = store.split(Dataset("all_train", table, {}), validation=0.0, test=0.0)
    assert len(parts.train) == 20 and len(parts.validation) == len(parts.test) == 0


def test_small_dataset_fixture_split(small_dataset):
    parts = store.split(small_dataset)
    check_partition(parts, len(small_dataset))
    assert len(parts.train) > len(parts.test)


def test_combine_splits_each_part_as_if_alone(rows):
    first = Dataset("first", synthetic_table(rows, {2: 60, 14: 40}, prefix="a-"), {"command": "one"})
    second = Dataset("second", synthetic_table(rows, {14: 30, 62: 50}, prefix="b-"),
                     {"command": "two"})
    both = store.combine([first, second])
    assert both.name == "first+second" and len(both) == 180
    assert both.meta["parts"] == [["first", 100], ["second", 80]]
    parts = store.split(both, validation=0.1, test=0.2, seed=3)
    check_partition(parts, 180)
    alone = [store.split(d, validation=0.1, test=0.2, seed=3) for d in (first, second)]
    for key in ("train", "validation", "test"):
        expected = np.concatenate([getattr(alone[0], key), getattr(alone[1], key) + 100])
        np.testing.assert_array_equal(getattr(parts, key), expected)
    # Combining a combined dataset keeps the innermost parts.
    third = Dataset("third", synthetic_table(rows, {2: 20}, prefix="c-"), {})
    nested = store.combine([both, third])
    assert nested.meta["parts"] == [["first", 100], ["second", 80], ["third", 20]]
    np.testing.assert_array_equal(store.split(nested, 0.1, 0.2, 3).test[:len(parts.test)], parts.test)
    # Not what a split of the pooled rows would give: the parts' held-out rows stay held out.
    pooled = store.split(Dataset("pooled", both.table, {}), validation=0.1, test=0.2, seed=3)
    assert not np.array_equal(pooled.test, parts.test)


def test_combine_refuses_nothing_and_repeats(rows):
    one = Dataset("one", synthetic_table(rows, {2: 5}), {})
    assert store.combine([one]) is one
    with pytest.raises(DatasetError, match="no datasets"):
        store.combine([])
    with pytest.raises(DatasetError, match="named twice"):
        store.combine([one, one])


def test_combine_refuses_datasets_holding_the_same_crystals(rows):
    """Two datasets generated with the same seed hold the same crystals under the same ids: a
    crystal in one's test split could sit in the other's training split."""
    first = Dataset("first", synthetic_table(rows, {2: 10, 14: 10}), {})
    again = Dataset("again", synthetic_table(rows, {14: 5, 62: 5}), {})
    with pytest.raises(DatasetError, match=r"'first' and 'again' share 5 pattern ids \(e\.g\. 'sg14-0'\)"):
        store.combine([first, again])
    other = Dataset("other", synthetic_table(rows, {14: 5}, prefix="x-"), {})
    assert len(store.combine([first, other])) == 25


def test_ids_are_read_without_the_peak_lists(small_dataset):
    assert store.ids("small") == small_dataset.table["id"].astype(str).tolist()
    with pytest.raises(DatasetError, match="ids unreadable"):
        store.ids("no_such_dataset")


def test_datasets_load_and_train_without_pymatgen():
    """Reading a dataset and making training batches need no crystallography packages, so a
    training machine (a lent GPU with its own Python) needs only the numeric stack and Keras."""
    script = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pymatgen", "pyxtal", "streamlit", "plotly", "mp_api"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from core import dataset
from core.training import TrainingConfig, make_inputs, stick_batch
data = dataset.load("default")
sticks = stick_batch(data, np.arange(8))
config = TrainingConfig(name="x")
x = make_inputs(sticks, config, config.augmentation, np.random.default_rng(0))
print(x.shape[0], "pymatgen" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["8", "False"]
