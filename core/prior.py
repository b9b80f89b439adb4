"""Class priors: how often each space group occurs, in training data and in the real world.

A classifier trained on synthetic crystals learns the space-group frequencies of its training
set along with the patterns. Real samples follow other frequencies (most minerals are
monoclinic or orthorhombic; random crystal generators favour high symmetry). Under such a
*label shift* Bayes' rule gives the fix without retraining:

    p_real(group | pattern)  ∝  p_model(group | pattern) · prior_real(group) / prior_train(group)

:func:`adjust_for_prior` applies it; the training prior is saved with each model
(``ModelMetadata.training_prior``) and the real-world prior is :func:`space_group_prior`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

N_GROUPS = 230
# Training frequencies are floored at this fraction of a uniform share, so that a group the
# training set hardly contains cannot be inflated without bound.
FLOOR_OF_UNIFORM = 0.05


@lru_cache(maxsize=4)
def space_group_prior(smoothing: float = 1.0) -> np.ndarray:
    """Relative frequency of the 230 groups among real inorganic crystals (index n - 1).

    Counts tallied from COD structures (numbers only, ``core/data/sg_frequency.json``), plus
    ``smoothing`` per group so that every group keeps some probability.
    """
    data = json.loads((Path(__file__).parent / "data" / "sg_frequency.json").read_text())
    counts = np.full(N_GROUPS, smoothing, dtype=float)
    for number, count in data["counts"].items():
        counts[int(number) - 1] += count
    prior = counts / counts.sum()
    prior.flags.writeable = False
    return prior


def training_prior(labels: np.ndarray, class_weights: np.ndarray | None = None) -> np.ndarray:
    """The class distribution a model is effectively trained under.

    Args:
        labels: space-group numbers (1-230) of the training rows.
        class_weights: optional (230,) loss weight per group; weighting a group's loss by w
            acts like showing it w times as often.
    """
    counts = np.bincount(np.asarray(labels, dtype=int) - 1, minlength=N_GROUPS).astype(float)
    if class_weights is not None:
        counts = counts * np.asarray(class_weights, dtype=float)
    total = counts.sum()
    if total <= 0:
        raise ValueError("no training labels to take a prior from")
    return counts / total


def adjust_for_prior(probabilities: np.ndarray, trained_on: np.ndarray,
                     target: np.ndarray | None = None) -> np.ndarray:
    """Re-weight (n, 230) model probabilities from the training prior to ``target``.

    Args:
        probabilities: model outputs, rows summing to 1.
        trained_on: (230,) training prior (see :func:`training_prior`).
        target: (230,) prior of the patterns to classify (default :func:`space_group_prior`).

    Returns:
        (n, 230) probabilities, rows summing to 1.
    """
    target = space_group_prior() if target is None else np.asarray(target, dtype=float)
    trained_on = np.asarray(trained_on, dtype=float)
    if trained_on.shape != (N_GROUPS,) or target.shape != (N_GROUPS,):
        raise ValueError("priors must have one entry per space group (230)")
    ratio = target / np.maximum(trained_on, FLOOR_OF_UNIFORM / N_GROUPS)
    adjusted = np.asarray(probabilities, dtype=np.float64) * ratio
    total = adjusted.sum(axis=1, keepdims=True)
    return np.divide(adjusted, total, out=np.full_like(adjusted, 1.0 / N_GROUPS), where=total > 0)
