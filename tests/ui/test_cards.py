"""Model-card helpers: metrics beside baselines, real-data results, training facts."""

import json

import numpy as np
import pytest

from core.evaluation import evaluate
from core.registry import ModelMetadata
from ui.cards import (INTERVAL_COLUMNS, confidence_summary, effect_costs, external_confidence,
                      external_intervals, external_results, metrics_table, shown,
                      training_summary)


def test_metrics_table_puts_baselines_beside_the_model():
    labels = np.array([14, 14, 14, 62, 2])
    probabilities = np.full((5, 230), 1e-3)
    probabilities[np.arange(5), labels - 1] = 1.0
    table = metrics_table(evaluate(labels, probabilities).to_dict())
    assert table.loc["Space group top-1", "model"] == 100.0
    assert table.loc["Space group top-1", "majority class"] == 60.0
    assert table.loc["Crystal system accuracy", "majority class"] == 60.0
    assert metrics_table({}).empty


def test_shown_writes_one_decimal_and_marks_missing_baselines():
    rng = np.random.default_rng(0)
    table = metrics_table(evaluate(rng.integers(1, 231, 50), rng.dirichlet(np.ones(230), 50)).to_dict())
    text = shown(table)
    assert text.loc["Space group top-1", "model"] == f"{table.loc['Space group top-1', 'model']:.1f}"
    assert text.loc["Space group macro-F1", "majority class"] == "—"
    assert not text.isna().any().any() and "None" not in text.to_string()


def test_external_results_reads_the_accuracy_benchmark(tmp_path):
    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps({"results": [
        {"model": "default", "set": "RRUFF", "metrics": {"top1": 0.5}},
        {"model": "other", "set": "RRUFF", "metrics": {"top1": 0.1}}]}))
    assert external_results("default", path) == {"RRUFF": {"top1": 0.5}}
    assert external_results("default", tmp_path / "missing.json") == {}


def test_external_confidence_reads_only_entries_that_have_it(tmp_path):
    path = tmp_path / "accuracy.json"
    record = {"threshold": 0.25, "share": 0.4}
    path.write_text(json.dumps({"results": [
        {"model": "default", "set": "RRUFF", "metrics": {}, "confidence": record},
        {"model": "default", "set": "COD", "metrics": {}},
        {"model": "other", "set": "RRUFF", "confidence": {"share": 0.9}}]}))
    assert external_confidence("default", path) == {"RRUFF": record}
    assert external_confidence("default", tmp_path / "missing.json") == {}


def test_training_summary_describes_grid_and_data():
    meta = ModelMetadata(name="m", kind="resnet1d", dataset={"name": "d", "train": 8,
                                                             "validation": 1, "test": 1})
    facts = training_summary(meta)
    assert "2126 points" in facts["Input"]
    assert facts["Training data"].startswith("d: 8 train")


def test_training_summary_reports_epochs_run():
    meta = ModelMetadata(name="m", kind="resnet1d",
                         hyperparameters={"epochs": 300, "steps_per_epoch": 100})
    assert training_summary(meta, epochs_run=50)["Epochs"] == "50 (at most 300) × 100 batches"
    assert training_summary(meta)["Epochs"] == "300 × 100 batches"


def test_training_summary_says_whether_probabilities_are_reweighted():
    plain = ModelMetadata(name="m", kind="resnet1d")
    assert training_summary(plain)["Class prior"] == "as in its training data"
    adjusted = ModelMetadata(name="m", kind="resnet1d", training_prior=[1 / 230] * 230)
    assert "real crystals" in training_summary(adjusted)["Class prior"]


def test_training_summary_names_the_model_a_run_continued():
    assert "Started from" not in training_summary(ModelMetadata(name="m", kind="resnet1d"))
    continued = ModelMetadata(name="m", kind="resnet1d",
                              hyperparameters={"initial_model": "stage1", "epochs": 4})
    assert "'stage1'" in training_summary(continued)["Started from"]


