"""Data behind the model comparison page (no Streamlit): labelled sets from uploads and the
metrics table of several evaluations.

Uploads (a zip, or loose files) are read in memory; archive members are never extracted by
their own names. Each accepted file is written under a sanitized base name into a fresh
temporary folder, which :func:`core.evalsets.labelled_folder` then reads.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.evalsets import LabelledSet, ModelEvaluation, labelled_folder
from core.evaluation import confidence_record
from core.intervals import Interval, difference_interval, metric_interval
from core.symmetry import system_index_of_numbers
from ui.tables import as_text

MAX_UPLOAD_BYTES = 200 * 2**20
MAX_FILES = 5000
LABELS_FILE = "labels.csv"

# Metrics table: column label -> attribute of core.evaluation.Metrics.
METRIC_COLUMNS = {
    "space group top-1": "top1",
    "space group top-5": "top5",
    "space group balanced accuracy": "balanced_accuracy",
    "space group macro-F1": "macro_f1",
    "crystal system accuracy": "system_accuracy",
    "crystal system balanced accuracy": "system_balanced_accuracy",
}
SAMPLES = "samples"
SECONDS = "inference time (s)"
MAJORITY = "baseline: majority class"
FREQUENCY = "baseline: class frequency"
TEXT_COLUMNS = [*METRIC_COLUMNS, SECONDS]  # shown as text by style_metrics: right-align them
HIGHLIGHT = "font-weight: bold; background-color: rgba(46, 160, 67, 0.25)"


class UploadError(ValueError):
    """An upload that cannot become a labelled set; the message names the file and problem."""


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MB" if n_bytes >= 2**20 else f"{n_bytes} bytes"


def safe_name(name: str) -> str | None:
    """The sanitized base name of an uploaded file or archive member, or ``None`` when it
    must be skipped (absolute paths, names containing ``..``, hidden and macOS resource
    files)."""
    posix = str(name).replace("\\", "/")
    if not posix or ".." in posix or posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return None
    parts = [part for part in posix.split("/") if part]
    if not parts or "__MACOSX" in parts or parts[-1].startswith("."):
        return None
    clean = re.sub(r"[^A-Za-z0-9._()+-]", "_", parts[-1])[:128]
    return clean if clean.strip("._") else None


def read_zip(data: bytes, name: str, max_bytes: int = MAX_UPLOAD_BYTES
             ) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The files of a zip archive as (sanitized base name, bytes), and the skipped members.

    Raises:
        UploadError: not a zip, too many members, or more than ``max_bytes`` uncompressed.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UploadError(f"{name}: not a readable zip archive ({exc})") from exc
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > MAX_FILES:
        raise UploadError(f"{name}: {len(members)} files, at most {MAX_FILES} are accepted")
    declared = sum(info.file_size for info in members)
    if declared > max_bytes:
        raise UploadError(f"{name}: {_size(declared)} uncompressed, the limit is {_size(max_bytes)}")
    files, skipped, total = [], [], 0
    for info in members:
        clean = safe_name(info.filename)
        if clean is None:
            skipped.append((info.filename, "unsafe, hidden or system file name; ignored"))
            continue
        try:
            with archive.open(info) as handle:
                content = handle.read(info.file_size + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
            skipped.append((info.filename, f"cannot be read from {name} ({exc})"))
            continue
        total += len(content)
        if len(content) > info.file_size or total > max_bytes:
            raise UploadError(f"{name}: larger than declared or than {_size(max_bytes)}")
        files.append((clean, content))
    return files, skipped


def collect_uploads(uploads: list[tuple[str, bytes]], max_bytes: int = MAX_UPLOAD_BYTES
                    ) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """Uploaded files (zips expanded) as unique (sanitized base name, bytes) pairs, and the
    files skipped with the reason."""
    files, skipped = [], []
    for name, data in uploads:
        if str(name).lower().endswith(".zip"):
            inner, inner_skipped = read_zip(data, str(name), max_bytes)
            files += inner
            skipped += inner_skipped
            continue
        clean = safe_name(name)
        if clean is None:
            skipped.append((str(name), "unsafe, hidden or system file name; ignored"))
        else:
            files.append((clean, bytes(data)))
    if sum(len(data) for _, data in files) > max_bytes:
        raise UploadError(f"the uploaded files exceed {_size(max_bytes)} in all")
    unique, seen = [], set()
    for clean, data in files:
        if clean.lower() in seen:
            skipped.append((clean, "a second file with this name; only the first is used"))
            continue
        seen.add(clean.lower())
        unique.append((clean, data))
    return unique, skipped


def _normalise_labels(folder: Path, skipped: list[tuple[str, str]]) -> None:
    """Check ``labels.csv`` and point its file column at the sanitized base names."""
    path = folder / LABELS_FILE
    try:
        table = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise UploadError(f"{LABELS_FILE}: unreadable ({exc})") from exc
    column = "pattern_file" if "pattern_file" in table else "file" if "file" in table else None
    if column is None or "sg_number" not in table:
        raise UploadError(f"{LABELS_FILE}: needs a 'pattern_file' (or 'file') column and an "
                          f"'sg_number' column; found {', '.join(map(str, table.columns)) or 'none'}")
    numbers = pd.to_numeric(table["sg_number"], errors="coerce")
    bad = ~numbers.between(1, 230) | (numbers % 1 != 0)
    if bad.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad.to_numpy())[:5])
        raise UploadError(f"{LABELS_FILE}: sg_number must be a whole number 1-230 (line {rows})")
    names = table[column].astype(str).map(safe_name)
    for original in table.loc[names.isna(), column]:
        skipped.append((str(original), f"unsafe file name in {LABELS_FILE}; ignored"))
    kept = pd.DataFrame({column: names[names.notna()],
                         "sg_number": numbers[names.notna()].astype(int)})
    kept.to_csv(path, index=False)


def labelled_upload(uploads: list[tuple[str, bytes]], name: str = "uploaded patterns",
                    max_bytes: int = MAX_UPLOAD_BYTES) -> LabelledSet:
    """A labelled set from uploaded files: a zip and/or loose files holding patterns with
    a ``labels.csv`` (``pattern_file`` or ``file``, and ``sg_number``) or RRUFF XY + DIF pairs.

    Raises:
        UploadError: nothing uploaded, unsafe or oversized archives, a bad ``labels.csv``, or
            no labelled pattern found.
    """
    if not uploads:
        raise UploadError("no file uploaded")
    files, skipped = collect_uploads(uploads, max_bytes)
    if not files:
        raise UploadError("the upload holds no usable file")
    with tempfile.TemporaryDirectory(prefix="xrd-compare-") as tmp:
        folder = Path(tmp)
        for clean, data in files:
            (folder / clean).write_bytes(data)
        if (folder / LABELS_FILE).exists():
            _normalise_labels(folder, skipped)
        result = labelled_folder(folder, name=name)
    result.skipped = skipped + result.skipped
    if len(result) == 0:
        raise UploadError("no labelled pattern found: add a labels.csv (pattern_file, "
                          "sg_number) or RRUFF pattern + DIF pairs (R050031.txt + "
                          "R050031_CIF.txt)")
    return result


def _baselines(labels: np.ndarray, metrics) -> dict[str, dict[str, float]]:
    """Majority-class and class-frequency rows. Balanced accuracy of both is 1/k (k classes
    present); the majority predictor's macro-F1 is 2f/(1+f)/k for its class's frequency f."""
    k = len(np.unique(labels))
    k_systems = len(np.unique(system_index_of_numbers(labels)))
    f = metrics.majority_top1
    nan = float("nan")
    majority = [metrics.majority_top1, metrics.majority_top5, 1 / k, 2 * f / (1 + f) / k,
                metrics.majority_system, 1 / k_systems]
    frequency = [metrics.frequency_top1, nan, 1 / k, nan, metrics.frequency_system, 1 / k_systems]
    return {row: {**dict(zip(METRIC_COLUMNS, values)), SAMPLES: metrics.n, SECONDS: nan}
            for row, values in ((MAJORITY, majority), (FREQUENCY, frequency))}


def metrics_frame(evaluations: list[ModelEvaluation]) -> pd.DataFrame:
    """One row per model (fractions in [0, 1], sample count, inference seconds), then the
    majority-class and class-frequency baselines of the first evaluation's labels."""
    if not evaluations:
        return pd.DataFrame(columns=[*METRIC_COLUMNS, SAMPLES, SECONDS])
    rows = {e.model: {**{label: float(getattr(e.metrics, key)) for label, key in METRIC_COLUMNS.items()},
                      SAMPLES: int(e.metrics.n), SECONDS: float(e.seconds)}
            for e in evaluations}
    rows.update(_baselines(evaluations[0].labels, evaluations[0].metrics))
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame[SAMPLES] = frame[SAMPLES].astype(int)
    frame.index.name = "model"
    return frame


