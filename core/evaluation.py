"""Metrics of space-group predictions, always with baselines beside them.

All functions take true space-group numbers (1-230) and predicted probabilities over the
230 groups; scikit-learn computes the metrics it has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from core.symmetry import CRYSTAL_SYSTEMS, by_number, system_index_of_numbers, system_membership

SPACE_GROUP_LABELS = np.arange(1, 231)


def crystal_system_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """(n, 7) crystal-system probabilities: sums of the space-group probabilities."""
    return np.asarray(probabilities, dtype=np.float64) @ system_membership()


def top_k(probabilities: np.ndarray, k: int = 5) -> np.ndarray:
    """(n, k) space-group numbers, most probable first."""
    order = np.argsort(-np.asarray(probabilities), axis=1, kind="stable")[:, :k]
    return order + 1


@dataclass
class Metrics:
    """Headline numbers of one evaluation.

    Accuracies are fractions in [0, 1]. ``majority_*`` always predicts the most common true
    class of the evaluated set; ``frequency_*`` is the expected accuracy of guessing at
    random with the set's own class frequencies (sum of squared frequencies).
    """

    n: int
    top1: float
    top5: float
    balanced_accuracy: float
    macro_f1: float
    system_accuracy: float
    system_balanced_accuracy: float
    majority_top1: float
    majority_top5: float
    frequency_top1: float
    majority_system: float
    frequency_system: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(true_numbers: np.ndarray, probabilities: np.ndarray) -> Metrics:
    """Space-group and crystal-system metrics with majority and frequency baselines."""
    y = np.asarray(true_numbers, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("nothing to evaluate: no labelled patterns")
    ranked = top_k(p, 5)
    predicted = ranked[:, 0]
    true_system = system_index_of_numbers(y)
    predicted_system = crystal_system_probabilities(p).argmax(axis=1)
    counts = np.bincount(y, minlength=231)[1:]
    frequencies = counts / counts.sum()
    system_frequencies = np.bincount(true_system, minlength=7) / len(y)
    return Metrics(
        n=len(y),
        top1=float(np.mean(predicted == y)),
        top5=float(np.mean(np.any(ranked == y[:, None], axis=1))),
        balanced_accuracy=balanced_accuracy(y, predicted),
        macro_f1=macro_f1(y, predicted),
        system_accuracy=float(np.mean(predicted_system == true_system)),
        system_balanced_accuracy=balanced_accuracy(true_system, predicted_system),
        majority_top1=float(frequencies.max()),
        majority_top5=float(np.sort(frequencies)[-5:].sum()),
        frequency_top1=float(np.sum(frequencies ** 2)),
        majority_system=float(system_frequencies.max()),
        frequency_system=float(np.sum(system_frequencies ** 2)),
    )


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's definition)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # predicted classes absent from y_true
        return float(skm.balanced_accuracy_score(y_true, y_pred))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 averaged over the classes present in ``y_true`` (a predicted class the set does not
    hold lowers the precision of the others, but is not averaged in itself)."""
    return float(skm.f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro",
                              zero_division=0))