def test_confidence_summary_reads_as_one_sentence():
    text = confidence_summary({"threshold": 0.25, "share": 0.3, "accuracy_above": 0.4,
                               "accuracy_below": 0.1, "ece_space_group": 0.052})
    assert text == ("Top space-group probability at least 25% (not flagged as low confidence) "
                    "for 30% of the patterns: right first 40% of the time, against 10% for the "
                    "flagged rest. Calibration error 5% (0 when the probabilities are honest).")
    assert "against — for" in confidence_summary({"threshold": 0.25, "share": 1.0,
                                                 "accuracy_above": 0.4,
                                                 "accuracy_below": float("nan")})


def test_metrics_table_puts_interval_ends_beside_the_model_when_given():
    labels = np.array([14, 14, 14, 62, 2])
    probabilities = np.full((5, 230), 1e-3)
    probabilities[np.arange(5), labels - 1] = 1.0
    metrics = evaluate(labels, probabilities).to_dict()
    table = metrics_table(metrics, {"top1": {"estimate": 1.0, "low": 0.8, "high": 1.0},
                                    "system_accuracy": {"estimate": 1.0, "low": float("nan"),
                                                        "high": float("nan")}})
    assert list(table.columns) == ["model", *INTERVAL_COLUMNS, "majority class", "class frequency"]
    assert list(table.loc["Space group top-1", ["model", *INTERVAL_COLUMNS]]) == [100.0, 80.0, 100.0]
    text = shown(table)
    assert text.loc["Space group top-5", INTERVAL_COLUMNS[0]] == "—"  # no interval given
    assert text.loc["Crystal system accuracy", INTERVAL_COLUMNS[1]] == "—"  # too few patterns
    assert list(metrics_table(metrics).columns) == ["model", "majority class", "class frequency"]


def test_external_intervals_reads_only_entries_that_have_them(tmp_path):
    path = tmp_path / "accuracy.json"
    intervals = {"top1": {"estimate": 0.5, "low": 0.4, "high": 0.6}}
    path.write_text(json.dumps({"results": [
        {"model": "default", "set": "RRUFF", "metrics": {}, "intervals": intervals},
        {"model": "default", "set": "COD", "metrics": {}},
        {"model": "other", "set": "RRUFF", "intervals": {}}]}))
    assert external_intervals("default", path) == {"RRUFF": intervals}
    assert external_intervals("default", tmp_path / "missing.json") == {}


def robustness_entry(condition: str, top1: float, cost: float, set_name: str = "default (all 10)",
                     model: str = "default") -> dict:
    interval = {"estimate": cost, "low": cost - 0.02, "high": cost + 0.01, "confidence": 0.95}
    return {"model": model, "set": set_name, "condition": condition,
            "metrics": {"top1": top1, "system_accuracy": top1 + 0.4},
            "cost": {"top1": interval, "system_accuracy": interval}}


def test_effect_costs_reads_the_robustness_benchmark(tmp_path):
    path = tmp_path / "robustness.json"
    path.write_text(json.dumps({"results": [
        robustness_entry("none (every effect off)", 0.30, 0.0),
        robustness_entry("impurity phase", 0.20, -0.10),
        robustness_entry("none (every effect off)", 0.5, 0.0, set_name="other"),
        robustness_entry("none (every effect off)", 0.1, 0.0, model="tiny")]}))
    set_name, costs = effect_costs("default", path)
    assert set_name == "default (all 10)"  # the first set the model was scored on
    assert list(costs.index) == ["none (every effect off)", "impurity phase"]
    row = costs.loc["impurity phase"]
    assert (row["top-1 %"], row["top-1 change"]) == pytest.approx((20.0, -10.0))
    assert (row["top-1 change low"], row["top-1 change high"]) == pytest.approx((-12.0, -9.0))
    assert row["crystal system %"] == pytest.approx(60.0)
    assert effect_costs("default", tmp_path / "missing.json")[1].empty
    nobody = effect_costs("nobody", path)
    assert nobody[0] == "" and nobody[1].empty
