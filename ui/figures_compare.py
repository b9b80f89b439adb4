"""Figures of the model comparison page: pure functions from evaluation data to plotly figures.

Confusion matrices have true classes as rows and predicted classes as columns, as returned by
:func:`core.evaluation.system_confusion` and :func:`core.evaluation.space_group_confusion`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.symmetry import CRYSTAL_SYSTEMS, by_number

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
HISTORY_METRICS = {"loss": "loss", "accuracy": "top-1 accuracy", "top5": "top-5 accuracy",
                   "learning_rate": "learning rate"}


def row_normalise(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without samples stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def _label(number: int) -> str:
    return f"{number} {by_number(int(number)).symbol}"


def system_confusion_figure(matrix: np.ndarray, normalise: bool = False,
                            title: str = "") -> go.Figure:
    """7x7 crystal-system confusion heat map, counts or row-normalised, values written in
    the cells."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.shape != (7, 7):
        raise ValueError(f"a crystal-system confusion matrix is 7x7, not {counts.shape}")
    shown = row_normalise(counts) if normalise else counts
    text = [[(f"{v:.0%}" if normalise else f"{v:.0f}") if c else "" for v, c in zip(r, rc)]
            for r, rc in zip(shown, counts)]
    figure = go.Figure(go.Heatmap(
        z=shown, x=list(CRYSTAL_SYSTEMS), y=list(CRYSTAL_SYSTEMS), text=text,
        texttemplate="%{text}", colorscale="Blues", customdata=counts,
        zmin=0, zmax=1 if normalise else None,
        colorbar=dict(title="fraction of row" if normalise else "patterns",
                      tickformat=".0%" if normalise else None),
        hovertemplate=("true %{y}<br>predicted %{x}<br>%{customdata:.0f} patterns"
                       + ("<br>%{z:.1%} of the true class" if normalise else "")
                       + "<extra></extra>")))
    figure.update_layout(title=title, height=460, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis_title="predicted", yaxis_title="true")
    figure.update_yaxes(autorange="reversed")
    return figure


