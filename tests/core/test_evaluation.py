"""Metrics and baselines on hand-made predictions whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation import (
    Metrics,
    accuracy_above,
    confidence_curve,
    confidence_record,
    crystal_system_probabilities,
    evaluate,
    expected_calibration_error,
    per_class_report,
    per_system_accuracy,
    reliability,
    space_group_confusion,
    system_confusion,
    top_choice,
    top_k,
)
from core.symmetry import CRYSTAL_SYSTEMS, by_number, system_membership


def one_hot(numbers, confidence: float = 1.0) -> np.ndarray:
    """Probabilities putting ``confidence`` on each given group and the rest spread evenly."""
    p = np.full((len(numbers), 230), (1 - confidence) / 229)
    p[np.arange(len(numbers)), np.asarray(numbers) - 1] = confidence
    return p


def test_perfect_predictions():
    y = np.array([1, 14, 14, 62, 225, 230, 167])
    metrics = evaluate(y, one_hot(y, 0.9))
    assert isinstance(metrics, Metrics)
    assert metrics.n == 7
    for value in (metrics.top1, metrics.top5, metrics.balanced_accuracy, metrics.macro_f1,
                  metrics.system_accuracy, metrics.system_balanced_accuracy):
        assert value == pytest.approx(1.0)
    assert set(metrics.to_dict()) == set(Metrics.__dataclass_fields__)


def test_majority_and_frequency_baselines():
    y = np.array([14, 14, 14, 2, 2, 225])
    metrics = evaluate(y, one_hot(np.full(6, 14)))  # always answers P2_1/c
    assert metrics.top1 == pytest.approx(0.5)
    assert metrics.majority_top1 == pytest.approx(0.5)
    assert metrics.majority_top5 == pytest.approx(1.0)  # only three classes
    assert metrics.frequency_top1 == pytest.approx((3 / 6) ** 2 + (2 / 6) ** 2 + (1 / 6) ** 2)
    # Systems: monoclinic 3, triclinic 2, cubic 1.
    assert metrics.majority_system == pytest.approx(0.5)
    assert metrics.frequency_system == pytest.approx(metrics.frequency_top1)
    assert metrics.system_accuracy == pytest.approx(0.5)
    # Balanced accuracy: recall 1 for group 14, 0 for 2 and 225.
    assert metrics.balanced_accuracy == pytest.approx(1 / 3)
    assert metrics.system_balanced_accuracy == pytest.approx(1 / 3)
    # F1 of group 14: precision 0.5, recall 1 -> 2/3; the others 0.
    assert metrics.macro_f1 == pytest.approx((2 / 3) / 3)


def test_majority_top5_with_many_classes():
    y = np.array([1] * 6 + [2] * 5 + [3] * 4 + [4] * 3 + [5] * 2 + [6] * 1 + [7] * 1)
    metrics = evaluate(y, one_hot(y))
    assert metrics.majority_top1 == pytest.approx(6 / 22)
    assert metrics.majority_top5 == pytest.approx(20 / 22)


def test_top5():
    y = np.array([100, 100])
    p = np.zeros((2, 230))
    # Row 0: the truth is ranked third; row 1: sixth.
    for rank, group in enumerate([1, 2, 100, 4, 5, 6]):
        p[0, group - 1] = 0.5 - rank * 0.05
    for rank, group in enumerate([1, 2, 3, 4, 5, 100]):
        p[1, group - 1] = 0.5 - rank * 0.05
    p /= p.sum(axis=1, keepdims=True)
    metrics = evaluate(y, p)
    assert metrics.top1 == 0.0
    assert metrics.top5 == pytest.approx(0.5)
    assert top_k(p, 5)[0].tolist() == [1, 2, 100, 4, 5]
    assert top_k(p, 1)[:, 0].tolist() == [1, 1]


def test_top_k_ties_are_stable():
    p = np.full((1, 230), 1 / 230)
    assert top_k(p, 3)[0].tolist() == [1, 2, 3]


def test_crystal_system_probabilities_match_membership():
    p = np.random.default_rng(0).dirichlet(np.ones(230), size=5)
    systems = crystal_system_probabilities(p)
    assert systems.shape == (5, 7)
    np.testing.assert_allclose(systems.sum(axis=1), 1.0)
    for row in range(5):
        for index, system in enumerate(CRYSTAL_SYSTEMS):
            members = [n for n in range(1, 231) if by_number(n).crystal_system == system]
            assert systems[row, index] == pytest.approx(p[row, np.array(members) - 1].sum())
    np.testing.assert_allclose(systems, p @ system_membership(), rtol=1e-6)


def test_system_prediction_sums_probabilities():
    # 0.3 on Fm-3m, but 0.7 spread over seven monoclinic groups: the system is monoclinic.
    p = np.zeros((1, 230))
    p[0, 224] = 0.3
    p[0, np.arange(3, 10) - 1] = 0.1
    metrics = evaluate(np.array([14]), p)
    assert top_k(p, 1)[0, 0] == 225
    assert metrics.top1 == 0.0 and metrics.system_accuracy == 1.0
    assert system_confusion(np.array([14]), p)[1, 1] == 1


def test_right_system_wrong_group():
    metrics = evaluate(np.array([14, 225]), one_hot([15, 229]))
    assert metrics.top1 == 0.0
    assert metrics.system_accuracy == 1.0


def test_confusion_matrices():
    y = np.array([14, 14, 225, 2])
    p = one_hot([14, 15, 225, 225])
    systems = system_confusion(y, p)
    assert systems.shape == (7, 7) and systems.sum() == 4
    assert systems[1, 1] == 2 and systems[6, 6] == 1 and systems[0, 6] == 1
    groups = space_group_confusion(y, p)
    assert groups.shape == (230, 230) and groups.sum() == 4
    assert groups[13, 13] == 1 and groups[13, 14] == 1 and groups[224, 224] == 1 and groups[1, 224] == 1


def test_per_class_report_worst_first():
    y = np.array([14, 14, 14, 14, 225, 225, 2])
    p = one_hot([14, 14, 14, 14, 225, 14, 225])
    report = per_class_report(y, p)
    assert list(report.columns) == ["space_group", "symbol", "crystal_system", "precision",
                                    "recall", "f1", "support"]
    assert report["f1"].is_monotonic_increasing
    assert report.iloc[0]["space_group"] == 2 and report.iloc[0]["f1"] == 0.0
    row = report.set_index("space_group").loc[14]
    assert row["symbol"] == "P2_1/c" and row["support"] == 4
    assert row["precision"] == pytest.approx(0.8) and row["recall"] == pytest.approx(1.0)
    assert set(report["space_group"]) == {2, 14, 225}


def test_per_system_accuracy():
    y = np.array([14, 14, 225])
    accuracy = per_system_accuracy(y, one_hot([14, 225, 225]))
    assert list(accuracy) == list(CRYSTAL_SYSTEMS)
    assert accuracy["monoclinic"] == pytest.approx(0.5)
    assert accuracy["cubic"] == pytest.approx(1.0)
    assert math.isnan(accuracy["triclinic"])


def test_nothing_to_evaluate():
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(np.zeros(0, np.int64), np.zeros((0, 230)))


def _four_patterns() -> tuple[np.ndarray, np.ndarray]:
    """Top probabilities 0.9 (right), 0.8 (wrong), 0.5 (right) and 0.3 (wrong)."""
    labels = np.array([1, 2, 3, 4])
    probabilities = np.full((4, 230), 0.0)
    for row, (top, p) in enumerate([(1, 0.9), (5, 0.8), (3, 0.5), (9, 0.3)]):
        probabilities[row, top - 1] = p
        probabilities[row, 200:] += (1 - p) / 30
    return labels, probabilities


def test_confidence_curve_keeps_the_most_confident_first():
    curve = confidence_curve(*_four_patterns())
    np.testing.assert_allclose(curve["coverage"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve["threshold"], [0.9, 0.8, 0.5, 0.3])
    np.testing.assert_allclose(curve["accuracy"], [1.0, 0.5, 2 / 3, 0.5])


def test_reliability_bins_and_calibration_error():
    table = reliability(*_four_patterns(), bins=10)
    assert list(table["patterns"]) == [1, 1, 1, 1]
    np.testing.assert_allclose(table["low"], [0.3, 0.5, 0.8, 0.9])
    np.testing.assert_allclose(table["confidence"], [0.3, 0.5, 0.8, 0.9])
    np.testing.assert_allclose(table["accuracy"], [0.0, 1.0, 0.0, 1.0])
    assert expected_calibration_error(table) == pytest.approx(0.25 * (0.3 + 0.5 + 0.8 + 0.1))
    certain = np.zeros((2, 230))
    certain[:, 0] = 1.0  # a top probability of exactly 1 falls in the last bin
    assert list(reliability(np.array([1, 2]), certain, bins=4)["high"]) == [1.0]
    assert np.isnan(expected_calibration_error(reliability(np.array([], int), np.zeros((0, 230)))))


def test_accuracy_above_a_threshold_splits_the_set():
    split = accuracy_above(*_four_patterns(), threshold=0.5)
    assert split == pytest.approx({"share": 0.75, "accuracy_above": 2 / 3, "accuracy_below": 0.0})
    assert np.isnan(accuracy_above(*_four_patterns(), threshold=0.95)["accuracy_above"])


def test_crystal_system_confidence_sums_the_groups_of_a_system():
    probabilities = np.zeros((1, 230))
    probabilities[0, [15, 2, 3]] = [0.4, 0.35, 0.25]  # P222 (orthorhombic); P2, P2_1 (monoclinic)
    confidence, correct = top_choice(np.array([3]), probabilities, "space_group")
    assert confidence[0] == pytest.approx(0.4) and not correct[0]
    confidence, correct = top_choice(np.array([3]), probabilities, "crystal_system")
    assert confidence[0] == pytest.approx(0.6) and correct[0]
    with pytest.raises(ValueError, match="level"):
        top_choice(np.array([3]), probabilities, "lattice")


def test_confidence_record_gathers_the_split_and_both_calibration_errors():
    labels, probabilities = _four_patterns()
    record = confidence_record(labels, probabilities, 0.5)
    assert record["threshold"] == 0.5
    assert {k: record[k] for k in ("share", "accuracy_above", "accuracy_below")} == \
        accuracy_above(labels, probabilities, 0.5)
    assert record["ece_space_group"] == expected_calibration_error(reliability(labels, probabilities))
    assert record["ece_crystal_system"] == expected_calibration_error(
        reliability(labels, probabilities, level="crystal_system"))