def style_metrics(frame: pd.DataFrame, models: list[str]):
    """A Styler over the table as text (percentages; "—" where a baseline has no value), with
    the best model value of each column highlighted (highest metric, shortest inference
    time); baseline rows are never highlighted."""
    metrics = list(METRIC_COLUMNS)
    rows = [m for m in models if m in frame.index]
    best = pd.DataFrame("", index=frame.index, columns=frame.columns)
    if rows:
        for column in metrics:
            best.loc[_best_rows(frame.loc[rows, column], highest=True), column] = HIGHLIGHT
        best.loc[_best_rows(frame.loc[rows, SECONDS], highest=False), SECONDS] = HIGHLIGHT
    text = as_text(frame, {**{column: "{:.1%}" for column in metrics}, SECONDS: "{:.3f}"})
    return text.style.apply(lambda _: best, axis=None)


def _best_rows(values: pd.Series, highest: bool) -> list:
    values = values.dropna()
    if values.empty:
        return []
    target = values.max() if highest else values.min()
    return list(values.index[values == target])


def confidence_table(evaluations: list[ModelEvaluation], threshold: float) -> pd.DataFrame:
    """Per model, as text: the share of patterns whose top space-group probability is below
    ``threshold`` (flagged low confidence), space-group accuracy above and below it ("—"
    where a side is empty), and the expected calibration error for space groups and
    crystal systems."""
    rows = {}
    for e in evaluations:
        record = confidence_record(e.labels, e.probabilities, threshold)
        rows[e.model] = {
            "flagged low confidence": 1 - record["share"],
            "accuracy, not flagged": record["accuracy_above"],
            "accuracy, flagged": record["accuracy_below"],
            "calibration error (space group)": record["ece_space_group"],
            "calibration error (crystal system)": record["ece_crystal_system"],
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return as_text(frame, {column: "{:.1%}" for column in frame.columns})


def interval_table(evaluations: list[ModelEvaluation], metric: str) -> pd.DataFrame:
    """Per model, as text: ``metric`` (a key of :data:`core.intervals.INTERVAL_METRICS`) on
    the set, with the low and high ends of its 95 % bootstrap interval."""
    rows = {}
    for e in evaluations:
        interval = metric_interval(e.labels, e.probabilities, metric)
        rows[e.model] = {"value": interval.estimate, "interval low": interval.low,
                         "interval high": interval.high, SAMPLES: f"{e.metrics.n:,}"}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    percent = ("value", "interval low", "interval high")
    return as_text(frame, {column: "{:.1%}" for column in percent})


def difference_table(evaluations: list[ModelEvaluation], metric: str) -> pd.DataFrame:
    """Every pair of models scored on the same patterns, as text: the first's ``metric``
    minus the second's in points, with its paired 95 % bootstrap interval and what it says.
    Pairs whose patterns differ (some did not fit one model's 2θ range) are left out."""
    rows = []
    for i, a in enumerate(evaluations):
        for b in evaluations[i + 1:]:
            if not np.array_equal(a.labels, b.labels):
                continue
            interval = difference_interval(a.labels, a.probabilities, b.probabilities, metric)
            rows.append({"model": a.model, "minus": b.model,
                         "difference (points)": 100 * interval.estimate,
                         "interval low": 100 * interval.low, "interval high": 100 * interval.high,
                         "verdict": _verdict(interval, a.model, b.model)})
    columns = ["model", "minus", "difference (points)", "interval low", "interval high", "verdict"]
    frame = pd.DataFrame(rows, columns=columns)
    return as_text(frame, {column: "{:+.1f}" for column in columns[2:5]})


def _verdict(interval: Interval, first: str, second: str) -> str:
    if interval.low != interval.low:  # NaN: too few patterns
        return "too few patterns to tell"
    if not interval.excludes_zero:
        return "no clear difference on this set"
    return f"{first if interval.estimate > 0 else second} is better"
