"""The model comparison page: the bundled model against a freshly trained tiny one; the
metrics table must show what core's evaluation computes, to the precision it displays."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT, RRUFF_DEV, needs_rruff
from core import evalsets
from core.classify import LOW_CONFIDENCE, Classifier
from core.dataset import load
from core.evaluation import accuracy_above
from core.intervals import difference_interval, metric_interval
from ui.compare_data import FREQUENCY, MAJORITY, METRIC_COLUMNS, SAMPLES, SECONDS

PAGE = str(PROJECT / "pages" / "compare.py")
PAIR = ["default", "tiny"]


def _app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def _compare(at: AppTest, kind: str) -> pd.DataFrame:
    at.multiselect(key="compare_models").set_value(PAIR)
    at.radio(key="compare_set").set_value(kind)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at.dataframe[0].value


def _percent(cell: str) -> float:
    assert cell.endswith("%"), cell
    return float(cell[:-1]) / 100


def _check_table(table: pd.DataFrame, labelled) -> None:
    """Each model row shows core's metrics computed directly on the same set (to the 0.1 %
    the table displays), and the baselines; gaps show "—", never "None"."""
    shown = partial(pytest.approx, abs=0.0005 + 1e-9)
    for name in PAIR:
        direct = evalsets.evaluate_model(Classifier.load(name, index=False), labelled).metrics
        row = table.loc[name]
        for column, attribute in METRIC_COLUMNS.items():
            assert _percent(row[column]) == shown(getattr(direct, attribute)), (name, column)
        assert row[SAMPLES] == direct.n
        assert float(row[SECONDS]) > 0
    assert _percent(table.loc[MAJORITY, "space group top-1"]) == shown(direct.majority_top1)
    assert _percent(table.loc[MAJORITY, "space group top-5"]) == shown(direct.majority_top5)
    assert _percent(table.loc[FREQUENCY, "space group top-1"]) == shown(direct.frequency_top1)
    assert _percent(table.loc[MAJORITY, "crystal system accuracy"]) == shown(direct.majority_system)
    assert _percent(table.loc[FREQUENCY, "crystal system accuracy"]) == shown(direct.frequency_system)
    assert table.loc[FREQUENCY, "space group top-5"] == "—"
    assert "None" not in table.to_string() and "nan" not in table.to_string()


def test_page_lists_models_and_needs_a_choice(tiny_model):
    at = _app()
    options = at.multiselect(key="compare_models").options
    assert "default" in options and "tiny" in options
    at.multiselect(key="compare_models").set_value([])
    at.run()
    assert not at.exception
    assert any("Pick the models" in info.value for info in at.info)
    assert not at.dataframe


def test_bundled_test_split_matches_core(tiny_model):
    at = _app()
    table = _compare(at, "Test split of a dataset")
    assert at.selectbox(key="compare_dataset").value == "default"
    assert list(table.index[:2]) == PAIR
    _check_table(table, evalsets.dataset_test_set(load("default")))
    # Figures: per-system bars, confidence and calibration, two 7x7 matrices, the 230-group
    # matrix, scatter, curves.
    assert len(at.get("plotly_chart")) == 8
    assert at.selectbox(key="compare_detail_model").options == PAIR
    labelled = evalsets.dataset_test_set(load("default"))
    direct = evalsets.evaluate_model(Classifier.load("default", index=False), labelled)
    tiny = evalsets.evaluate_model(Classifier.load("tiny", index=False), labelled)
    # How sure: each model's top-1 with its bootstrap interval, and the pair's difference.
    spread, pairs = at.dataframe[1].value, at.dataframe[2].value
    assert list(spread.index) == PAIR
    interval = metric_interval(direct.labels, direct.probabilities, "top1")
    assert [spread.loc["default", c] for c in ("value", "interval low", "interval high")] == [
        f"{interval.estimate:.1%}", f"{interval.low:.1%}", f"{interval.high:.1%}"]
    difference = difference_interval(direct.labels, direct.probabilities, tiny.probabilities, "top1")
    assert pairs[["model", "minus"]].values.tolist() == [PAIR]
    assert pairs.loc[0, "difference (points)"] == f"{100 * difference.estimate:+.1f}"
    assert pairs.loc[0, "interval low"] == f"{100 * difference.low:+.1f}"
    assert pairs.loc[0, "verdict"].endswith("is better" if difference.excludes_zero else "on this set")
    confidence = at.dataframe[3].value
    assert list(confidence.index) == PAIR
    split = accuracy_above(direct.labels, direct.probabilities, LOW_CONFIDENCE)
    assert confidence.loc["default", "flagged low confidence"] == f"{1 - split['share']:.1%}"
    assert confidence.loc["default", "accuracy, not flagged"] == f"{split['accuracy_above']:.1%}"
    per_class = at.dataframe[4].value
    assert {"space_group", "precision", "recall", "f1", "support"} <= set(per_class.columns)
    assert per_class["f1"].is_monotonic_increasing
    # Switching the detail model and the figure options reruns from the cache, without errors.
    at.selectbox(key="compare_detail_model").set_value("tiny")
    at.checkbox(key="compare_present_only").uncheck()
    at.selectbox(key="compare_history_metric").set_value("loss")
    at.radio(key="compare_confidence_level").set_value("crystal_system")
    at.selectbox(key="compare_interval_metric").set_value("macro_f1")
    at.run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value.equals(table)
    macro_f1 = metric_interval(direct.labels, direct.probabilities, "macro_f1")
    assert at.dataframe[1].value.loc["default", "interval high"] == f"{macro_f1.high:.1%}"


def test_a_dataset_a_model_trained_on_is_scored_on_that_models_held_out_rows(small_dataset):
    from core import registry
    from core.training import TrainingConfig, train

    train(small_dataset, TrainingConfig(name="compare-own-split", kind="baseline_ann", epochs=1,
                                        steps_per_epoch=1, batch_size=8, test=0.3, split_seed=5,
                                        hyperparameters={"units": 8}))
    at = _app()
    at.multiselect(key="compare_models").set_value(["default", "compare-own-split"])
    at.radio(key="compare_set").set_value("Test split of a dataset")
    at.run()
    at.selectbox(key="compare_dataset").set_value("small")
    at.run()
    assert not at.exception and not at.error
    meta = registry.read_metadata(registry.model_path("compare-own-split"))
    held_out = evalsets.held_out_test_set(small_dataset, [meta])
    assert len(held_out) == meta.dataset["test"]  # the run's own test split, not the default one
    assert list(at.dataframe[0].value.loc[["default", "compare-own-split"], SAMPLES]) == [len(held_out)] * 2
    assert any("held out of training by compare-own-split" in c.value for c in at.caption)


@needs_rruff
def test_rruff_dev_matches_core(tiny_model):
    at = _app()
    table = _compare(at, "RRUFF, 222 real patterns")
    labelled = evalsets.labelled_folder(RRUFF_DEV, name="RRUFF")
    _check_table(table, labelled)
    assert np.all(table.loc[PAIR, SAMPLES] <= len(labelled))


@needs_rruff
def test_rruff_minerals_from_their_dif_peak_lists_match_core(tiny_model):
    at = _app()
    table = _compare(at, "The same RRUFF minerals, from their DIF peak lists")
    labelled = evalsets.labelled_folder(RRUFF_DEV, name="DIF", column="structure_file")
    assert len(labelled) == 222 and all(p.is_sticks for p in labelled.patterns)
    _check_table(table, labelled)
    assert any("without the measurement" in c.value for c in at.caption)
