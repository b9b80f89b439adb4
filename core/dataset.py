"""The dataset store: one Parquet file per dataset, one row per simulated pattern.

A row holds the peak list (2θ, intensity, d-spacing, hkl) and the labels and metadata of the
structure it came from. Dataset-level facts (name, how it was made, wavelength) sit in the
Parquet schema's metadata. Every write goes to a temporary file that replaces the old one in
a single rename, so an interrupted generation never leaves a half-written dataset.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.paths import bundled_dataset_path, datasets_dir, remove_stale_temporaries
from core.simulation import PeakList
from core.symmetry import CRYSTAL_SYSTEMS, by_number

PEAK_COLUMNS = ("two_theta", "intensity", "d_spacing", "h", "k", "l")
LATTICE_COLUMNS = ("a", "b", "c", "alpha", "beta", "gamma")
_META_KEY = b"xrd_classify"


class DatasetError(ValueError):
    """A dataset that does not exist or cannot be read; the message says which and why."""


@dataclass
class Dataset:
    """A table of patterns plus dataset-level metadata.

    Attributes:
        name: the dataset's name (its file stem in the store).
        table: one row per pattern; columns ``id, source, formula, sg_number, crystal_system,
            a..gamma, n_sites, wavelength, requested_sg`` and the list columns of
            :data:`PEAK_COLUMNS`.
        meta: free-form facts: ``created``, ``command``, ``symprec``, ``two_theta_range``...
    """

    name: str
    table: pd.DataFrame
    meta: dict

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> np.ndarray:
        return self.table["sg_number"].to_numpy(dtype=np.int64)


def rows_from_peaklists(peaks: Sequence[PeakList], ids: Sequence[str], source: str,
                        requested_sg: Sequence[int | None] | None = None) -> pd.DataFrame:
    """Table rows for simulated patterns (the inverse of :func:`peaklist_of_row`)."""
    requested_sg = requested_sg or [None] * len(peaks)
    records = []
    for peak, pid, requested in zip(peaks, ids, requested_sg):
        record = {
            "id": str(pid), "source": source, "formula": peak.formula,
            "sg_number": int(peak.sg_number), "crystal_system": peak.crystal_system,
            "n_sites": int(peak.n_sites), "wavelength": float(peak.wavelength),
            "requested_sg": -1 if requested is None else int(requested),
            "two_theta": peak.two_theta.astype(np.float32),
            "intensity": peak.intensity.astype(np.float32),
            "d_spacing": peak.d_spacing.astype(np.float32),
            "h": peak.hkl[:, 0].astype(np.int16), "k": peak.hkl[:, 1].astype(np.int16),
            "l": peak.hkl[:, 2].astype(np.int16),
        }
        record.update(dict(zip(LATTICE_COLUMNS, peak.lattice)))
        records.append(record)
    columns = ["id", "source", "formula", "sg_number", "crystal_system", *LATTICE_COLUMNS,
               "n_sites", "wavelength", "requested_sg", *PEAK_COLUMNS]
    return pd.DataFrame.from_records(records, columns=columns)


def peaklist_of_row(row: pd.Series) -> PeakList:
    """The :class:`PeakList` stored in one table row."""
    hkl = np.stack([np.asarray(row[c], dtype=np.int16) for c in ("h", "k", "l")], axis=-1)
    return PeakList(
        two_theta=np.asarray(row["two_theta"], dtype=np.float32),
        intensity=np.asarray(row["intensity"], dtype=np.float32),
        d_spacing=np.asarray(row["d_spacing"], dtype=np.float32),
        hkl=hkl.reshape(-1, 3), sg_number=int(row["sg_number"]),
        lattice=tuple(float(row[c]) for c in LATTICE_COLUMNS), formula=str(row["formula"]),
        n_sites=int(row["n_sites"]), wavelength=float(row["wavelength"]),
    )


def dataset_path(name: str) -> Path:
    """Where dataset ``name`` is stored (the bundled one lives in the project folder)."""
    if not name or any(ch in name for ch in "/\\") or name.startswith("."):
        raise DatasetError(f"invalid dataset name {name!r}")
    store_path = datasets_dir() / f"{name}.parquet"
    if name == "default" and not store_path.exists():
        return bundled_dataset_path()
    return store_path


def list_datasets() -> list[str]:
    """Names of the datasets in the store, the bundled default first."""
    names = {p.stem for p in datasets_dir().glob("*.parquet")}
    if bundled_dataset_path().exists():
        names.add("default")
    return sorted(names, key=lambda n: (n != "default", n))


def save(dataset: Dataset, path: Path | None = None) -> Path:
    """Write ``dataset`` atomically (temporary file, then one rename)."""
    path = Path(path) if path else dataset_path(dataset.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    table = pa.Table.from_pandas(dataset.table, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps({"name": dataset.name, **dataset.meta}).encode()
    table = table.replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(name_or_path: str | Path) -> Dataset:
    """Load a dataset by store name or by path.

    Raises:
        DatasetError: missing, unreadable or not a dataset of this project.
    """
    path = Path(name_or_path)
    if path.suffix != ".parquet":
        path = dataset_path(str(name_or_path))
    if not path.exists():
        raise DatasetError(f"dataset {str(name_or_path)!r} not found ({path})")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DatasetError(f"dataset {path.name}: unreadable ({exc})") from exc
    raw = (table.schema.metadata or {}).get(_META_KEY)
    missing = {"sg_number", *PEAK_COLUMNS} - set(table.column_names)
    if raw is None or missing:
        raise DatasetError(f"dataset {path.name}: not an xrd-classify dataset")
    meta = json.loads(raw)
    name = meta.pop("name", path.stem)
    return Dataset(name=name, table=table.to_pandas(), meta=meta)


def ids(name: str) -> list[str]:
    """The pattern ids of dataset ``name``, read without loading its peak lists.

    Raises:
        DatasetError: missing, unreadable or without ids.
    """
    path = dataset_path(name)
    try:
        return [str(i) for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()]
    except Exception as exc:  # missing file, damaged file, or no id column
        raise DatasetError(f"dataset {name!r}: ids unreadable ({exc})") from exc


def create(name: str, rows: pd.DataFrame, command: str = "", **meta) -> Dataset:
    """Create (or replace) dataset ``name`` from ``rows``."""
    dataset = Dataset(name=name, table=rows.reset_index(drop=True), meta={
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command, **meta})
    save(dataset)
    return dataset


def append(name: str, rows: pd.DataFrame) -> Dataset:
    """Append ``rows`` to dataset ``name`` (created if missing); ids are kept unique."""
    try:
        dataset = load(name)
    except DatasetError:
        return create(name, rows)
    if name == "default" and dataset_path(name) == bundled_dataset_path():
        raise DatasetError("the bundled dataset is read-only; append to a new dataset")
    taken = set(dataset.table["id"])
    rows = rows[~rows["id"].isin(taken)]
    dataset.table = pd.concat([dataset.table, rows], ignore_index=True)
    dataset.meta["modified"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    save(dataset)
    return dataset


def delete(name: str) -> None:
    """Delete dataset ``name`` from the store; the bundled dataset cannot be deleted."""
    path = dataset_path(name)
    if path == bundled_dataset_path():
        raise DatasetError("the bundled dataset is protected and cannot be deleted")
    if not path.exists():
        raise DatasetError(f"dataset {name!r} not found")
    path.unlink()


def summarise(dataset: Dataset) -> dict:
    """Counts a person wants first: patterns, classes, sources, systems, peaks per pattern."""
    table = dataset.table
    peaks = table["two_theta"].map(len)
    systems = table["crystal_system"].value_counts()
    return {
        "name": dataset.name,
        "patterns": int(len(table)),
        "space_groups": int(table["sg_number"].nunique()),
        "sources": {str(k): int(v) for k, v in table["source"].value_counts().items()},
        "crystal_systems": {s: int(systems.get(s, 0)) for s in CRYSTAL_SYSTEMS},
        "wavelengths": sorted({round(float(w), 5) for w in table["wavelength"].unique()}),
        "peaks_median": float(peaks.median()) if len(peaks) else 0.0,
        "peaks_max": int(peaks.max()) if len(peaks) else 0,
        "two_theta_range": [float(table["two_theta"].map(lambda x: x.min() if len(x) else np.nan).min()),
                            float(table["two_theta"].map(lambda x: x.max() if len(x) else np.nan).max())]
        if len(table) else [0.0, 0.0],
        "created": dataset.meta.get("created", ""),
        "command": dataset.meta.get("command", ""),
    }


@dataclass
class Split:
    """Row positions of the train, validation and test parts of a dataset."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def combine(datasets: Sequence[Dataset]) -> Dataset:
    """Several datasets as one, for training on all of them.

    The result remembers its parts (``meta["parts"]``: name and row count of each, in order),
    and :func:`split` cuts every part on its own, exactly as it would cut that dataset alone,
    so crystals held out of one dataset stay held out when it is combined with others.

    Raises:
        DatasetError: no datasets, a name given twice, or two datasets holding patterns of
            the same id (the same crystal, imported twice or generated with the same seed):
            one held out of one part could be trained on in the other.
    """
    if not datasets:
        raise DatasetError("no datasets to combine")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise DatasetError(f"a dataset is named twice: {', '.join(names)}")
    if len(datasets) == 1:
        return datasets[0]
    for i, first in enumerate(datasets):
        for second in datasets[i + 1:]:
            shared = np.intersect1d(first.table["id"].astype(str), second.table["id"].astype(str))
            if len(shared):
                raise DatasetError(
                    f"datasets {first.name!r} and {second.name!r} share {len(shared):,} pattern "
                    f"ids (e.g. {shared[0]!r}): the same crystals, imported twice or generated "
                    "with the same seed. A crystal held out of one would be trained on in the "
                    "other; combine datasets without common patterns.")
    table = pd.concat([d.table for d in datasets], ignore_index=True, join="inner")
    parts = [part for d in datasets for part in (d.meta.get("parts") or [[d.name, len(d)]])]
    meta = dict(datasets[0].meta, parts=parts,
                command=" ; ".join(str(d.meta.get("command", "")) for d in datasets))
    return Dataset(name="+".join(names), table=table, meta=meta)