def space_group_confusion_figure(matrix: np.ndarray, present_only: bool = False,
                                 title: str = "") -> go.Figure:
    """230x230 space-group confusion heat map, row-normalised with a logarithmic colour
    scale (empty cells blank); hover shows symbols, count and fraction.

    ``present_only`` keeps only the groups that occur as true or predicted class.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.shape != (230, 230):
        raise ValueError(f"a space-group confusion matrix is 230x230, not {counts.shape}")
    numbers = np.arange(1, 231)
    if present_only:
        keep = (counts.sum(axis=0) > 0) | (counts.sum(axis=1) > 0)
        counts, numbers = counts[np.ix_(keep, keep)], numbers[keep]
    fractions = row_normalise(counts)
    with np.errstate(divide="ignore"):
        z = np.where(fractions > 0, np.log10(np.where(fractions > 0, fractions, 1)), np.nan)
    lowest = float(np.floor(np.nanmin(z))) if np.isfinite(z).any() else -3.0
    lowest = min(lowest, -1.0)
    ticks = np.arange(lowest, 0.5, 1.0)
    labels = [_label(n) for n in numbers]
    figure = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, colorscale="Viridis", zmin=lowest, zmax=0,
        customdata=np.dstack([counts, fractions]), hoverongaps=False,
        colorbar=dict(title="fraction of row", tickvals=ticks,
                      ticktext=[f"{10 ** t:.3g}" for t in ticks]),
        hovertemplate=("true %{y}<br>predicted %{x}<br>%{customdata[0]:.0f} patterns, "
                       "%{customdata[1]:.1%} of the true class<extra></extra>")))
    size = 820 if len(numbers) > 60 else max(420, 14 * len(numbers) + 200)
    figure.update_layout(title=title, height=size, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis_title="predicted space group", yaxis_title="true space group")
    figure.update_xaxes(type="category", tickangle=-90, showgrid=False)
    figure.update_yaxes(type="category", autorange="reversed", showgrid=False,
                        scaleanchor="x", scaleratio=1)
    return figure


def prediction_scatter_figure(true_numbers: np.ndarray, predicted_numbers: np.ndarray,
                              title: str = "") -> go.Figure:
    """Predicted against true space-group number with the diagonal; marker area grows with
    the number of patterns at a point; correct and wrong predictions in two colours."""
    true_numbers = np.asarray(true_numbers, dtype=int)
    predicted_numbers = np.asarray(predicted_numbers, dtype=int)
    if true_numbers.shape != predicted_numbers.shape:
        raise ValueError(f"{len(true_numbers)} true but {len(predicted_numbers)} predicted numbers")
    pairs = pd.DataFrame({"true": true_numbers, "predicted": predicted_numbers})
    points = pairs.value_counts().rename("count").reset_index()
    figure = go.Figure(go.Scatter(x=[1, 230], y=[1, 230], mode="lines", name="true = predicted",
                                  line=dict(color="grey", dash="dash"), hoverinfo="skip"))
    for correct, name, colour in ((True, "correct", PALETTE[2]), (False, "wrong", PALETTE[3])):
        subset = points[(points["true"] == points["predicted"]) == correct]
        figure.add_trace(go.Scatter(
            x=subset["true"], y=subset["predicted"], mode="markers", name=name,
            marker=dict(color=colour, opacity=0.7,
                        size=5 + 4 * np.sqrt(subset["count"].to_numpy(dtype=float))),
            customdata=np.column_stack([[_label(n) for n in subset["true"]],
                                        [_label(n) for n in subset["predicted"]],
                                        subset["count"]]) if len(subset) else None,
            hovertemplate=("true %{customdata[0]}<br>predicted %{customdata[1]}<br>"
                           "%{customdata[2]} patterns<extra></extra>")))
    figure.update_layout(title=title, height=520, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis=dict(title="true space group", range=[0, 231]),
                         yaxis=dict(title="predicted space group", range=[0, 231],
                                    scaleanchor="x", scaleratio=1))
    return figure


def per_system_accuracy_figure(accuracies: dict[str, dict[str, float]],
                               title: str = "") -> go.Figure:
    """Bars of crystal-system accuracy within each true crystal system, one colour per model
    (``accuracies``: model -> {system: accuracy}, NaN where the set has no such pattern)."""
    figure = go.Figure()
    for index, (model, values) in enumerate(accuracies.items()):
        y = [values.get(system, float("nan")) for system in CRYSTAL_SYSTEMS]
        figure.add_trace(go.Bar(x=list(CRYSTAL_SYSTEMS), y=y, name=model,
                                marker_color=PALETTE[index % len(PALETTE)],
                                hovertemplate=f"{model}<br>%{{x}}: %{{y:.1%}}<extra></extra>"))
    figure.update_layout(title=title, barmode="group", height=400,
                         margin=dict(l=10, r=10, t=50, b=10),
                         yaxis=dict(title="accuracy", tickformat=".0%", range=[0, 1.05]),
                         xaxis_title="true crystal system", legend_title="model")
    return figure


def confidence_curve_figure(curves: dict[str, pd.DataFrame], threshold: float | None = None,
                            title: str = "") -> go.Figure:
    """Accuracy of each model's most confident predictions against the share of the set kept
    (``curves``: model -> :func:`core.evaluation.confidence_curve`); a marker where the kept
    patterns' top probability reaches down to ``threshold``."""
    figure = go.Figure()
    for index, (model, curve) in enumerate(curves.items()):
        if curve.empty:
            continue
        colour = PALETTE[index % len(PALETTE)]
        figure.add_trace(go.Scatter(
            x=curve["coverage"], y=curve["accuracy"], mode="lines", name=model,
            legendgroup=model, line=dict(color=colour), customdata=curve["threshold"],
            hovertemplate=(f"{model}<br>most confident %{{x:.1%}} of the set<br>"
                           "top probability ≥ %{customdata:.1%}<br>"
                           "accuracy %{y:.1%}<extra></extra>")))
        sure = curve[curve["threshold"] >= threshold] if threshold is not None else curve[:0]
        if len(sure):
            last = sure.iloc[-1]
            figure.add_trace(go.Scatter(
                x=[last["coverage"]], y=[last["accuracy"]], mode="markers", legendgroup=model,
                showlegend=False, marker=dict(color=colour, size=10, symbol="diamond"),
                hovertemplate=(f"{model}: top probability ≥ {threshold:.0%}<br>"
                               "%{x:.1%} of the set, accuracy %{y:.1%}<extra></extra>")))
    figure.update_layout(title=title, height=460, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis=dict(title="share of the set kept (most confident first)",
                                    tickformat=".0%", range=[0, 1.02]),
                         yaxis=dict(title="accuracy of the kept patterns", tickformat=".0%",
                                    range=[0, 1.05]),
                         legend=dict(orientation="h", yanchor="top", y=-0.2))
    return figure


