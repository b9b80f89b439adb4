"""Figure functions of the model comparison page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.evaluation import (confidence_curve, per_system_accuracy, reliability,
                             space_group_confusion, system_confusion)
from core.symmetry import CRYSTAL_SYSTEMS
from ui import figures_compare as figs


def _one_hot(numbers, n_classes=230):
    probabilities = np.full((len(numbers), n_classes), 1e-4)
    probabilities[np.arange(len(numbers)), np.asarray(numbers) - 1] = 1.0
    return probabilities / probabilities.sum(axis=1, keepdims=True)


TRUE = np.array([1, 2, 14, 14, 14, 62, 225, 225, 194, 166])
PREDICTED = np.array([2, 2, 14, 14, 15, 62, 225, 221, 194, 166])


def test_row_normalise_leaves_empty_rows_zero():
    result = figs.row_normalise(np.array([[1, 3], [0, 0]]))
    assert np.allclose(result, [[0.25, 0.75], [0, 0]])


@pytest.mark.parametrize("normalise", [False, True])
def test_system_confusion_figure(normalise):
    matrix = system_confusion(TRUE, _one_hot(PREDICTED))
    figure = figs.system_confusion_figure(matrix, normalise=normalise, title="t")
    heat = figure.data[0]
    assert isinstance(heat, go.Heatmap)
    assert list(heat.x) == list(CRYSTAL_SYSTEMS) == list(heat.y)
    z = np.asarray(heat.z, dtype=float)
    if normalise:
        present = matrix.sum(axis=1) > 0
        assert np.allclose(z[present].sum(axis=1), 1)
        assert z.max() <= 1
    else:
        assert np.array_equal(z, matrix)
        assert z.sum() == len(TRUE)
    assert figure.layout.title.text == "t"
    # Empty cells carry no text; a filled one shows its value.
    assert heat.text[5][5] == "" or matrix[5, 5] > 0


def test_system_confusion_figure_rejects_wrong_shape():
    with pytest.raises(ValueError, match="7x7"):
        figs.system_confusion_figure(np.zeros((6, 6)))


def test_space_group_confusion_full_and_present_only():
    matrix = space_group_confusion(TRUE, _one_hot(PREDICTED))
    full = figs.space_group_confusion_figure(matrix, present_only=False)
    heat = full.data[0]
    assert np.asarray(heat.z).shape == (230, 230)
    assert heat.x[13] == "14 P2_1/c" and heat.y[224] == "225 Fm-3m"
    z = np.asarray(heat.z, dtype=float)
    assert np.isnan(z[99, 99])  # empty cell: blank, not log(0)
    assert z[13, 13] == pytest.approx(np.log10(2 / 3))  # row-normalised, log10
    custom = np.asarray(heat.customdata, dtype=float)
    assert custom[13, 14, 0] == 1 and custom[13, 14, 1] == pytest.approx(1 / 3)
    assert heat.zmax == 0 and heat.zmin <= -1
    assert "customdata[0]" in heat.hovertemplate

    present = figs.space_group_confusion_figure(matrix, present_only=True, title="p")
    labels = list(present.data[0].x)
    groups = sorted(set(TRUE) | set(PREDICTED))
    assert [int(label.split()[0]) for label in labels] == groups
    assert np.asarray(present.data[0].z).shape == (len(groups), len(groups))
    assert present.layout.yaxis.autorange == "reversed"


def test_space_group_confusion_rejects_wrong_shape():
    with pytest.raises(ValueError, match="230x230"):
        figs.space_group_confusion_figure(np.zeros((7, 7)))


def test_prediction_scatter_has_diagonal_and_counts():
    figure = figs.prediction_scatter_figure(TRUE, PREDICTED, title="s")
    diagonal, correct, wrong = figure.data
    assert list(diagonal.x) == [1, 230] == list(diagonal.y)
    assert all(x == y for x, y in zip(correct.x, correct.y))
    assert all(x != y for x, y in zip(wrong.x, wrong.y))
    # (14, 14) occurs twice: one point, count 2.
    index = [i for i, (x, y) in enumerate(zip(correct.x, correct.y)) if x == y == 14][0]
    assert correct.customdata[index][2] == "2"
    assert correct.customdata[index][0] == "14 P2_1/c"
    assert len(wrong.x) == 3
    with pytest.raises(ValueError):
        figs.prediction_scatter_figure(TRUE, PREDICTED[:-1])


def test_prediction_scatter_all_correct_leaves_wrong_trace_empty():
    figure = figs.prediction_scatter_figure([5, 5], [5, 5])
    assert len(figure.data[2].x) == 0


def test_per_system_accuracy_figure():
    accuracies = {"a": per_system_accuracy(TRUE, _one_hot(PREDICTED)),
                  "b": per_system_accuracy(TRUE, _one_hot(TRUE))}
    figure = figs.per_system_accuracy_figure(accuracies, title="bars")
    assert [trace.name for trace in figure.data] == ["a", "b"]
    assert list(figure.data[0].x) == list(CRYSTAL_SYSTEMS)
    assert figure.layout.barmode == "group"
    perfect = np.asarray(figure.data[1].y, dtype=float)
    assert np.isnan(perfect[3])  # no tetragonal pattern in the set: a gap, not 0
    assert np.allclose(np.delete(perfect, 3), 1.0)
    wrong_system = per_system_accuracy([1, 2], _one_hot([1, 14]))
    figure = figs.per_system_accuracy_figure({"c": wrong_system})
    assert figure.data[0].y[0] == pytest.approx(0.5)  # triclinic: 1 of 2 right


def test_training_curves_overlay():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5],
                            "val_loss": [3.2, 2.5, 2.0], "accuracy": [0.1, 0.3, 0.5],
                            "val_accuracy": [0.1, 0.2, 0.4]})
    no_validation = history.drop(columns=["val_accuracy", "val_loss"])
    figure = figs.training_curves_figure({"a": history, "b": no_validation, "c": pd.DataFrame()},
                                         metric="accuracy")
    names = [trace.name for trace in figure.data]
    assert names == ["a (training)", "a (validation)", "b (training)"]
    assert figure.data[1].line.dash == "dash"
    assert figure.data[0].line.color == figure.data[1].line.color != figure.data[2].line.color
    assert figure.layout.yaxis.tickformat == ".0%"


def test_training_curves_without_metric_says_so():
    figure = figs.training_curves_figure({"a": pd.DataFrame({"epoch": [1], "loss": [1.0]})},
                                         metric="learning_rate")
    assert not figure.data
    assert "no training history" in figure.layout.annotations[0].text


def test_figures_export_to_html():
    figure = figs.system_confusion_figure(np.eye(7) * 3)
    html = figure.to_html(include_plotlyjs="cdn")
    assert "cdn.plot.ly" in html and "<html>" in html


def _graded(seed: int) -> np.ndarray:
    """Probabilities whose top choice is PREDICTED, with top probabilities spread 0.2-0.95."""
    rng = np.random.default_rng(seed)
    tops = rng.uniform(0.2, 0.95, len(PREDICTED))
    probabilities = np.tile((1 - tops)[:, None] / 229, (1, 230))
    probabilities[np.arange(len(PREDICTED)), PREDICTED - 1] = tops
    return probabilities


def test_confidence_curve_figure_one_line_and_threshold_marker_per_model():
    curves = {"a": confidence_curve(TRUE, _graded(0)), "b": confidence_curve(TRUE, _graded(1)),
              "empty": confidence_curve(TRUE[:0], _graded(2)[:0])}
    figure = figs.confidence_curve_figure(curves, threshold=0.25)
    lines = [t for t in figure.data if t.mode == "lines"]
    markers = [t for t in figure.data if t.mode == "markers"]
    assert [t.name for t in lines] == ["a", "b"] and len(markers) == 2
    for name, marker in zip(("a", "b"), markers):
        sure = curves[name][curves[name]["threshold"] >= 0.25]
        assert marker.x[0] == pytest.approx(sure["coverage"].iloc[-1])
        assert marker.y[0] == pytest.approx(sure["accuracy"].iloc[-1])
    assert list(lines[0].y) == pytest.approx(list(curves["a"]["accuracy"]))
    assert not [t for t in figs.confidence_curve_figure(curves, threshold=0.99).data
                if t.mode == "markers"]


def test_reliability_figure_has_the_diagonal_and_one_line_per_model():
    tables = {"a": reliability(TRUE, _graded(0)), "b": reliability(TRUE, _graded(1), bins=5)}
    figure = figs.reliability_figure(tables)
    assert [t.name for t in figure.data] == ["calibrated", "a", "b"]
    assert list(figure.data[1].x) == pytest.approx(list(tables["a"]["confidence"]))
    assert list(figure.data[2].y) == pytest.approx(list(tables["b"]["accuracy"]))
    assert sum(figure.data[1].customdata[:, 2]) == len(TRUE)


def test_effect_cost_figure_shows_every_effect_with_its_interval():
    costs = pd.DataFrame({"top-1 %": [30.0, 20.0, 31.0], "top-1 change": [0.0, -10.0, 1.0],
                          "top-1 change low": [0.0, -12.0, -0.5],
                          "top-1 change high": [0.0, -9.0, 2.0]},
                         index=["none (every effect off)", "impurity phase", "background"])
    figure = figs.effect_cost_figure(costs)
    bar = figure.data[0]
    assert list(bar.y) == ["impurity phase", "background"]  # the quiet reference is not a bar
    assert list(bar.x) == [-10.0, 1.0]
    assert list(bar.error_x.array) == pytest.approx([1.0, 1.0])
    assert list(bar.error_x.arrayminus) == pytest.approx([2.0, 1.5])
    assert bar.marker.color[0] != bar.marker.color[1]  # a cost and a gain look different
    assert "top-1" in figure.layout.xaxis.title.text
