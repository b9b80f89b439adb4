"""Plotly figures and table helpers of the dataset page.

Pure functions: dataset tables (as stored by :mod:`core.dataset`) or arrays in, figures or
tables out. Nothing here calls Streamlit, so the page can cache the summaries and the tests
can check every figure without a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.rendering import DEFAULT_PADDED_LENGTH
from core.symmetry import CRYSTAL_SYSTEMS, by_number, space_groups
from ui.figure_style import LAYOUT, empty_figure

SYSTEM_COLOURS = dict(zip(CRYSTAL_SYSTEMS, ("#8c564b", "#e377c2", "#2ca02c", "#1f77b4",
                                            "#9467bd", "#ff7f0e", "#d62728")))
WEIGHT_COLOURS = {"none": "#7f7f7f", "sqrt": "#1f77b4", "balanced": "#d62728"}


# --------------------------------------------------------------------------- table summaries


def cell_volumes(table: pd.DataFrame) -> np.ndarray:
    """Cell volume (Å³) of each row from a, b, c, alpha, beta, gamma."""
    a, b, c = (table[k].to_numpy(float) for k in ("a", "b", "c"))
    cos = [np.cos(np.radians(table[k].to_numpy(float))) for k in ("alpha", "beta", "gamma")]
    root = 1 - cos[0] ** 2 - cos[1] ** 2 - cos[2] ** 2 + 2 * cos[0] * cos[1] * cos[2]
    return a * b * c * np.sqrt(np.clip(root, 0, None))


@lru_cache(maxsize=65536)
def formula_elements(formula: str) -> frozenset[str]:
    """Element symbols of a formula (pymatgen ``Composition``); empty when unparsable."""
    from pymatgen.core import Composition

    try:
        return frozenset(str(e) for e in Composition(formula).elements)
    except Exception:  # pymatgen raises several types for odd formulas
        return frozenset()


def element_counts(formulas: Iterable[str]) -> dict[str, int]:
    """Patterns containing each element (each formula parsed once)."""
    counts: dict[str, int] = {}
    for formula, n in pd.Series(list(formulas), dtype=object).value_counts().items():
        for element in formula_elements(str(formula)):
            counts[element] = counts.get(element, 0) + int(n)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def peak_counts(table: pd.DataFrame, relative: float = 0.0) -> np.ndarray:
    """Peaks per pattern; with ``relative`` > 0 only those at least that fraction of the
    strongest (``0.01``: peaks a person would see on a linear plot)."""
    if relative <= 0:
        return table["two_theta"].map(len).to_numpy(np.int64)
    return table["intensity"].map(
        lambda i: int(np.sum(np.asarray(i) >= relative * np.max(i))) if len(i) else 0
    ).to_numpy(np.int64)


def summarise_table(table: pd.DataFrame) -> dict:
    """Everything the overview figures need, computed once per dataset version."""
    from core.dataset import class_counts

    systems = table["crystal_system"].value_counts()
    return {
        "class_counts": class_counts(table["sg_number"].to_numpy()),
        "systems": {s: int(systems.get(s, 0)) for s in CRYSTAL_SYSTEMS},
        "peaks": peak_counts(table),
        "visible_peaks": peak_counts(table, 0.01),
        "volumes": cell_volumes(table),
        "elements": element_counts(table["formula"]),
    }


def imbalance(counts: np.ndarray, minimum: int) -> dict:
    """Class-imbalance facts from (230,) counts: empty groups, groups under ``minimum``
    (but not empty), and the ratio of the largest to the smallest non-empty class."""
    counts = np.asarray(counts)
    present = counts[counts > 0]
    return {
        "empty": [int(n) for n in np.flatnonzero(counts == 0) + 1],
        "rare": [int(n) for n in np.flatnonzero((counts > 0) & (counts < minimum)) + 1],
        "present": int(present.size),
        "ratio": float(present.max() / present.min()) if present.size else float("nan"),
        "largest": int(np.argmax(counts) + 1) if present.size else None,
    }


def filter_table(table: pd.DataFrame, systems: Sequence[str] = (), groups: Sequence[int] = (),
                 text: str = "", sources: Sequence[str] = ()) -> pd.DataFrame:
    """Rows matching every given filter (index kept).

    ``text``: space- or comma-separated terms; an element symbol matches patterns containing
    that element, anything else a case-insensitive part of the formula.
    """
    from pymatgen.core.periodic_table import Element

    mask = np.ones(len(table), dtype=bool)
    if systems:
        mask &= table["crystal_system"].isin(list(systems)).to_numpy()
    if groups:
        mask &= table["sg_number"].isin([int(g) for g in groups]).to_numpy()
    if sources:
        mask &= table["source"].isin(list(sources)).to_numpy()
    for term in text.replace(",", " ").split():
        if Element.is_valid_symbol(term):
            mask &= table["formula"].map(lambda f, e=term: e in formula_elements(str(f))).to_numpy(bool)
        else:
            mask &= table["formula"].str.contains(term, case=False, regex=False).to_numpy(bool)
    return table[mask]


def table_view(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a person reads (no peak arrays), with the space-group symbol and the
    number of peaks."""
    symbols = {g.number: g.symbol for g in space_groups()}
    view = table[["id", "source", "formula", "sg_number", "crystal_system", "a", "b", "c",
                  "alpha", "beta", "gamma", "n_sites"]].copy()
    view.insert(4, "symbol", view["sg_number"].map(symbols))
    view["peaks"] = table["two_theta"].map(len)
    return view


