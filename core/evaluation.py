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
        balanced_accuracy=float(_balanced_accuracy(y, predicted)),
        macro_f1=float(skm.f1_score(y, predicted, labels=np.unique(y), average="macro",
                                    zero_division=0)),
        system_accuracy=float(np.mean(predicted_system == true_system)),
        system_balanced_accuracy=float(_balanced_accuracy(true_system, predicted_system)),
        majority_top1=float(frequencies.max()),
        majority_top5=float(np.sort(frequencies)[-5:].sum()),
        frequency_top1=float(np.sum(frequencies ** 2)),
        majority_system=float(system_frequencies.max()),
        frequency_system=float(np.sum(system_frequencies ** 2)),
    )


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's definition)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # predicted classes absent from y_true
        return skm.balanced_accuracy_score(y_true, y_pred)


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