def system_confusion(true_numbers: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """7x7 crystal-system confusion matrix (rows true, columns predicted), in
    :data:`CRYSTAL_SYSTEMS` order."""
    true_system = system_index_of_numbers(np.asarray(true_numbers))
    predicted_system = crystal_system_probabilities(probabilities).argmax(axis=1)
    return skm.confusion_matrix(true_system, predicted_system, labels=np.arange(7))


def space_group_confusion(true_numbers: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """230x230 confusion matrix (row n-1 true group n, column m-1 predicted group m)."""
    predicted = top_k(probabilities, 1)[:, 0]
    return skm.confusion_matrix(np.asarray(true_numbers), predicted, labels=SPACE_GROUP_LABELS)


def per_class_report(true_numbers: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support of each space group present in the truth or the
    predictions, worst F1 first."""
    y = np.asarray(true_numbers)
    predicted = top_k(probabilities, 1)[:, 0]
    labels = np.union1d(np.unique(y), np.unique(predicted))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0)
    return pd.DataFrame({
        "space_group": labels,
        "symbol": [by_number(int(n)).symbol for n in labels],
        "crystal_system": [by_number(int(n)).crystal_system for n in labels],
        "precision": precision, "recall": recall, "f1": f1, "support": support,
    }).sort_values(["f1", "support"], ascending=[True, False]).reset_index(drop=True)


def per_system_accuracy(true_numbers: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Crystal-system accuracy within each true crystal system (NaN where absent)."""
    matrix = system_confusion(true_numbers, probabilities)
    totals = matrix.sum(axis=1)
    return {system: float(matrix[i, i] / totals[i]) if totals[i] else float("nan")
            for i, system in enumerate(CRYSTAL_SYSTEMS)}


CONFIDENCE_LEVELS = ("space_group", "crystal_system")


def top_choice(true_numbers: np.ndarray, probabilities: np.ndarray,
               level: str = "space_group") -> tuple[np.ndarray, np.ndarray]:
    """Each pattern's top probability and whether that top choice is right, for space groups
    or for crystal systems (a system's probability is the sum over its groups)."""
    if level not in CONFIDENCE_LEVELS:
        raise ValueError(f"level must be one of {CONFIDENCE_LEVELS}, not {level!r}")
    y = np.asarray(true_numbers, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if level == "crystal_system":
        p, truth = crystal_system_probabilities(p), system_index_of_numbers(y)
    else:
        truth = y - 1
    return p.max(axis=1), p.argmax(axis=1) == truth


def confidence_curve(true_numbers: np.ndarray, probabilities: np.ndarray,
                     level: str = "space_group") -> pd.DataFrame:
    """Accuracy of the most confident predictions. Patterns are sorted by their top
    probability, most confident first; row k keeps the first k + 1 of them: ``coverage``
    (the share of the set kept), ``threshold`` (the lowest top probability kept) and
    ``accuracy`` (of the kept patterns' top choices). Where a model knows when it is right,
    accuracy falls as coverage grows; the last row is the plain accuracy."""
    confidence, correct = top_choice(true_numbers, probabilities, level)
    order = np.argsort(-confidence, kind="stable")
    kept = np.arange(1, len(order) + 1)
    return pd.DataFrame({"coverage": kept / max(len(order), 1), "threshold": confidence[order],
                         "accuracy": np.cumsum(correct[order]) / kept})


def reliability(true_numbers: np.ndarray, probabilities: np.ndarray, bins: int = 10,
                level: str = "space_group") -> pd.DataFrame:
    """Calibration: patterns grouped by top probability into ``bins`` equal-width bins;
    per non-empty bin its range, ``patterns``, ``confidence`` (mean top probability) and
    ``accuracy``. A calibrated model has accuracy equal to confidence in every bin."""
    confidence, correct = top_choice(true_numbers, probabilities, level)
    which = np.clip(np.floor(confidence * bins).astype(np.int64), 0, bins - 1)
    rows = [{"low": b / bins, "high": (b + 1) / bins, "patterns": int(np.sum(which == b)),
             "confidence": float(confidence[which == b].mean()),
             "accuracy": float(correct[which == b].mean())}
            for b in range(bins) if np.any(which == b)]
    return pd.DataFrame(rows, columns=["low", "high", "patterns", "confidence", "accuracy"])


def expected_calibration_error(table: pd.DataFrame) -> float:
    """The patterns-weighted mean gap between accuracy and confidence over the bins of
    :func:`reliability` (0 for a calibrated model)."""
    if table.empty:
        return float("nan")
    weights = table["patterns"] / table["patterns"].sum()
    return float(np.sum(weights * np.abs(table["accuracy"] - table["confidence"])))


def accuracy_above(true_numbers: np.ndarray, probabilities: np.ndarray, threshold: float,
                   level: str = "space_group") -> dict[str, float]:
    """The share of patterns whose top probability is at least ``threshold``, and the
    accuracy of the top choice among them and among the rest (NaN where a side is empty)."""
    confidence, correct = top_choice(true_numbers, probabilities, level)
    sure = confidence >= threshold

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else float("nan")

    return {"share": mean(sure), "accuracy_above": mean(correct[sure]),
            "accuracy_below": mean(correct[~sure])}


def confidence_record(true_numbers: np.ndarray, probabilities: np.ndarray,
                      threshold: float) -> dict[str, float]:
    """A model's confidence in one dict: ``threshold``, the :func:`accuracy_above` split at it
    (space groups) and the expected calibration error of space groups and crystal systems
    (``ece_space_group``, ``ece_crystal_system``)."""
    return {
        "threshold": threshold,
        **accuracy_above(true_numbers, probabilities, threshold),
        "ece_space_group": expected_calibration_error(reliability(true_numbers, probabilities)),
        "ece_crystal_system": expected_calibration_error(
            reliability(true_numbers, probabilities, level="crystal_system")),
    }
