"""Peak influence by occlusion, on a Keras model whose weights say which peaks matter."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.classify import Classifier
from core.explain import MAX_HALF_WIDTH_DEG, peak_influence, peak_windows, without_window
from core.grid import DEFAULT_GRID, two_theta_to_d
from core.registry import ModelMetadata

GRID = DEFAULT_GRID
ANGLES = GRID.angles


def gaussian_profile(peaks: dict[float, float], fwhm: float = 0.15) -> np.ndarray:
    sigma = fwhm / 2.3548
    y = sum(h * np.exp(-0.5 * ((ANGLES - c) / sigma) ** 2) for c, h in peaks.items())
    return (y / y.max()).astype(np.float32)


def window_weights(center: float, half_width: float = 0.3) -> np.ndarray:
    return (np.abs(ANGLES - center) <= half_width).astype(np.float32)


@pytest.fixture(scope="module")
def reader() -> Classifier:
    """A linear model that reads the 30° window as evidence for P2_1/c (14) and the 50°
    window as evidence for P-1 (2); it ignores everything else, 70° included."""
    inputs = keras.Input((GRID.size,))
    outputs = keras.layers.Dense(230, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((GRID.size, 230), np.float32)
    kernel[:, 13] = 2.0 * window_weights(30.0)
    kernel[:, 1] = 2.0 * window_weights(50.0)
    model.layers[-1].set_weights([kernel, np.zeros(230, np.float32)])
    return Classifier(model, ModelMetadata(name="reader", kind="baseline_ann"))


PROFILE = gaussian_profile({30.0: 1.0, 50.0: 0.8, 70.0: 0.5})


def test_each_peak_gets_a_window_from_foot_to_foot():
    windows = peak_windows(PROFILE, GRID)
    assert [round(ANGLES[peak], 2) for peak, _, _ in windows] == [30.0, 50.0, 70.0]
    for peak, first, last in windows:
        assert first < peak < last
        assert PROFILE[first] < 0.06 * PROFILE[peak] and PROFILE[last] < 0.06 * PROFILE[peak]
        assert (last - first) * GRID.step <= 2 * MAX_HALF_WIDTH_DEG + GRID.step


def test_a_broad_hump_is_cut_at_the_widest_window():
    (peak, first, last), = peak_windows(gaussian_profile({40.0: 1.0}, fwhm=5.0), GRID)
    assert (peak - first) * GRID.step == pytest.approx(MAX_HALF_WIDTH_DEG, abs=GRID.step)
    assert (last - peak) * GRID.step == pytest.approx(MAX_HALF_WIDTH_DEG, abs=GRID.step)


def test_removing_a_window_bridges_it_and_rescales_to_one():
    (peak, first, last), *_ = peak_windows(PROFILE, GRID)
    removed = without_window(PROFILE, first, last)
    assert removed.max() == pytest.approx(1.0)
    scale = 1 / 0.8  # the 50° peak is now the tallest
    bridge = np.linspace(PROFILE[first], PROFILE[last], last - first + 1) * scale
    np.testing.assert_allclose(removed[first:last + 1], bridge, rtol=1e-5, atol=1e-7)
    outside = np.r_[0:first, last + 1:GRID.size]
    np.testing.assert_allclose(removed[outside], PROFILE[outside] * scale, rtol=1e-5)


def test_the_peaks_the_model_reads_decide_and_the_others_do_not(reader):
    influences = peak_influence(reader, PROFILE, group=14)
    by_angle = {round(i.two_theta, 1): i for i in influences}
    assert set(by_angle) == {30.0, 50.0, 70.0}
    assert by_angle[30.0].change > 0.5           # the evidence for 14 itself
    assert by_angle[50.0].change < 0             # evidence for a rival group
    assert by_angle[70.0].change == pytest.approx(0, abs=1e-6)  # ignored by the model
    assert [abs(i.change) for i in influences] == sorted((abs(i.change) for i in influences), reverse=True)
    # Explaining the rival answer turns the signs round.
    rival = {round(i.two_theta, 1): i.change for i in peak_influence(reader, PROFILE, group=2)}
    assert rival[50.0] > 0 and rival[30.0] < 0


def test_probabilities_are_the_classifiers_own(reader):
    full = reader.predict_inputs(PROFILE[None])[0, 13]
    for influence, (peak, first, last) in zip(
            sorted(peak_influence(reader, PROFILE, group=14), key=lambda i: i.two_theta),
            peak_windows(PROFILE, GRID)):
        direct = reader.predict_inputs(without_window(PROFILE, first, last)[None])[0, 13]
        assert influence.probability_without == pytest.approx(direct, rel=1e-5)
        assert influence.change == pytest.approx(full - direct, abs=1e-6)
        assert influence.height == pytest.approx(PROFILE[peak])
        assert influence.d_spacing == pytest.approx(two_theta_to_d(ANGLES[peak], 1.54184))
        assert influence.start == pytest.approx(ANGLES[first]) and influence.stop == pytest.approx(ANGLES[last])


def test_a_flat_profile_has_no_peaks_to_weigh(reader):
    assert peak_influence(reader, np.zeros(GRID.size, np.float32), group=14) == []


def test_refusals_name_the_problem(reader):
    with pytest.raises(ValueError, match="expects 2126"):
        peak_influence(reader, PROFILE[:100], group=14)
    with pytest.raises(ValueError, match="not one of"):
        peak_influence(reader, PROFILE, group=231)
    sticks = Classifier(reader.model, ModelMetadata(name="sticks", kind="baseline_ann",
                                                    input_type="padded"))
    with pytest.raises(ValueError, match="peak lists"):
        peak_influence(sticks, PROFILE, group=14)