# --------------------------------------------------------------------------- overview figures


def space_group_figure(counts: np.ndarray, log: bool = False) -> go.Figure:
    """Patterns per space group 1-230, coloured by crystal system."""
    counts = np.asarray(counts)
    if counts.sum() == 0:
        return empty_figure("Patterns per space group", "No patterns")
    groups = space_groups()
    figure = go.Figure()
    for system in CRYSTAL_SYSTEMS:
        members = [g for g in groups if g.crystal_system == system]
        figure.add_bar(
            x=[g.number for g in members], y=[int(counts[g.number - 1]) for g in members],
            name=system, marker_color=SYSTEM_COLOURS[system],
            customdata=[g.symbol for g in members],
            hovertemplate="%{x} %{customdata}: %{y} patterns<extra>" + system + "</extra>")
    figure.update_xaxes(title="space group", range=[0.5, 230.5])
    figure.update_yaxes(title="patterns", type="log" if log else "linear")
    return figure.update_layout(title="Patterns per space group", bargap=0, **LAYOUT)


def crystal_system_figure(systems: Mapping[str, int]) -> go.Figure:
    """Share of patterns per crystal system."""
    if not sum(systems.values()):
        return empty_figure("Crystal systems", "No patterns")
    names = [s for s in CRYSTAL_SYSTEMS if systems.get(s, 0)]
    figure = go.Figure(go.Pie(labels=names, values=[systems[s] for s in names], sort=False,
                              marker_colors=[SYSTEM_COLOURS[s] for s in names], hole=0.35,
                              hovertemplate="%{label}: %{value} patterns (%{percent})<extra></extra>"))
    return figure.update_layout(title="Crystal systems", **LAYOUT)


