"""Figures of the classify page, built from real patterns preprocessed onto a model grid."""

from __future__ import annotations

import numpy as np
import pytest

from core.classify import Prediction
from core.examples import EXAMPLES_DIR
from core.explain import PeakInfluence
from core.grid import DEFAULT_GRID
from core.preprocess import Preprocessing, find_peaks, to_grid
from core.readers import read_pattern
from core.symmetry import CRYSTAL_SYSTEMS
from ui.figures_classify import (BACKGROUND, OPPOSES, PROFILE, SUPPORTS, TRUE, confusion_figure,
                                 influence_figure, pattern_figure, systems_figure,
                                 top_groups_figure)

GROUPS = [(62, "Pnma", 0.4), (14, "P2_1/c", 0.3), (227, "Fd-3m", 0.15), (12, "C2/m", 0.1),
          (2, "P-1", 0.05)]
SYSTEMS = [("orthorhombic", 0.4), ("monoclinic", 0.4), ("cubic", 0.15), ("triclinic", 0.05),
           ("tetragonal", 0.0), ("trigonal", 0.0), ("hexagonal", 0.0)]


def _prediction(file: str, preprocessing: Preprocessing = Preprocessing()) -> Prediction:
    pattern = read_pattern(EXAMPLES_DIR / file)
    prepared = to_grid(pattern, DEFAULT_GRID, preprocessing=preprocessing)
    return Prediction(file=file, space_groups=GROUPS, crystal_systems=SYSTEMS,
                      pattern=pattern, preprocessed=prepared)


def test_pattern_figure_profile_background_and_peaks():
    prediction = _prediction("R990001_LiFePO4_XY.txt", Preprocessing(background="snip"))
    peaks = find_peaks(prediction.preprocessed.profile, DEFAULT_GRID)
    figure = pattern_figure(prediction, DEFAULT_GRID, peaks)
    names = [trace.name for trace in figure.data]
    assert names == ["measured", "background", "model input", "peaks found"]
    measured, background, profile, marks = figure.data
    assert len(measured.x) == prediction.preprocessed.measured_two_theta.size
    assert background.line.color == BACKGROUND
    assert len(profile.y) == DEFAULT_GRID.size and profile.line.color == PROFILE
    assert len(marks.x) == len(peaks) > 5
    np.testing.assert_allclose(marks.y, np.interp(peaks, DEFAULT_GRID.angles,
                                                  prediction.preprocessed.profile), atol=1e-4)
    assert profile.yaxis == "y2" and measured.yaxis == "y"
    legend = figure.layout.legend  # below the x-axis title, not over the subplot titles
    assert legend.orientation == "h" and legend.yref == "container" and legend.y == 0


def test_pattern_figure_without_background_or_peaks():
    figure = pattern_figure(_prediction("TiO2.xy"), DEFAULT_GRID)
    assert [trace.name for trace in figure.data] == ["measured", "model input"]


def test_pattern_figure_draws_sticks_for_a_dif():
    prediction = _prediction("R990002_Si.dif")
    figure = pattern_figure(prediction, DEFAULT_GRID)
    sticks = figure.data[0]
    assert sticks.name == "peak list"
    n = prediction.pattern.two_theta.size
    assert len(sticks.x) == 3 * n
    y = np.asarray(sticks.y, dtype=float)
    np.testing.assert_allclose(y[1::3], prediction.pattern.intensity)
    assert np.all(y[0::3] == 0) and np.all(np.isnan(y[2::3]))


def test_pattern_figure_needs_a_preprocessed_pattern():
    with pytest.raises(ValueError, match="bad.xy"):
        pattern_figure(Prediction(file="bad.xy", error="bad.xy: file is empty"), DEFAULT_GRID)


def test_top_groups_figure_marks_the_truth():
    prediction = _prediction("TiO2.xy")
    figure = top_groups_figure(prediction, truth=227)
    bar = figure.data[0]
    assert list(bar.y) == ["62 Pnma", "14 P2_1/c", "227 Fd-3m", "12 C2/m", "2 P-1"]
    assert list(bar.x) == [p for _, _, p in GROUPS]
    assert list(bar.marker.color) == [PROFILE, PROFILE, TRUE, PROFILE, PROFILE]
    assert bar.customdata[0] == "orthorhombic"
    assert TRUE not in top_groups_figure(prediction).data[0].marker.color
    assert figure.layout.xaxis.range == pytest.approx((0, 0.4 * 1.15))


def test_top_groups_axis_follows_the_probabilities():
    def axis_end(probabilities):
        groups = [(n, s, p) for (n, s, _), p in zip(GROUPS, probabilities)]
        return top_groups_figure(Prediction(file="x.xy", space_groups=groups)).layout.xaxis.range[1]

    assert axis_end([0.03, 0.02, 0.01, 0.01, 0.01]) == pytest.approx(0.05)   # at least 5 %
    assert axis_end([0.1, 0.05, 0.02, 0.01, 0.01]) == pytest.approx(0.115)   # low ones readable
    assert axis_end([0.97, 0.01, 0.01, 0.005, 0.005]) == pytest.approx(1.0)  # never past 100 %


def test_systems_figure_has_all_seven():
    figure = systems_figure(_prediction("TiO2.xy"), truth=12)
    bar = figure.data[0]
    assert sorted(bar.x) == sorted(CRYSTAL_SYSTEMS)
    assert sum(bar.y) == pytest.approx(1.0)
    assert [c for x, c in zip(bar.x, bar.marker.color) if c == TRUE] == [TRUE]
    assert bar.x[list(bar.marker.color).index(TRUE)] == "monoclinic"


def test_confusion_figure():
    matrix = np.array([[2, 1], [0, 3]])
    figure = confusion_figure(matrix, ["62 Pnma", "14 P2_1/c"], title="t")
    heat = figure.data[0]
    np.testing.assert_array_equal(heat.z, matrix)
    assert list(heat.x) == ["62 Pnma", "14 P2_1/c"]
    assert heat.text[1][0] == "" and heat.text[1][1] == "3"
    with pytest.raises(ValueError, match="does not match"):
        confusion_figure(matrix, ["a", "b", "c"])


def _influences() -> list:
    return [PeakInfluence(30.0, 2.98, 1.0, 29.8, 30.2, 0.1, 0.3),
            PeakInfluence(50.0, 1.82, 0.8, 49.8, 50.2, 0.5, -0.1),
            PeakInfluence(70.0, 1.34, 0.5, 69.8, 70.2, 0.4, 0.001)]


def test_influence_figure_shades_the_peaks_that_matter_by_sign():
    profile = np.zeros(DEFAULT_GRID.size)
    figure = influence_figure(profile, DEFAULT_GRID, _influences(), "14 P2_1/c")
    line, bars = figure.data
    assert line.x.size == DEFAULT_GRID.size
    assert list(bars.x) == [30.0, 50.0, 70.0]
    assert list(bars.y) == pytest.approx([30.0, -10.0, 0.1])
    assert list(bars.marker.color) == [SUPPORTS, OPPOSES, SUPPORTS]
    shaded = [(s.x0, s.fillcolor) for s in figure.layout.shapes]
    assert shaded == [(29.8, SUPPORTS), (49.8, OPPOSES)]  # 70° moves it by under 5 % of the most
    assert "support for 14 P2_1/c" in [a.text for a in figure.layout.annotations]
