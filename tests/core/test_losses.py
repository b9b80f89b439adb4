"""The lattice-aware loss: plain cross-entropy at weight 0, and credit for the right lattice."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from core.losses import LatticeAwareCrossentropy
from core.symmetry import bravais_membership, system_membership


def one_hot(numbers) -> np.ndarray:
    return keras.utils.to_categorical(np.asarray(numbers) - 1, 230).astype(np.float32)


def probabilities_with(true_share: float, rest: dict[int, float] | None = None,
                       true_number: int = 15) -> np.ndarray:
    """A (1, 230) softmax with ``true_share`` on ``true_number``, the given shares on other
    groups and what is left spread evenly over the rest."""
    p = np.zeros(230, np.float64)
    p[true_number - 1] = true_share
    for number, share in (rest or {}).items():
        p[number - 1] = share
    free = p == 0
    p[free] = (1.0 - p.sum()) / free.sum()
    return p[None, :].astype(np.float32)


def test_weight_zero_is_categorical_crossentropy():
    rng = np.random.default_rng(0)
    y_pred = rng.dirichlet(np.ones(230), size=6).astype(np.float32)
    y_true = one_hot(rng.integers(1, 231, 6))
    ours = LatticeAwareCrossentropy(0.0)(y_true, y_pred)
    keras_loss = keras.losses.CategoricalCrossentropy()(y_true, y_pred)
    assert float(ours) == pytest.approx(float(keras_loss), rel=1e-5)


def test_the_coarse_terms_match_a_direct_computation():
    rng = np.random.default_rng(1)
    y_pred = rng.dirichlet(np.ones(230), size=4)
    labels = np.array([15, 14, 225, 167])
    y_true = one_hot(labels)
    expected = []
    for p, number in zip(y_pred, labels):
        systems, lattices = p @ system_membership(), p @ bravais_membership()
        true_system = system_membership()[number - 1].argmax()
        true_lattice = bravais_membership()[number - 1].argmax()
        expected.append(-np.log(p[number - 1])
                        - 0.7 * (np.log(systems[true_system]) + np.log(lattices[true_lattice])))
    ours = LatticeAwareCrossentropy(0.7)(y_true, y_pred.astype(np.float32))
    assert float(ours) == pytest.approx(np.mean(expected), rel=1e-4)


def test_a_wrong_group_of_the_right_lattice_costs_less_than_one_of_another():
    """True C2/c (15): putting the rest on C2/m (12, also mS) beats putting it on P2_1/c (14,
    mP) under the lattice-aware loss; plain cross-entropy cannot tell the two apart."""
    y_true = one_hot([15])
    same_lattice = probabilities_with(0.2, {12: 0.7})
    other_lattice = probabilities_with(0.2, {14: 0.7})
    plain = LatticeAwareCrossentropy(0.0)
    aware = LatticeAwareCrossentropy(0.5)
    assert float(plain(y_true, same_lattice)) == pytest.approx(float(plain(y_true, other_lattice)))
    assert float(aware(y_true, same_lattice)) < float(aware(y_true, other_lattice)) - 0.5


def test_sample_weights_and_a_certain_right_answer():
    y_true = one_hot([15, 14])
    certain = np.concatenate([probabilities_with(1 - 1e-6), probabilities_with(1 - 1e-6, true_number=14)])
    assert float(LatticeAwareCrossentropy(1.0)(y_true, certain)) == pytest.approx(0.0, abs=1e-4)
    mixed = np.concatenate([probabilities_with(0.5), probabilities_with(0.1, true_number=14)])
    loss = LatticeAwareCrossentropy(1.0)
    first_only = float(loss(y_true, mixed, sample_weight=np.array([1.0, 0.0])))
    assert first_only == pytest.approx(float(loss(y_true[:1], mixed[:1])) / 2, rel=1e-5)


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf")])
def test_invalid_weights_are_refused(weight):
    with pytest.raises(ValueError, match="lattice loss weight"):
        LatticeAwareCrossentropy(weight)


def test_config_round_trip():
    loss = LatticeAwareCrossentropy(0.25)
    config = json.loads(json.dumps(loss.get_config()))
    assert LatticeAwareCrossentropy.from_config(config).weight == 0.25