def _bars(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram as (bin centres, counts, widths): a few hundred numbers reach the browser
    however large the dataset."""
    counts, edges = np.histogram(values, bins=edges)
    return (edges[:-1] + edges[1:]) / 2, counts, np.diff(edges)


def pattern_size_figure(peaks: np.ndarray, visible: np.ndarray | None = None,
                        cutoff: int = DEFAULT_PADDED_LENGTH) -> go.Figure:
    """Histogram of peaks per pattern (the length of the report's irregular arrays), with the
    padded representation's cut-off: patterns beyond it are dropped by that input type."""
    peaks = np.asarray(peaks)
    if peaks.size == 0:
        return empty_figure("Peaks per pattern", "No patterns")
    top = max(int(peaks.max()), cutoff)
    edges = np.arange(0, top + 2 * max(1, top // 150), max(1, top // 150)) - 0.5
    figure = go.Figure()
    series = [("all peaks (array length)", peaks, "#1f77b4")]
    if visible is not None:
        series.append(("peaks ≥ 1 % of the strongest", np.asarray(visible), "#ff7f0e"))
    for name, values, colour in series:
        x, y, width = _bars(values, edges)
        figure.add_bar(x=x, y=y, width=width, name=name, marker_color=colour, opacity=0.6,
                       customdata=np.stack([edges[:-1] + 0.5, edges[1:] - 0.5], axis=1),
                       hovertemplate="%{customdata[0]:.0f}–%{customdata[1]:.0f} peaks: "
                                     "%{y} patterns<extra></extra>")
    dropped = int(np.sum(peaks > cutoff))
    # The note goes on the side of the line with more room, so it is never cut off.
    figure.add_vline(x=cutoff, line_dash="dash", line_color="#d62728",
                     annotation_text=f"padded cut-off {cutoff}: {dropped} patterns "
                                     f"({100 * dropped / peaks.size:.1f} %) dropped",
                     annotation_position="top right" if cutoff < 0.5 * top * 1.05 else "top left")
    figure.update_xaxes(title="peaks in the pattern", range=[0, top * 1.05])
    figure.update_yaxes(title="patterns")
    return figure.update_layout(title="Peaks per pattern", barmode="overlay", bargap=0, **LAYOUT)


def lattice_figure(table: pd.DataFrame) -> go.Figure:
    """Distributions of the cell lengths (Å) and angles (°)."""
    if table.empty:
        return empty_figure("Lattice parameters", "No patterns")
    figure = make_subplots(rows=1, cols=2, subplot_titles=("cell lengths (Å)", "cell angles (°)"))
    for col, names in ((1, ("a", "b", "c")), (2, ("alpha", "beta", "gamma"))):
        values = table[list(names)].to_numpy(float)
        values = values[np.isfinite(values).all(axis=1)]
        low, high = (values.min(), values.max()) if values.size else (0.0, 1.0)
        edges = np.linspace(low, high + 1e-6 + (high - low) * 1e-3, 61)
        for i, (name, colour) in enumerate(zip(names, ("#1f77b4", "#ff7f0e", "#2ca02c"))):
            x, y, width = _bars(values[:, i], edges)
            figure.add_bar(x=x, y=y, width=width, name=name, marker_color=colour, opacity=0.55,
                           row=1, col=col,
                           hovertemplate=name + " ≈ %{x:.2f}: %{y} patterns<extra></extra>")
    figure.update_yaxes(title_text="patterns", row=1, col=1)
    # The subplot titles sit just above the plot area: the figure title needs a taller margin.
    layout = {**LAYOUT, "margin": {**LAYOUT["margin"], "t": 70}, "height": 350}
    return figure.update_layout(title="Lattice parameters", barmode="overlay", bargap=0, **layout)


def volume_figure(volumes: np.ndarray) -> go.Figure:
    """Histogram of cell volumes on a log scale."""
    volumes = np.asarray(volumes, dtype=float)
    volumes = volumes[np.isfinite(volumes) & (volumes > 0)]
    if volumes.size == 0:
        return empty_figure("Cell volume", "No patterns")
    edges = np.logspace(np.log10(volumes.min()) - 0.01, np.log10(volumes.max()) + 0.01, 41)
    counts, _ = np.histogram(volumes, bins=edges)
    centres = np.sqrt(edges[:-1] * edges[1:])
    figure = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_color="#17becf",
                              customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                              hovertemplate="%{customdata[0]:.0f}–%{customdata[1]:.0f} Å³: "
                                            "%{y} patterns<extra></extra>"))
    figure.update_xaxes(title="cell volume (Å³)", type="log")
    figure.update_yaxes(title="patterns")
    return figure.update_layout(title="Cell volume", bargap=0, **LAYOUT)


def _table_position(symbol: str) -> tuple[int, int] | None:
    """(row, column) on an 18-column periodic table; lanthanides and actinides on two extra
    rows below (rows 9 and 10)."""
    from pymatgen.core.periodic_table import Element

    try:
        element = Element(symbol)
    except ValueError:
        return None
    z = element.Z
    if 57 <= z <= 71:
        return 9, 3 + z - 57
    if 89 <= z <= 103:
        return 10, 3 + z - 89
    if z > 118:
        return None
    return element.row, element.group


def periodic_table_figure(counts: Mapping[str, int]) -> go.Figure:
    """Heat map of how many patterns contain each element, on the periodic table."""
    from pymatgen.core.periodic_table import Element

    if not counts:
        return empty_figure("Elements", "No parsable formulas")
    z = np.full((10, 18), np.nan)
    text = np.full((10, 18), "", dtype=object)
    hover = np.full((10, 18), "", dtype=object)
    for element in Element:
        position = _table_position(element.symbol)
        if position is None:
            continue
        row, col = position
        n = int(counts.get(element.symbol, 0))
        z[row - 1, col - 1] = np.log10(n) if n else np.nan
        text[row - 1, col - 1] = element.symbol
        hover[row - 1, col - 1] = f"{element.symbol} ({element.long_name}): {n} patterns"
    top = max(counts.values())
    ticks = [t for t in (1, 10, 100, 1000, 10000, 100000) if t <= max(top, 1)]
    figure = go.Figure(go.Heatmap(
        z=z, text=text, texttemplate="%{text}", customdata=hover, xgap=2, ygap=2,
        colorscale="YlOrRd", zmin=0, zmax=max(np.log10(top), 0.5),
        hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title="patterns", tickvals=np.log10(ticks), ticktext=[str(t) for t in ticks])))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(title="Elements (grey: absent)", plot_bgcolor="#eeeeee",
                         **{**LAYOUT, "height": 380})
    return figure


def element_bar_figure(counts: Mapping[str, int], top: int = 40) -> go.Figure:
    """The ``top`` most common elements as bars."""
    if not counts:
        return empty_figure("Elements", "No parsable formulas")
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    figure = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items],
                              marker_color="#bcbd22",
                              hovertemplate="%{x}: %{y} patterns<extra></extra>"))
    figure.update_yaxes(title="patterns containing it")
    return figure.update_layout(title=f"Most common elements (top {len(items)})", **LAYOUT)


