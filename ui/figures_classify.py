"""Figures of the classify page: pure functions from predictions to plotly figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.classify import Prediction
from core.explain import PeakInfluence
from core.grid import TwoThetaGrid
from core.symmetry import by_number
from ui.figure_style import LEGEND_BELOW

MEASURED = "#7f7f7f"
BACKGROUND = "#ff7f0e"
PROFILE = "#1f6f8b"
PEAKS = "#d62728"
TRUE = "#2ca02c"
SUPPORTS = "#2ca02c"   # peaks that raise the explained group's probability
OPPOSES = "#d62728"    # and those that lower it
# Above this many points the measured trace is drawn with WebGL.
WEBGL_POINTS = 20000
# Horizontal legends at the bottom of the figure, below the x-axis title (as on the other pages).
# The probability axis of the space-group bars ends a little past the longest bar (room for its
# label), never below this, so a low-confidence ranking is still readable.
MIN_PROBABILITY_AXIS = 0.05


def pattern_figure(prediction: Prediction, grid: TwoThetaGrid,
                   peaks: Sequence[float] = ()) -> go.Figure:
    """Measured pattern with its estimated background (top) and the model input on the
    model's grid with the peaks found (bottom), both against 2θ at the model's wavelength.

    Stick patterns (DIF, CIF) are drawn as sticks in the top panel.
    """
    prepared = prediction.preprocessed
    if prepared is None:
        raise ValueError(f"{prediction.file}: no preprocessed pattern to plot")
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("measured", "model input"))
    tt = np.asarray(prepared.measured_two_theta, dtype=np.float64)
    intensity = np.asarray(prepared.measured_intensity, dtype=np.float64)
    sticks = prediction.pattern is not None and prediction.pattern.is_sticks
    if sticks:
        gap = np.full_like(tt, np.nan)
        x = np.column_stack([tt, tt, gap]).ravel()
        y = np.column_stack([np.zeros_like(intensity), intensity, gap]).ravel()
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name="peak list",
                                    line=dict(color=MEASURED, width=1.5)), row=1, col=1)
    else:
        scatter = go.Scattergl if tt.size > WEBGL_POINTS else go.Scatter
        figure.add_trace(scatter(x=tt, y=intensity, mode="lines", name="measured",
                                 line=dict(color=MEASURED, width=1)), row=1, col=1)
        background = np.asarray(prepared.background, dtype=np.float64)
        if background.size == tt.size and np.any(background):
            figure.add_trace(scatter(x=tt, y=background, mode="lines", name="background",
                                     line=dict(color=BACKGROUND, width=1.5, dash="dash")),
                             row=1, col=1)
    angles = grid.start + grid.step * np.arange(grid.size)
    figure.add_trace(go.Scatter(x=angles, y=np.asarray(prepared.profile, dtype=np.float64),
                                mode="lines", name="model input",
                                line=dict(color=PROFILE, width=1)), row=2, col=1)
    peaks = np.asarray(peaks, dtype=np.float64)
    if peaks.size:
        heights = np.interp(peaks, angles, prepared.profile)
        figure.add_trace(go.Scatter(x=peaks, y=heights, mode="markers", name="peaks found",
                                    marker=dict(color=PEAKS, symbol="triangle-down", size=7),
                                    hovertemplate="%{x:.2f}°<extra>peak</extra>"), row=2, col=1)
    low, high = prepared.coverage
    figure.add_vrect(x0=low, x1=high, fillcolor=PROFILE, opacity=0.05, line_width=0,
                     row=2, col=1)
    figure.update_yaxes(title_text="sticks" if sticks else "intensity", row=1, col=1)
    figure.update_yaxes(title_text="scaled", range=[-0.02, 1.05], row=2, col=1)
    figure.update_xaxes(title_text="2θ (°) at the model's wavelength", row=2, col=1)
    figure.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10),
                         legend=LEGEND_BELOW, title=None)
    return figure


def top_groups_figure(prediction: Prediction, truth: int | None = None) -> go.Figure:
    """Horizontal bars of the ranked space groups (best on top); the true group in green."""
    groups = prediction.space_groups
    labels = [f"{n} {s}" for n, s, _ in groups]
    colours = [TRUE if truth is not None and n == truth else PROFILE for n, _, _ in groups]
    systems = [by_number(n).crystal_system for n, _, _ in groups]
    figure = go.Figure(go.Bar(
        x=[p for _, _, p in groups], y=labels, orientation="h", marker_color=colours,
        customdata=systems, text=[f"{p:.1%}" for _, _, p in groups], textposition="auto",
        hovertemplate="%{y} (%{customdata})<br>%{x:.2%}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", type="category")
    top = max((p for _, _, p in groups), default=0.0)
    figure.update_xaxes(title_text="probability", tickformat=".0%",
                        range=[0, min(1.0, max(MIN_PROBABILITY_AXIS, 1.15 * top))])
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10),
                         title="space groups")
    return figure


def systems_figure(prediction: Prediction, truth: int | None = None) -> go.Figure:
    """Bars of the seven crystal-system probabilities, best first; the true system in green."""
    true_system = by_number(truth).crystal_system if truth is not None else None
    names = [name for name, _ in prediction.crystal_systems]
    figure = go.Figure(go.Bar(
        x=names, y=[p for _, p in prediction.crystal_systems],
        marker_color=[TRUE if n == true_system else PROFILE for n in names],
        text=[f"{p:.0%}" for _, p in prediction.crystal_systems], textposition="auto",
        hovertemplate="%{x}<br>%{y:.2%}<extra></extra>"))
    figure.update_yaxes(title_text="probability", range=[0, 1], tickformat=".0%")
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10),
                         title="crystal systems")
    return figure


def confusion_figure(matrix: np.ndarray, labels: Sequence[str], title: str = "") -> go.Figure:
    """Confusion heat map of counts (rows true, columns predicted), counts in the cells."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(labels):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match "
                         f"{len(labels)} labels")
    text = [[f"{v:.0f}" if v else "" for v in row] for row in counts]
    figure = go.Figure(go.Heatmap(
        z=counts, x=list(labels), y=list(labels), text=text, texttemplate="%{text}",
        colorscale="Blues", zmin=0, colorbar=dict(title="files"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.0f} files<extra></extra>"))
    size = max(320, min(900, 60 + 28 * len(labels)))
    figure.update_layout(title=title, height=size, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis_title="predicted", yaxis_title="true")
    figure.update_xaxes(type="category")
    figure.update_yaxes(type="category", autorange="reversed")
    return figure


def influence_figure(profile: np.ndarray, grid: TwoThetaGrid, influences: Sequence[PeakInfluence],
                     group_label: str) -> go.Figure:
    """The model input (top) with each peak's window shaded green where the peak supports
    ``group_label`` and red where it speaks against it, and (bottom) the change in the
    group's probability when that peak is taken out, in percentage points."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           row_heights=[0.55, 0.45],
                           subplot_titles=("model input", f"support for {group_label}"))
    figure.add_trace(go.Scatter(x=grid.angles, y=np.asarray(profile, dtype=np.float64),
                                mode="lines", name="model input", showlegend=False,
                                line=dict(color=PROFILE, width=1)), row=1, col=1)
    largest = max((abs(i.change) for i in influences), default=0.0)
    for i in influences:
        if largest > 0 and abs(i.change) >= 0.05 * largest:  # shade only the peaks that matter
            figure.add_vrect(x0=i.start, x1=i.stop, line_width=0, row=1, col=1,
                             fillcolor=SUPPORTS if i.change > 0 else OPPOSES,
                             opacity=0.1 + 0.4 * abs(i.change) / largest)
    figure.add_trace(go.Bar(
        x=[i.two_theta for i in influences], y=[100 * i.change for i in influences],
        marker_color=[SUPPORTS if i.change > 0 else OPPOSES for i in influences],
        width=max(0.25, 3 * grid.step), showlegend=False,
        customdata=[[i.d_spacing, 100 * i.probability_without] for i in influences],
        hovertemplate="2θ %{x:.2f}° (d %{customdata[0]:.3f} Å)<br>%{y:+.1f} points<br>"
                      "without it: %{customdata[1]:.1f}%<extra></extra>"), row=2, col=1)
    figure.update_yaxes(title_text="scaled", range=[-0.02, 1.05], row=1, col=1)
    figure.update_yaxes(title_text="points", zeroline=True, row=2, col=1)
    figure.update_xaxes(title_text="2θ (°) at the model's wavelength", row=2, col=1)
    figure.update_layout(height=460, margin=dict(l=10, r=10, t=40, b=10), title=None)
    return figure
