"""Class priors and the label-shift correction."""

from __future__ import annotations

import numpy as np
import pytest

from core.prior import FLOOR_OF_UNIFORM, adjust_for_prior, space_group_prior, training_prior
from core.symmetry import by_number


def test_real_world_prior_favours_common_groups():
    prior = space_group_prior()
    assert prior.shape == (230,) and np.isclose(prior.sum(), 1) and (prior > 0).all()
    # P2_1/c and P-1 are among the commonest inorganic groups; P1 2 1 (no. 3) is rare.
    assert prior[13] > 10 * prior[2] and prior[1] > 10 * prior[2]
    assert not prior.flags.writeable


def test_training_prior_counts_and_weights():
    labels = np.array([14, 14, 14, 225])
    plain = training_prior(labels)
    assert plain[13] == pytest.approx(0.75) and plain[224] == pytest.approx(0.25)
    weights = np.ones(230)
    weights[224] = 3.0  # three times the loss weight acts like three times the examples
    weighted = training_prior(labels, weights)
    assert weighted[13] == pytest.approx(0.5) and weighted[224] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        training_prior(np.array([], dtype=int))


def test_adjustment_is_bayes_rule():
    trained_on = np.full(230, 1 / 230)
    target = np.full(230, 1 / 230)
    target[13] *= 4
    target /= target.sum()
    probabilities = np.full((2, 230), 1 / 230)
    probabilities[1, 224] = 0.5
    probabilities[1] /= probabilities[1].sum()
    adjusted = adjust_for_prior(probabilities, trained_on, target)
    assert np.allclose(adjusted.sum(axis=1), 1)
    # A flat output takes the target prior; a confident one keeps its choice.
    assert np.allclose(adjusted[0], target)
    assert adjusted[1].argmax() == 224
    assert adjusted[1, 13] / adjusted[1, 0] == pytest.approx(4)


def test_same_prior_changes_nothing_and_rare_groups_are_bounded():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(230), size=5)
    prior = rng.dirichlet(np.full(230, 50.0))  # every group above the floor
    assert np.allclose(adjust_for_prior(probabilities, prior, prior), probabilities)
    trained_on = np.full(230, 1 / 229)
    trained_on[0] = 0.0  # a group the training set never showed
    adjusted = adjust_for_prior(probabilities, trained_on, np.full(230, 1 / 230))
    boost = adjusted[:, 0] / probabilities[:, 0] / (adjusted[:, 1] / probabilities[:, 1])
    # The unseen group is boosted as if it had FLOOR_OF_UNIFORM of a uniform share, no more.
    assert np.allclose(boost, (1 / 229) / (FLOOR_OF_UNIFORM / 230))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="230"):
        adjust_for_prior(np.ones((1, 230)) / 230, np.ones(7) / 7)


def test_prior_symbols_exist():
    top = np.argsort(-space_group_prior())[:3] + 1
    assert all(by_number(int(n)).symbol for n in top)