def imbalance_figure(counts: np.ndarray, weights: Mapping[str, np.ndarray]) -> go.Figure:
    """Space groups ranked by size; for each weighting mode, the weight a class's patterns
    carry in the loss together (count × class weight), so a flat line means balanced."""
    counts = np.asarray(counts, dtype=float)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    if order.size == 0:
        return empty_figure("Class imbalance", "No patterns")
    rank = np.arange(1, order.size + 1)
    labels = [f"{n + 1} {by_number(n + 1).symbol}" for n in order]
    figure = go.Figure()
    for mode, weight in weights.items():
        share = counts[order] * np.asarray(weight)[order]
        figure.add_scatter(x=rank, y=share, mode="lines", name=f"weighting '{mode}'",
                           line=dict(color=WEIGHT_COLOURS.get(mode)), customdata=labels,
                           hovertemplate="%{customdata}: effective weight %{y:.3g}<extra>"
                                         + mode + "</extra>")
    figure.update_xaxes(title="space groups ranked by number of patterns")
    figure.update_yaxes(title="patterns × class weight", type="log")
    return figure.update_layout(title="What class weighting does", **LAYOUT)


# --------------------------------------------------------------------------- one pattern


def pattern_figure(two_theta: np.ndarray, intensity: np.ndarray, hkl: np.ndarray,
                   angles: np.ndarray, profile: np.ndarray, title: str) -> go.Figure:
    """Sticks (hkl on hover) and the profile rendered from them on the model grid."""
    two_theta = np.asarray(two_theta, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    scale = 100.0 / max(float(intensity.max()), 1e-12) if intensity.size else 1.0
    heights = intensity * scale
    xs = np.column_stack([two_theta, two_theta, np.full_like(two_theta, np.nan)]).ravel()
    ys = np.column_stack([np.zeros_like(heights), heights, np.full_like(heights, np.nan)]).ravel()
    labels = [f"({h} {k} {l})" for h, k, l in np.asarray(hkl).reshape(-1, 3)]
    figure = go.Figure()
    figure.add_scatter(x=np.asarray(angles), y=np.asarray(profile) * 100, mode="lines",
                       name="rendered profile (model input)", line=dict(color="#1f77b4", width=1),
                       hoverinfo="skip")
    figure.add_scatter(x=xs, y=ys, mode="lines", name="sticks", line=dict(color="#d62728"),
                       hoverinfo="skip")
    figure.add_scatter(x=two_theta, y=heights, mode="markers", name="hkl",
                       marker=dict(color="#d62728", size=5), customdata=labels,
                       hovertemplate="2θ %{x:.3f}°, I %{y:.1f}, hkl %{customdata}<extra></extra>",
                       showlegend=False)
    figure.update_xaxes(title="2θ (°)")
    figure.update_yaxes(title="relative intensity")
    return figure.update_layout(title=title, **LAYOUT)


def augmentation_figure(angles: np.ndarray, clean: np.ndarray, augmented: np.ndarray) -> go.Figure:
    """The clean profile and training-time variants of it, stacked with an offset."""
    figure = go.Figure()
    figure.add_scatter(x=angles, y=clean, mode="lines", name="clean", line=dict(color="black", width=1))
    for i, profile in enumerate(np.atleast_2d(augmented), 1):
        figure.add_scatter(x=angles, y=profile + 1.1 * i, mode="lines", name=f"variant {i}",
                           line=dict(width=1))
    figure.update_xaxes(title="2θ (°)")
    figure.update_yaxes(title="intensity (offset)", showticklabels=False)
    return figure.update_layout(title="Augmentation preview", **{**LAYOUT, "height": 360})
