"""Figures and table helpers of the dataset page, on the bundled dataset and on small tables
whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.dataset import class_counts
from core.grid import DEFAULT_GRID
from core.rendering import DEFAULT_PADDED_LENGTH, render
from core.symmetry import CRYSTAL_SYSTEMS
from ui import figures_dataset as fig


def _row(formula="NaCl", sg=225, system="cubic", source="cif", abc=(5.64, 5.64, 5.64),
         angles=(90.0, 90.0, 90.0), peaks=3):
    tt = np.linspace(20, 80, peaks).astype(np.float32)
    return {"id": f"{formula}-{sg}", "source": source, "formula": formula, "sg_number": sg,
            "crystal_system": system, "a": abc[0], "b": abc[1], "c": abc[2], "alpha": angles[0],
            "beta": angles[1], "gamma": angles[2], "n_sites": 8,
            "two_theta": tt, "intensity": np.r_[100.0, np.full(peaks - 1, 0.5)].astype(np.float32)}


@pytest.fixture(scope="module")
def table():
    return pd.DataFrame([
        _row(),
        _row("Fe2O3", 167, "trigonal", "synthetic", (5.03, 5.03, 13.75), (90, 90, 120), 300),
        _row("SiO2", 154, "trigonal", "synthetic", (4.91, 4.91, 5.40), (90, 90, 120), 40),
        _row("CaTiO3", 62, "orthorhombic", "cod", (5.44, 7.64, 5.38), (90, 90, 90), 120),
    ])


def test_cell_volumes(table):
    volumes = fig.cell_volumes(table)
    assert volumes[0] == pytest.approx(5.64 ** 3)
    hexagonal = 5.03 * 5.03 * 13.75 * np.sin(np.radians(120))
    assert volumes[1] == pytest.approx(hexagonal, rel=1e-6)
    assert volumes[3] == pytest.approx(5.44 * 7.64 * 5.38)


def test_element_counts_and_formula_parsing(table):
    counts = fig.element_counts(list(table["formula"]) + ["NaCl", "not a formula!"])
    assert counts["O"] == 3 and counts["Na"] == 2 and counts["Cl"] == 2 and counts["Fe"] == 1
    assert list(counts)[0] == "O"                     # most common first
    assert fig.formula_elements("Fe2O3") == {"Fe", "O"}
    assert fig.formula_elements("??") == frozenset()


def test_peak_counts(table):
    assert list(fig.peak_counts(table)) == [3, 300, 40, 120]
    assert list(fig.peak_counts(table, 0.01)) == [1, 1, 1, 1]  # only the strongest is ≥ 1 %


def test_imbalance():
    counts = np.zeros(230, int)
    counts[[0, 13, 224]] = [2, 40, 10]
    facts = fig.imbalance(counts, minimum=5)
    assert facts["rare"] == [1] and len(facts["empty"]) == 227 and facts["present"] == 3
    assert facts["ratio"] == pytest.approx(20.0) and facts["largest"] == 14
    assert np.isnan(fig.imbalance(np.zeros(230), 5)["ratio"])


def test_filter_table(table):
    assert list(fig.filter_table(table, systems=["trigonal"])["formula"]) == ["Fe2O3", "SiO2"]
    assert list(fig.filter_table(table, groups=[225, 62])["formula"]) == ["NaCl", "CaTiO3"]
    assert list(fig.filter_table(table, text="O")["formula"]) == ["Fe2O3", "SiO2", "CaTiO3"]
    assert list(fig.filter_table(table, text="Ti, O")["formula"]) == ["CaTiO3"]
    assert list(fig.filter_table(table, text="tio3")["formula"]) == ["CaTiO3"]  # formula part
    assert list(fig.filter_table(table, sources=["cod", "cif"])["formula"]) == ["NaCl", "CaTiO3"]
    kept = fig.filter_table(table, systems=["trigonal"], sources=["synthetic"], text="Si")
    assert list(kept.index) == [2]                   # index labels are kept
    assert fig.filter_table(table, systems=["cubic"], text="Fe").empty


def test_table_view(table):
    view = fig.table_view(table)
    assert "two_theta" not in view and "intensity" not in view
    assert list(view["symbol"]) == ["Fm-3m", "R-3c", "P3_221", "Pnma"]
    assert list(view["peaks"]) == [3, 300, 40, 120]


def test_space_group_figure(bundled_dataset):
    counts = class_counts(bundled_dataset.labels)
    figure = fig.space_group_figure(counts, log=True)
    assert isinstance(figure, go.Figure)
    assert [t.name for t in figure.data] == list(CRYSTAL_SYSTEMS)
    assert sum(sum(t.y) for t in figure.data) == len(bundled_dataset)
    assert sum(len(t.x) for t in figure.data) == 230
    cubic = figure.data[-1]
    assert cubic.x[-1] == 230 and cubic.customdata[-1] == "Ia-3d"
    assert figure.layout.yaxis.type == "log"
    assert fig.space_group_figure(counts).layout.yaxis.type == "linear"


def test_overview_figures_on_the_bundled_dataset(bundled_dataset):
    summary = fig.summarise_table(bundled_dataset.table)
    assert sum(summary["systems"].values()) == len(bundled_dataset)
    pie = fig.crystal_system_figure(summary["systems"])
    assert sum(pie.data[0].values) == len(bundled_dataset)

    sizes = fig.pattern_size_figure(summary["peaks"], summary["visible_peaks"])
    assert len(sizes.data) == 2
    assert sum(sizes.data[0].y) == sum(sizes.data[1].y) == len(bundled_dataset)
    assert len(sizes.data[0].x) < 400                    # binned: small, whatever the size
    cutoff = sizes.layout.shapes[0]
    assert cutoff.x0 == cutoff.x1 == DEFAULT_PADDED_LENGTH
    dropped = int(np.sum(summary["peaks"] > DEFAULT_PADDED_LENGTH))
    assert f"{dropped} patterns" in sizes.layout.annotations[0].text

    lattice = fig.lattice_figure(bundled_dataset.table)
    assert [t.name for t in lattice.data] == ["a", "b", "c", "alpha", "beta", "gamma"]
    assert all(sum(t.y) == len(bundled_dataset) for t in lattice.data)
    volumes = fig.volume_figure(summary["volumes"])
    assert sum(volumes.data[0].y) == len(bundled_dataset)
    assert volumes.layout.xaxis.type == "log"

    table_map = fig.periodic_table_figure(summary["elements"])
    heat = table_map.data[0]
    assert np.asarray(heat.z).shape == (10, 18)
    text = np.asarray(heat.text)
    assert text[0, 0] == "H" and text[0, 17] == "He" and text[3, 7] == "Fe"
    assert text[8, 2] == "La" and text[9, 2] == "Ac"   # f-block rows under the table
    oxygen = np.argwhere(text == "O")[0]
    assert f"{summary['elements']['O']} patterns" in np.asarray(heat.customdata)[tuple(oxygen)]
    bars = fig.element_bar_figure(summary["elements"], top=5)
    assert list(bars.data[0].x)[0] == "O" and len(bars.data[0].x) == 5


def test_imbalance_figure_shows_what_weighting_does():
    counts = np.zeros(230)
    counts[[0, 1, 2]] = [100, 10, 1]
    labels = np.repeat([1, 2, 3], [100, 10, 1])
    from core.training import class_weights

    weights = {m: class_weights(labels, m) for m in ("none", "sqrt", "balanced")}
    figure = fig.imbalance_figure(counts, weights)
    by_name = {t.name: np.asarray(t.y) for t in figure.data}
    balanced = by_name["weighting 'balanced'"]
    assert np.allclose(balanced, balanced[0])                  # every class weighs the same
    none = by_name["weighting 'none'"]
    assert none[0] / none[-1] == pytest.approx(100)
    sqrt = by_name["weighting 'sqrt'"]
    assert sqrt[0] / sqrt[-1] == pytest.approx(10)
    assert list(figure.data[0].customdata)[:2] == ["1 P1", "2 P-1"]


def test_pattern_and_augmentation_figures():
    tt = np.array([20.0, 30.0, 45.0], np.float32)
    intensity = np.array([50.0, 100.0, 25.0], np.float32)
    hkl = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    profile = render(tt[None], intensity[None], DEFAULT_GRID)[0]
    figure = fig.pattern_figure(tt, intensity, hkl, DEFAULT_GRID.angles, profile, "test")
    markers = next(t for t in figure.data if t.name == "hkl")
    assert list(markers.customdata) == ["(1 0 0)", "(1 1 0)", "(1 1 1)"]
    assert max(markers.y) == pytest.approx(100)
    profile_trace = figure.data[0]
    assert len(profile_trace.x) == DEFAULT_GRID.size and max(profile_trace.y) == pytest.approx(100)
    variants = np.random.default_rng(0).random((3, DEFAULT_GRID.size))
    preview = fig.augmentation_figure(DEFAULT_GRID.angles, profile, variants)
    assert [t.name for t in preview.data] == ["clean", "variant 1", "variant 2", "variant 3"]
    assert min(preview.data[3].y) >= 3.3 - 1e-6                  # stacked above the others


def test_empty_inputs_give_a_message_not_an_error():
    empty = pd.DataFrame(columns=["a", "b", "c", "alpha", "beta", "gamma"])
    for figure in (fig.space_group_figure(np.zeros(230)), fig.crystal_system_figure({}),
                   fig.pattern_size_figure(np.array([])), fig.lattice_figure(empty),
                   fig.volume_figure(np.array([])), fig.periodic_table_figure({}),
                   fig.element_bar_figure({}), fig.imbalance_figure(np.zeros(230), {})):
        assert isinstance(figure, go.Figure) and figure.layout.annotations


def _legend_below(figure: go.Figure) -> bool:
    """The legend sits at the bottom of the figure, clear of the title in the top margin."""
    legend = figure.layout.legend
    return (legend.orientation == "h" and legend.yref == "container" and legend.yanchor == "bottom"
            and legend.y == 0)


def test_legends_stay_clear_of_titles(bundled_dataset):
    summary = fig.summarise_table(bundled_dataset.table)
    weights = {"none": np.ones(230), "balanced": np.ones(230)}
    figures = [fig.space_group_figure(summary["class_counts"]),
               fig.crystal_system_figure(summary["systems"]),
               fig.pattern_size_figure(summary["peaks"], summary["visible_peaks"]),
               fig.lattice_figure(bundled_dataset.table),
               fig.imbalance_figure(summary["class_counts"], weights)]
    assert all(_legend_below(f) for f in figures)
    # The lattice figure's subplot titles sit above the plot area: its title gets more room.
    lattice = fig.lattice_figure(bundled_dataset.table)
    subplot_titles = [a.text for a in lattice.layout.annotations]
    assert subplot_titles == ["cell lengths (Å)", "cell angles (°)"]
    pie = fig.crystal_system_figure(summary["systems"])
    assert lattice.layout.margin.t >= 60 > pie.layout.margin.t


def test_cut_off_note_is_on_the_roomier_side():
    short = fig.pattern_size_figure(np.arange(1, 1000))
    assert short.layout.annotations[0].xanchor == "left"     # line on the left: note right of it
    long = fig.pattern_size_figure(np.arange(1, 100), cutoff=256)
    assert long.layout.annotations[0].xanchor == "right"
