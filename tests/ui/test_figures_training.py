"""Training figures: learning curves, learning rate, smoothing, confusion heat map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.symmetry import CRYSTAL_SYSTEMS
from ui.figures_training import (accuracy_figure, batch_figure, learning_rate_figure,
                                 loss_figure, smooth, system_confusion_figure)

HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "loss": [5.0, 4.0, 3.5], "val_loss": [5.2, 4.4, 4.1],
                        "accuracy": [0.01, 0.05, 0.10], "top5": [0.05, 0.2, 0.3],
                        "val_accuracy": [0.0, 0.04, 0.08], "val_top5": [0.03, 0.1, 0.2],
                        "learning_rate": [1e-3, 1e-3, 5e-4]})
BATCHES = pd.DataFrame({"step": [0.5, 1.0, 1.5, 2.0], "epoch": [1, 1, 2, 2],
                        "batch": [1, 2, 1, 2], "lr": [1e-3, 1e-3, 1e-3, 5e-4],
                        "loss": [5.5, 5.0, 4.5, 4.2]})


def names(figure: go.Figure) -> list[str]:
    return [trace.name for trace in figure.data]


def is_placeholder(figure: go.Figure) -> bool:
    return not figure.data and len(figure.layout.annotations) == 1


def test_smooth():
    assert np.allclose(smooth([1, 2, 3], 0.0), [1, 2, 3])
    values = smooth([4.0, 4.0, 4.0], 0.9)
    assert np.allclose(values, 4.0)  # bias-corrected: a constant stays constant
    noisy = smooth([0, 10, 0, 10, 0, 10], 0.6)
    assert noisy.max() - noisy.min() < 10
    assert smooth([], 0.5).size == 0
    with pytest.raises(ValueError, match="smoothing weight"):
        smooth([1.0], 1.0)


def test_loss_figure():
    figure = loss_figure(HISTORY)
    assert names(figure) == ["training", "validation"]
    assert list(figure.data[1].y) == [5.2, 4.4, 4.1]
    assert figure.layout.xaxis.title.text == "epoch"
    only_training = loss_figure(HISTORY[["epoch", "loss"]])
    assert names(only_training) == ["training"]
    assert is_placeholder(loss_figure(pd.DataFrame(columns=["epoch", "learning_rate"])))


def test_accuracy_figure_in_percent():
    figure = accuracy_figure(HISTORY)
    assert names(figure) == ["training top-1", "training top-5", "validation top-1",
                             "validation top-5"]
    assert np.allclose(figure.data[0].y, [1, 5, 10])
    assert figure.data[1].line.dash == "dash"
    assert is_placeholder(accuracy_figure(pd.DataFrame()))


def test_batch_figure_has_reported_and_smoothed_curves():
    figure = batch_figure(BATCHES, weight=0.5)
    assert names(figure) == ["reported", "smoothed"]
    assert list(figure.data[0].x) == [0.5, 1.0, 1.5, 2.0]
    assert np.allclose(figure.data[1].y, smooth(BATCHES["loss"], 0.5))
    assert is_placeholder(batch_figure(pd.DataFrame(columns=["step", "lr"])))


def test_learning_rate_figure_prefers_batches():
    per_batch = learning_rate_figure(BATCHES, HISTORY)
    assert list(per_batch.data[0].x) == [0.5, 1.0, 1.5, 2.0]
    assert per_batch.layout.yaxis.type == "log"
    per_epoch = learning_rate_figure(None, HISTORY)
    assert list(per_epoch.data[0].y) == [1e-3, 1e-3, 5e-4]
    assert is_placeholder(learning_rate_figure(None, None))


def test_system_confusion_figure():
    matrix = np.zeros((7, 7), int)
    matrix[0, 0], matrix[0, 1], matrix[6, 6] = 3, 1, 2
    figure = system_confusion_figure(matrix.tolist())
    heat = figure.data[0]
    assert list(heat.x) == list(CRYSTAL_SYSTEMS) and list(heat.y) == list(CRYSTAL_SYSTEMS)
    z = np.asarray(heat.z)
    assert z[0, 0] == pytest.approx(75) and z[0, 1] == pytest.approx(25)
    assert z[6, 6] == pytest.approx(100) and np.all(z[1:6] == 0)  # empty rows are 0, not NaN
    assert np.asarray(heat.text)[0, 0] == 3
    with pytest.raises(ValueError, match="7×7"):
        system_confusion_figure([[1, 2], [3, 4]])


def test_legends_sit_below_the_plot_clear_of_the_title():
    for figure in (loss_figure(HISTORY), accuracy_figure(HISTORY), batch_figure(BATCHES)):
        legend = figure.layout.legend
        assert legend.orientation == "h" and legend.yref == "container"
        assert legend.yanchor == "bottom" and legend.y == 0
        assert figure.layout.title.text and figure.layout.margin.t >= 40
