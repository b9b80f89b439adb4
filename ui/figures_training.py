"""Plotly figures of a training run: learning curves, learning rate, confusion matrix.

Pure functions (tables in, figures out). Histories are shaped like a saved ``history.csv``
(``epoch``, ``loss``, ``accuracy``, ``top5``, ``val_*``, ``learning_rate``); batch tables
come from :func:`core.jobs.batch_frame` (``step`` in epochs, ``lr``, running logs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.symmetry import CRYSTAL_SYSTEMS
from ui.figure_style import LAYOUT, empty_figure

TRAIN_COLOUR, VALIDATION_COLOUR = "#1f77b4", "#ff7f0e"


def _has(frame: pd.DataFrame | None, column: str) -> bool:
    return frame is not None and column in frame and frame[column].notna().any()


def smooth(values: Sequence[float], weight: float = 0.6) -> np.ndarray:
    """Exponential moving average, bias-corrected so the first points are not pulled to 0.

    ``weight`` = 0 returns the values unchanged; values near 1 smooth strongly.
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    average, norm = 0.0, 0.0
    for i, value in enumerate(values):
        average = weight * average + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out[i] = average / norm
    return out


def loss_figure(history: pd.DataFrame) -> go.Figure:
    """Training and validation loss per epoch."""
    if not _has(history, "loss"):
        return empty_figure("Loss", "No finished epoch yet")
    figure = go.Figure()
    for column, label, colour in (("loss", "training", TRAIN_COLOUR),
                                  ("val_loss", "validation", VALIDATION_COLOUR)):
        if _has(history, column):
            figure.add_trace(go.Scatter(x=history["epoch"], y=history[column], name=label,
                                        mode="lines+markers", line=dict(color=colour)))
    figure.update_xaxes(title="epoch", rangemode="tozero")
    figure.update_yaxes(title="cross-entropy")
    return figure.update_layout(title="Loss", **LAYOUT)


def accuracy_figure(history: pd.DataFrame) -> go.Figure:
    """Top-1 (solid) and top-5 (dashed) accuracy per epoch, training and validation, in %."""
    if not _has(history, "accuracy"):
        return empty_figure("Accuracy", "No finished epoch yet")
    figure = go.Figure()
    for prefix, label, colour in (("", "training", TRAIN_COLOUR),
                                  ("val_", "validation", VALIDATION_COLOUR)):
        for metric, name, dash in (("accuracy", "top-1", "solid"), ("top5", "top-5", "dash")):
            column = prefix + metric
            if _has(history, column):
                figure.add_trace(go.Scatter(
                    x=history["epoch"], y=100 * history[column], name=f"{label} {name}",
                    mode="lines+markers", line=dict(color=colour, dash=dash)))
    figure.update_xaxes(title="epoch", rangemode="tozero")
    figure.update_yaxes(title="accuracy (%)", rangemode="tozero")
    return figure.update_layout(title="Accuracy", **LAYOUT)


def batch_figure(batches: pd.DataFrame, weight: float = 0.6) -> go.Figure:
    """Training loss as reported batch by batch (faint) and smoothed (solid)."""
    if not _has(batches, "loss"):
        return empty_figure("Training loss per batch", "No batch reported yet")
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=batches["step"], y=batches["loss"], name="reported",
                                mode="lines", line=dict(color=TRAIN_COLOUR, width=1),
                                opacity=0.35))
    figure.add_trace(go.Scatter(x=batches["step"], y=smooth(batches["loss"], weight),
                                name="smoothed", mode="lines", line=dict(color=TRAIN_COLOUR)))
    figure.update_xaxes(title="epoch", rangemode="tozero")
    figure.update_yaxes(title="cross-entropy")
    return figure.update_layout(title="Training loss per batch", **LAYOUT)


def learning_rate_figure(batches: pd.DataFrame | None = None,
                         history: pd.DataFrame | None = None) -> go.Figure:
    """The learning-rate schedule: per batch when available, else per epoch (log scale)."""
    if _has(batches, "lr"):
        x, y, mode = batches["step"], batches["lr"], "lines"
    elif _has(history, "learning_rate"):
        x, y, mode = history["epoch"], history["learning_rate"], "lines+markers"
    else:
        return empty_figure("Learning rate", "No learning rate recorded yet")
    figure = go.Figure(go.Scatter(x=x, y=y, mode=mode, name="learning rate",
                                  line=dict(color="#2ca02c", shape="hv")))
    figure.update_xaxes(title="epoch", rangemode="tozero")
    figure.update_yaxes(title="learning rate", type="log", exponentformat="power")
    return figure.update_layout(title="Learning rate", showlegend=False, **LAYOUT)


def system_confusion_figure(matrix: Sequence[Sequence[float]],
                            systems: Sequence[str] = CRYSTAL_SYSTEMS) -> go.Figure:
    """Crystal-system confusion matrix: colour = % of each true system (row), text = count.

    ``matrix[i][j]`` counts patterns of true system ``i`` predicted as system ``j``.
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape != (len(systems), len(systems)):
        raise ValueError(f"confusion matrix must be {len(systems)}×{len(systems)}, "
                         f"got shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    percent = np.divide(100 * counts, totals, out=np.zeros_like(counts), where=totals > 0)
    figure = go.Figure(go.Heatmap(
        z=percent, x=list(systems), y=list(systems), colorscale="Blues", zmin=0, zmax=100,
        text=counts.astype(int), texttemplate="%{text}", colorbar=dict(title="% of row"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text} patterns (%{z:.1f}%)"
                      "<extra></extra>"))
    figure.update_xaxes(title="predicted system", side="bottom")
    figure.update_yaxes(title="true system", autorange="reversed")
    layout = dict(LAYOUT, height=420)
    return figure.update_layout(title="Crystal-system confusion (test split)", **layout)
