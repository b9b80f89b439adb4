"""Model cards: what a model was trained on and how well it does, beside baselines."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core.paths import PROJECT_ROOT
from core.registry import ModelMetadata
from ui.tables import as_text

ACCURACY_RESULTS = PROJECT_ROOT / "benchmarks" / "accuracy.json"
ROBUSTNESS_RESULTS = PROJECT_ROOT / "benchmarks" / "robustness.json"


INTERVAL_COLUMNS = ("95 % interval low", "95 % interval high")


def metrics_table(metrics: dict, intervals: dict | None = None) -> pd.DataFrame:
    """Model metrics beside the majority-class and class-frequency baselines (percent).

    ``intervals`` (``benchmarks/accuracy.py``'s bootstrap intervals, metric -> dict with
    ``low`` and ``high``) adds the two ends of each metric's 95 % interval after the model."""
    if not metrics:
        return pd.DataFrame()
    rows = [
        ("Space group top-1", "top1", metrics["majority_top1"], metrics["frequency_top1"]),
        ("Space group top-5", "top5", metrics["majority_top5"], None),
        ("Space group balanced accuracy", "balanced_accuracy", 1 / 230, None),
        ("Space group macro-F1", "macro_f1", None, None),
        ("Crystal system accuracy", "system_accuracy", metrics["majority_system"],
         metrics["frequency_system"]),
    ]
    table = pd.DataFrame([(label, metrics[key], majority, frequency)
                          for label, key, majority, frequency in rows],
                         columns=["metric", "model", "majority class", "class frequency"])
    if intervals:
        bounds = [intervals.get(key) or {} for _, key, _, _ in rows]
        for position, (column, end) in enumerate(zip(INTERVAL_COLUMNS, ("low", "high"))):
            table.insert(2 + position, column, [b.get(end) for b in bounds])
    for column in table.columns[1:]:
        table[column] = table[column].map(
            lambda v: None if v is None or v != v else round(100 * v, 1))  # v != v: NaN
    return table.set_index("metric")


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (from :func:`metrics_table`) for display: one decimal, "—" where a baseline
    has no value (text; the page right-aligns it)."""
    return as_text(table, {column: "{:.1f}" for column in table.columns})


DIF_NOTE = ("Each RRUFF mineral's peak list from its DIF file (computed from the refined "
            "structure), drawn as clean peaks: the same crystals as the measured RRUFF "
            "patterns, without the measurement. The gap between the two is what the "
            "measurement costs; the rest of the errors are the crystals'.")


def set_note(set_name: str) -> str | None:
    """What a reader needs to know about a real evaluation set to read its numbers, if any."""
    return DIF_NOTE if set_name.startswith("DIF peak lists") else None


def external_results(model_name: str, path: Path | None = None) -> dict[str, dict]:
    """Metrics of ``model_name`` on the real evaluation sets, as written by
    ``benchmarks/accuracy.py`` (empty when the benchmark has not been run)."""
    return {entry["set"]: entry["metrics"] for entry in _benchmark_entries(model_name, path)}


def external_intervals(model_name: str, path: Path | None = None) -> dict[str, dict]:
    """The 95 % bootstrap interval of each metric of ``model_name``, per real evaluation set
    (``benchmarks/accuracy.py``'s ``intervals`` entries; empty without them)."""
    return {entry["set"]: entry["intervals"] for entry in _benchmark_entries(model_name, path)
            if isinstance(entry.get("intervals"), dict)}


def external_confidence(model_name: str, path: Path | None = None) -> dict[str, dict]:
    """How often ``model_name`` was right when confident and when flagged, per real
    evaluation set (``benchmarks/accuracy.py``'s ``confidence`` entries; empty without them)."""
    return {entry["set"]: entry["confidence"] for entry in _benchmark_entries(model_name, path)
            if isinstance(entry.get("confidence"), dict)}


def confidence_summary(record: dict) -> str:
    """One sentence from a ``benchmarks/accuracy.py`` confidence entry: how many predictions
    clear the low-confidence line and how often each side is right."""
    def percent(value) -> str:
        return "—" if value is None or value != value else f"{value:.0%}"

    return (f"Top space-group probability at least {record['threshold']:.0%} (not flagged as "
            f"low confidence) for {percent(record['share'])} of the patterns: right first "
            f"{percent(record['accuracy_above'])} of the time, against "
            f"{percent(record['accuracy_below'])} for the flagged rest. Calibration error "
            f"{percent(record.get('ece_space_group'))} (0 when the probabilities are honest).")


def effect_costs(model_name: str, path: Path | None = None) -> tuple[str, pd.DataFrame]:
    """What each measurement effect alone costs ``model_name``, as written by
    ``benchmarks/robustness.py``: the set it was measured on, and one row per rendering with
    its top-1 and crystal-system accuracy and their paired change from the quiet rendering
    (percent and points, with 95 % bounds). ``("", empty table)`` when not run."""
    entries = _benchmark_entries(model_name, path or ROBUSTNESS_RESULTS)
    if not entries:
        return "", pd.DataFrame()
    set_name = entries[0]["set"]
    rows = []
    for entry in (e for e in entries if e["set"] == set_name):
        row = {"rendering": entry["condition"]}
        for metric, label in (("top1", "top-1"), ("system_accuracy", "crystal system")):
            cost = entry["cost"][metric]
            row |= {f"{label} %": 100 * entry["metrics"][metric],
                    f"{label} change": 100 * cost["estimate"],
                    f"{label} change low": 100 * cost["low"],
                    f"{label} change high": 100 * cost["high"]}
        rows.append(row)
    return set_name, pd.DataFrame(rows).set_index("rendering")


def _benchmark_entries(model_name: str, path: Path | None) -> list[dict]:
    path = path or ACCURACY_RESULTS
    try:
        version = path.stat()
    except OSError:
        return []
    results = _read_results(str(path), version.st_mtime_ns, version.st_size)
    return [entry for entry in results if entry.get("model") == model_name]


@lru_cache(maxsize=4)
def _read_results(path: str, mtime_ns: int, size: int) -> tuple[dict, ...]:
    """The entries of a benchmark's JSON file, read once per version of the file (the Home
    and Classify pages ask for them on every rerun); empty when unreadable."""
    try:
        return tuple(json.loads(Path(path).read_text()).get("results", []))
    except (OSError, ValueError, AttributeError):
        return ()


def training_summary(meta: ModelMetadata, epochs_run: int | None = None) -> dict[str, str]:
    """Short facts for a model card (``epochs_run``: epochs in its history, when known)."""
    grid = meta.two_theta_grid
    data = meta.dataset or {}
    hp = meta.hyperparameters or {}
    summary = {
        "Architecture": meta.kind,
        "Input": (f"profile on 2θ {grid.start:g}–{grid.stop:g}° step {grid.step:g}° ({grid.size} points)"
                  if meta.input_type == "grid" else f"padded stick arrays ({meta.padded_length} peaks)"),
        "Training data": f"{data.get('name', '?')}: {data.get('train', '?')} train / "
                         f"{data.get('validation', '?')} validation / {data.get('test', '?')} test patterns",
        "Augmentation": f"strength {meta.augmentation.get('strength', 0):g}" if meta.augmentation else "none",
        "Epochs": (f"{epochs_run} (at most {hp.get('epochs', '?')})" if epochs_run else str(hp.get("epochs", "?")))
                  + (f" × {hp['steps_per_epoch']} batches" if hp.get("steps_per_epoch") else ""),
        "Class prior": ("re-weighted from its training frequencies to those of real crystals (COD)"
                        if len(meta.training_prior) == 230 else "as in its training data"),
        "Training time": f"{meta.training_seconds / 60:.1f} min",
        "Created": meta.created,
        "Status": meta.status,
    }
    if hp.get("initial_model"):
        summary["Started from"] = (f"the weights of '{hp['initial_model']}' (epochs and time "
                                   "above are this run's only)")
    return summary
