"""Bootstrap intervals of metrics and of differences between two models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation import evaluate
from core.intervals import INTERVAL_METRICS, Interval, difference_interval, metric_interval


def one_hot(numbers, confidence: float = 0.9) -> np.ndarray:
    p = np.full((len(numbers), 230), (1 - confidence) / 229)
    p[np.arange(len(numbers)), np.asarray(numbers) - 1] = confidence
    return p


def predictions(truth: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Probabilities whose top choice is the truth where ``right``, else another group."""
    wrong = np.where(truth == 2, 14, 2)
    return one_hot(np.where(right, truth, wrong))


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return np.random.default_rng(0).choice([2, 14, 62, 166, 194, 225], size=400)


@pytest.mark.parametrize("metric", list(INTERVAL_METRICS))
def test_estimate_is_the_metric_of_the_whole_set_and_lies_inside(truth, metric):
    rng = np.random.default_rng(1)
    probabilities = predictions(truth, rng.random(len(truth)) < 0.3)
    interval = metric_interval(truth, probabilities, metric, resamples=300)
    assert interval.estimate == pytest.approx(getattr(evaluate(truth, probabilities), metric))
    assert interval.low <= interval.estimate <= interval.high
    assert interval.high - interval.low > 0


def test_top1_interval_has_the_binomial_width(truth):
    right = np.random.default_rng(2).random(len(truth)) < 0.25
    interval = metric_interval(truth, predictions(truth, right), "top1")
    p = right.mean()
    half_width = 1.96 * math.sqrt(p * (1 - p) / len(truth))  # normal approximation
    assert (interval.high - interval.low) / 2 == pytest.approx(half_width, rel=0.2)
    assert interval.confidence == 0.95


def test_wider_confidence_gives_a_wider_interval(truth):
    probabilities = predictions(truth, np.arange(len(truth)) % 3 == 0)
    narrow = metric_interval(truth, probabilities, "top5", confidence=0.5)
    wide = metric_interval(truth, probabilities, "top5", confidence=0.99)
    assert wide.low < narrow.low <= narrow.high < wide.high


def test_same_seed_same_interval(truth):
    probabilities = predictions(truth, np.arange(len(truth)) % 4 == 0)
    first = metric_interval(truth, probabilities, "macro_f1", resamples=200, seed=5)
    again = metric_interval(truth, probabilities, "macro_f1", resamples=200, seed=5)
    other = metric_interval(truth, probabilities, "macro_f1", resamples=200, seed=6)
    assert first == again
    assert first != other


def test_a_model_against_itself_differs_by_exactly_zero(truth):
    probabilities = predictions(truth, np.arange(len(truth)) % 2 == 0)
    for metric in INTERVAL_METRICS:
        interval = difference_interval(truth, probabilities, probabilities, metric, resamples=200)
        assert (interval.estimate, interval.low, interval.high) == (0, 0, 0)
        assert not interval.excludes_zero


def test_a_clearly_better_model_is_told_apart(truth):
    rng = np.random.default_rng(3)
    good = predictions(truth, rng.random(len(truth)) < 0.6)
    poor = predictions(truth, rng.random(len(truth)) < 0.2)
    interval = difference_interval(truth, good, poor, "top1")
    assert interval.estimate == pytest.approx(evaluate(truth, good).top1 - evaluate(truth, poor).top1)
    assert interval.low > 0 and interval.excludes_zero
    reverse = difference_interval(truth, poor, good, "top1")
    assert reverse.high < 0 and reverse.excludes_zero


def test_pairing_narrows_the_difference_of_two_similar_models(truth):
    """B is A with five more patterns right: the paired interval is far narrower than the
    two separate intervals, and here lies on the positive side."""
    right_a = np.random.default_rng(4).random(len(truth)) < 0.3
    right_b = right_a.copy()
    right_b[np.flatnonzero(~right_a)[:5]] = True
    a, b = predictions(truth, right_a), predictions(truth, right_b)
    separate = metric_interval(truth, a, "top1")
    paired = difference_interval(truth, b, a, "top1")
    assert paired.estimate == pytest.approx(5 / len(truth))
    assert paired.high - paired.low < (separate.high - separate.low) / 3
    assert paired.low >= 0