def split(dataset: Dataset, validation: float = 0.1, test: float = 0.1, seed: int = 0,
          group_by_formula: bool = False) -> Split:
    """Stratified train/validation/test split.

    Args:
        validation, test: fractions of the rows.
        seed: the same seed gives the same split.
        group_by_formula: keep every pattern of one composition on one side only (no formula
            seen in training appears in validation or test), stratified as far as groups allow.

    A dataset made by :func:`combine` is split part by part, each as if it were alone.
    """
    parts = dataset.meta.get("parts")
    if parts:
        pieces, start = [], 0
        for name, rows in parts:
            part = Dataset(name, dataset.table.iloc[start:start + rows].reset_index(drop=True), {})
            pieces.append((start, split(part, validation, test, seed, group_by_formula)))
            start += rows
        return Split(**{k: np.concatenate([getattr(s, k) + offset for offset, s in pieces])
                        for k in ("train", "validation", "test")})
    from sklearn.model_selection import StratifiedGroupKFold

    labels = dataset.labels
    positions = np.arange(len(labels))
    if group_by_formula:
        groups = pd.factorize(dataset.table["formula"])[0]
        n_folds = max(2, int(round(1 / max(test + validation, 1e-6))))
        folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with _quiet():
            held_out = next(folds.split(positions, labels, groups))[1]
        rest = np.setdiff1d(positions, held_out)
        rng = np.random.default_rng(seed)
        held_groups = np.unique(groups[held_out])
        rng.shuffle(held_groups)
        n_test_groups = int(round(len(held_groups) * test / (test + validation)))
        test_mask = np.isin(groups[held_out], held_groups[:n_test_groups])
        return Split(train=rest, validation=np.sort(held_out[~test_mask]),
                     test=np.sort(held_out[test_mask]))
    # Per class: shuffle, then cut with stochastic rounding so that small classes still land
    # in validation and test in proportion on average; singletons stay in training.
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for label in np.unique(labels):
        members = rng.permutation(positions[labels == label])
        n = len(members)
        n_test = int(np.floor(n * test + rng.random())) if n > 1 else 0
        n_val = int(np.floor(n * validation + rng.random())) if n - n_test > 1 else 0
        parts["test"].append(members[:n_test])
        parts["validation"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    return Split(**{k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()})


class _quiet:
    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def class_counts(labels: np.ndarray) -> np.ndarray:
    """Patterns per space group: index ``n - 1`` for group ``n``."""
    return np.bincount(np.asarray(labels, dtype=np.int64) - 1, minlength=230)


def symbol_of(number: int) -> str:
    return by_number(int(number)).symbol
