"""Downloads of a stored dataset: the Parquet file as stored, or a CSV with one row per
pattern whose peak-list columns (2θ, intensity, d, h, k, l) are written as space-separated
numbers.
"""

from __future__ import annotations

from core import dataset as store


def export_csv(dataset: store.Dataset) -> bytes:
    """The dataset as CSV: one row per pattern, its labels and metadata, and the peak list
    columns (2θ, intensity, d, h, k, l) as space-separated numbers."""
    table = dataset.table.copy()
    for column in store.PEAK_COLUMNS:
        if column in table:
            if column in ("h", "k", "l"):
                table[column] = table[column].map(lambda v: " ".join(str(int(x)) for x in v))
            else:
                table[column] = table[column].map(lambda v: " ".join(f"{float(x):.6g}" for x in v))
    return table.to_csv(index=False).encode("utf-8")


def export_parquet(name: str) -> bytes:
    """The dataset's Parquet file, as stored."""
    return store.dataset_path(name).read_bytes()