def test_too_few_patterns_give_no_bounds():
    interval = metric_interval(np.array([14]), one_hot([14]), "top1")
    assert interval.estimate == 1.0
    assert math.isnan(interval.low) and math.isnan(interval.high)
    assert not interval.excludes_zero


def test_bad_arguments_are_refused(truth):
    probabilities = one_hot(truth)
    with pytest.raises(ValueError, match="metric must be one of"):
        metric_interval(truth, probabilities, "accuracy")
    with pytest.raises(ValueError, match="shape"):
        metric_interval(truth, probabilities[:10], "top1")


def test_interval_serialises_to_a_plain_dict():
    assert Interval(0.2, 0.1, 0.3).to_dict() == {"estimate": 0.2, "low": 0.1, "high": 0.3,
                                                 "confidence": 0.95}


@pytest.mark.parametrize("metric", list(INTERVAL_METRICS))
def test_each_resample_is_scored_as_core_evaluation_scores_it(truth, metric):
    """The vectorised statistic (class counts per resample) agrees with scikit-learn's
    metrics on resamples that repeat some patterns and miss whole classes."""
    from core.intervals import _statistic

    rng = np.random.default_rng(7)
    probabilities = predictions(truth, rng.random(len(truth)) < 0.4)
    probabilities[:40] = one_hot(np.full(40, 230))  # a group the truth never holds
    rows = rng.integers(0, len(truth), (6, len(truth)))
    rows[0] = np.flatnonzero(truth != 2)[rng.integers(0, np.sum(truth != 2), len(truth))]
    scored = _statistic(metric, truth, probabilities)(rows)
    for row, value in zip(rows, scored):
        assert value == pytest.approx(getattr(evaluate(truth[row], probabilities[row]), metric))


@pytest.mark.parametrize("metric", ["top1", "balanced_accuracy"])
def test_draws_of_the_same_patterns_resample_patterns_not_rows(truth, metric):
    probabilities = predictions(truth, np.random.default_rng(3).random(len(truth)) < 0.4)
    single = metric_interval(truth, probabilities, metric, resamples=300, seed=4)
    # Three identical draws: the same patterns, so the same interval, not one sqrt(3) narrower.
    stacked = metric_interval(np.tile(truth, 3), np.tile(probabilities, (3, 1)), metric,
                              resamples=300, seed=4, draws=3)
    assert stacked.estimate == pytest.approx(single.estimate)
    assert (stacked.low, stacked.high) == pytest.approx((single.low, single.high))
    as_rows = metric_interval(np.tile(truth, 3), np.tile(probabilities, (3, 1)), metric,
                              resamples=300, seed=4)
    assert as_rows.high - as_rows.low < 0.8 * (single.high - single.low)


def test_draws_average_the_estimate_and_pair_differences(truth):
    rng = np.random.default_rng(5)
    first = predictions(truth, rng.random(len(truth)) < 0.2)
    second = predictions(truth, rng.random(len(truth)) < 0.5)
    labels, draws = np.tile(truth, 2), np.concatenate([first, second])
    interval = metric_interval(labels, draws, "top1", draws=2)
    assert interval.estimate == pytest.approx((evaluate(truth, first).top1
                                               + evaluate(truth, second).top1) / 2)
    same = difference_interval(labels, draws, draws, "top1", resamples=200, draws=2)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)


def test_rows_that_are_not_whole_draws_are_refused(truth):
    probabilities = one_hot(truth)
    with pytest.raises(ValueError, match="whole draws"):
        metric_interval(truth[:-1], probabilities[:-1], "top1", draws=2)
    with pytest.raises(ValueError, match="whole draws"):
        difference_interval(truth, probabilities, probabilities, "top1", draws=0)