def reliability_figure(tables: dict[str, pd.DataFrame], title: str = "") -> go.Figure:
    """Calibration: accuracy against mean top probability per probability bin, one line per
    model (``tables``: model -> :func:`core.evaluation.reliability`), marker area growing
    with the bin's patterns; the dashed diagonal is a perfectly calibrated model."""
    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                                  line=dict(color="grey", dash="dash"), hoverinfo="skip"))
    for index, (model, table) in enumerate(tables.items()):
        if table.empty:
            continue
        figure.add_trace(go.Scatter(
            x=table["confidence"], y=table["accuracy"], mode="lines+markers", name=model,
            line=dict(color=PALETTE[index % len(PALETTE)]),
            marker=dict(size=5 + 3 * np.sqrt(table["patterns"].to_numpy(dtype=float))),
            customdata=table[["low", "high", "patterns"]].to_numpy(),
            hovertemplate=(f"{model}<br>top probability %{{customdata[0]:.0%}}–"
                           "%{customdata[1]:.0%}: %{customdata[2]} patterns<br>"
                           "mean %{x:.1%}, accuracy %{y:.1%}<extra></extra>")))
    figure.update_layout(title=title, height=460, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis=dict(title="top probability (mean in the bin)", tickformat=".0%",
                                    range=[0, 1]),
                         yaxis=dict(title="accuracy in the bin", tickformat=".0%", range=[0, 1.05]),
                         legend=dict(orientation="h", yanchor="top", y=-0.2))
    return figure


def training_curves_figure(histories: dict[str, pd.DataFrame], metric: str = "accuracy",
                           title: str = "") -> go.Figure:
    """Training (solid) and validation (dashed) curves of ``metric`` per epoch, one colour
    per model; models whose history lacks the metric are left out."""
    figure = go.Figure()
    for index, (model, history) in enumerate(histories.items()):
        if history is None or history.empty or "epoch" not in history:
            continue
        colour = PALETTE[index % len(PALETTE)]
        for column, dash, part in ((metric, "solid", "training"), (f"val_{metric}", "dash", "validation")):
            if column in history and history[column].notna().any():
                figure.add_trace(go.Scatter(
                    x=history["epoch"], y=history[column], mode="lines+markers",
                    name=f"{model} ({part})", legendgroup=model,
                    line=dict(color=colour, dash=dash), marker=dict(size=4)))
    if not figure.data:
        figure.add_annotation(text="no training history with this metric", showarrow=False,
                              x=0.5, y=0.5, xref="paper", yref="paper")
    label = HISTORY_METRICS.get(metric, metric)
    figure.update_layout(title=title, height=420, margin=dict(l=10, r=10, t=50, b=10),
                         xaxis_title="epoch", yaxis_title=label)
    if metric in ("accuracy", "top5"):
        figure.update_yaxes(tickformat=".0%")
    if metric == "learning_rate":
        figure.update_yaxes(type="log")
    return figure


def effect_cost_figure(costs: pd.DataFrame, metric: str = "top-1") -> go.Figure:
    """Horizontal bars: the change in ``metric`` (points) that each rendering of
    :func:`ui.cards.effect_costs` causes, with its 95 % interval as error bars."""
    shown = costs.iloc[1:]  # the first row is the quiet reference itself
    change = shown[f"{metric} change"]
    colours = np.where(change < 0, PALETTE[3], PALETTE[2])  # a cost red, a gain green
    figure = go.Figure(go.Bar(
        x=change, y=shown.index, orientation="h", marker_color=colours,
        error_x=dict(type="data", symmetric=False, array=shown[f"{metric} change high"] - change,
                     arrayminus=change - shown[f"{metric} change low"]),
        hovertemplate="%{y}: %{x:+.1f} points<extra></extra>"))
    figure.update_xaxes(title=f"change in {metric} accuracy (points), 95 % interval",
                        zeroline=True, zerolinecolor="black")
    figure.update_yaxes(autorange="reversed")
    return figure.update_layout(title="What each measurement effect alone costs", height=420,
                                margin=dict(l=10, r=10, t=50, b=10))
