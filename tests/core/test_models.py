"""Every model builder builds for the grid and padded inputs and ends in a 230-way softmax."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.grid import DEFAULT_GRID
from core.models import BUILDERS, ModelKind, build, grow_resnet1d
from core.models.layers import Autocorrelation, LogSinThetaResampling, log_sin_theta_edges

# Small versions of each builder so that the tests stay fast.
TINY = {
    "baseline_ann": {"units": 16},
    "optimised_ann": {"units": 16, "depth": 2},
    "report_cnn": {"filters": 4, "dense_units": 16},
    "resnet1d": {"width": 8, "dense_units": 32},
}


def test_builder_table():
    assert set(BUILDERS) == {"baseline_ann", "optimised_ann", "report_cnn", "resnet1d"}
    for key, kind in BUILDERS.items():
        assert isinstance(kind, ModelKind)
        assert kind.key == key and kind.label and kind.description
        assert callable(kind.builder)


def check_model(model: keras.Model, input_length: int) -> None:
    assert model.input_shape == (None, input_length)
    assert model.output_shape == (None, 230)
    x = np.random.default_rng(0).random((3, input_length)).astype(np.float32)
    p = np.asarray(model(x, training=False))
    assert p.shape == (3, 230)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_builds_for_grid_input(kind):
    model = build(kind, DEFAULT_GRID.size, **TINY[kind])
    assert DEFAULT_GRID.size == 2126
    check_model(model, 2126)
    assert model.name == kind


@pytest.mark.parametrize("kind", ["baseline_ann", "optimised_ann"])
def test_anns_build_for_padded_input(kind):
    check_model(build(kind, 512, **TINY[kind]), 512)


def test_hyperparameters_change_the_model():
    small = build("baseline_ann", 512, units=16)
    large = build("baseline_ann", 512, units=32)
    assert small.count_params() < large.count_params()
    deeper = build("baseline_ann", 512, units=16, depth=3)
    assert len(deeper.layers) == len(small.layers) + 1


def test_n_classes():
    model = build("baseline_ann", 100, n_classes=7, units=8)
    assert model.output_shape == (None, 7)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown model kind"):
        build("transformer", 2126)


def test_unknown_hyperparameter_raises():
    with pytest.raises(TypeError):
        build("baseline_ann", 512, nonexistent=1)


def test_log_d_resampling_moves_peaks_to_ln_sin_theta_and_keeps_their_area():
    grid = DEFAULT_GRID
    layer = LogSinThetaResampling(grid.start, grid.step, 3000)
    angles = grid.angles.astype(np.float64)
    profile = np.exp(-0.5 * ((angles - 30.0) / 0.05) ** 2) + 0.5 * np.exp(
        -0.5 * ((angles - 80.0) / 0.05) ** 2)
    out = np.asarray(layer(profile[None].astype(np.float32)))[0]
    assert out.shape == (3000,)
    u = np.log(np.sin(np.radians(angles) / 2))
    centres = np.linspace(u[0], u[-1], 3001)
    centres = (centres[1:] + centres[:-1]) / 2
    widths = np.diff(log_sin_theta_edges(grid.start, grid.step, grid.size, 3000))
    low, high = centres < np.log(np.sin(np.radians(27.5))), centres > np.log(np.sin(np.radians(37.5)))
    centroid = (out * widths * centres)[low].sum() / (out * widths)[low].sum()
    assert np.degrees(2 * np.arcsin(np.exp(centroid))) == pytest.approx(30.0, abs=0.005)
    # Integrated over 2θ-index units, both peaks keep their area (high-angle bins are wider).
    assert (out * widths)[low].sum() == pytest.approx(profile[angles < 55].sum(), rel=1e-3)
    assert (out * widths)[high].sum() == pytest.approx(profile[angles > 75].sum(), rel=1e-3)


def test_on_the_log_d_axis_a_bigger_cell_only_shifts_the_pattern():
    grid = DEFAULT_GRID
    layer = LogSinThetaResampling(grid.start, grid.step, 4000)
    angles = grid.angles.astype(np.float64)

    def cubic_profile(a: float) -> np.ndarray:
        d = a / np.sqrt(np.array([1, 2, 3, 4, 5, 6, 8]))
        two_theta = np.degrees(2 * np.arcsin(1.5406 / (2 * d)))
        return sum(np.exp(-0.5 * ((angles - t) / 0.08) ** 2) for t in two_theta)

    small, large = (np.asarray(layer(cubic_profile(a)[None].astype(np.float32)))[0]
                    for a in (4.0, 4.4))
    step = (np.log(np.sin(np.radians(45))) - np.log(np.sin(np.radians(2.5)))) / 4000
    expected = np.log(4.4 / 4.0) / step  # samples
    lags = np.arange(100, 250)
    overlap = [np.dot(small[lag:], large[:-lag]) for lag in lags]
    best = lags[int(np.argmax(overlap))]
    assert best == pytest.approx(expected, abs=1)
    similarity = max(overlap) / np.sqrt(np.dot(small[best:], small[best:])
                                        * np.dot(large[:-best], large[:-best]))
    assert similarity > 0.95


def test_resnet_on_the_log_d_axis_saves_and_loads_in_safe_mode(tmp_path):
    model = build("resnet1d", DEFAULT_GRID.size, grid=DEFAULT_GRID, axis="log_d", log_points=2400,
                  pooling="flatten+global", **TINY["resnet1d"])
    check_model(model, DEFAULT_GRID.size)
    assert model.get_layer("log_d_axis").output.shape == (None, 2400)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    x = np.random.default_rng(1).random((2, DEFAULT_GRID.size)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_resnet_axis_and_pooling_are_checked():
    with pytest.raises(ValueError, match="needs the input's 2θ grid"):
        build("resnet1d", DEFAULT_GRID.size, axis="log_d", **TINY["resnet1d"])
    with pytest.raises(ValueError, match="axis must be one of"):
        build("resnet1d", DEFAULT_GRID.size, axis="q", **TINY["resnet1d"])
    with pytest.raises(ValueError, match="pooling one of"):
        build("resnet1d", DEFAULT_GRID.size, pooling="attention", **TINY["resnet1d"])


def trained_weights(model: keras.Model, seed: int = 0) -> keras.Model:
    """Random weights everywhere, batch-norm statistics included (as after training)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.1, w.shape).astype(np.float32) + (1.0 if w.ndim == 1 else 0)
                       for w in model.get_weights()])
    return model


def test_growing_a_resnet_keeps_its_output_and_adds_blocks(tmp_path):
    settings = {**TINY["resnet1d"], "kernel": 5}
    model = trained_weights(build("resnet1d", DEFAULT_GRID.size, **settings))
    x = np.random.default_rng(2).random((3, DEFAULT_GRID.size)).astype(np.float32)
    grown = grow_resnet1d(model, settings, extra_blocks=2)
    extra = [layer.name for layer in grown.layers if layer.name.startswith("extra_block_")]
    assert {"extra_block_1_conv_a", "extra_block_2_norm_b", "extra_block_2_out"} <= set(extra)
    assert grown.count_params() > model.count_params()
    np.testing.assert_allclose(grown(x), model(x), atol=1e-6)
    # Growing again keeps the first extra block's weights (trained by then) and adds one more.
    trained_weights(grown, seed=3)
    again = grow_resnet1d(grown, {**settings, "extra_blocks": 2}, extra_blocks=3)
    np.testing.assert_allclose(again(x), grown(x), atol=1e-6)
    again.save(tmp_path / "grown.keras")
    loaded = keras.saving.load_model(tmp_path / "grown.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded(x), again(x), atol=1e-6)


def test_growing_checks_its_model_and_settings():
    settings = dict(TINY["resnet1d"])
    model = build("resnet1d", DEFAULT_GRID.size, **settings, extra_blocks=2)
    with pytest.raises(ValueError, match="cannot shrink"):
        grow_resnet1d(model, {**settings, "extra_blocks": 2}, extra_blocks=1)
    with pytest.raises(ValueError, match="not built by build_resnet1d with these settings"):
        grow_resnet1d(model, {**settings, "width": 16, "extra_blocks": 2}, extra_blocks=3)
    with pytest.raises(ValueError, match="extra_blocks must be 0 or more"):
        build("resnet1d", DEFAULT_GRID.size, **settings, extra_blocks=-1)


def test_grid_reaches_only_builders_that_take_it():
    model = build("baseline_ann", DEFAULT_GRID.size, grid=DEFAULT_GRID, units=8)
    check_model(model, DEFAULT_GRID.size)


def test_autocorrelation_matches_the_direct_sum_and_ignores_shifts():
    rng = np.random.default_rng(4)
    x = np.zeros((2, 300), np.float32)
    x[:, 40:140] = rng.random((2, 100))
    out = np.asarray(Autocorrelation(20)(x))
    direct = np.array([[np.dot(row[:-lag], row[lag:]) / np.dot(row, row) for lag in range(1, 21)]
                       for row in x])
    np.testing.assert_allclose(out, direct, rtol=1e-4, atol=1e-6)
    # The same signal elsewhere in the profile gives the same correlation.
    np.testing.assert_allclose(Autocorrelation(20)(np.roll(x, 90, axis=1)), out, atol=1e-5)
    with pytest.raises(ValueError, match="lags must be 1 or more"):
        Autocorrelation(0)
    with pytest.raises(ValueError, match="longer than 300"):
        Autocorrelation(300)(x)


def cubic_profile(a: float, allowed: set[int]) -> np.ndarray:
    """Gaussian peaks of a cubic cell with edge ``a`` (Å, Cu Kα) for h² + k² + l² in ``allowed``."""
    two_theta = DEFAULT_GRID.angles
    profile = np.zeros_like(two_theta)
    for n in allowed:
        s = 1.54184 * np.sqrt(n) / (2 * a)
        if s < np.sin(np.radians(DEFAULT_GRID.stop / 2)):
            centre = 2 * np.degrees(np.arcsin(s))
            profile += np.exp(-0.5 * ((two_theta - centre) / 0.05) ** 2)
    return profile.astype(np.float32)


def test_the_ratio_features_do_not_depend_on_the_cell_size():
    """On a ln d axis a cubic cell's peaks keep their spacings whatever its edge, so the
    autocorrelation of a small and a large cell agree, and tell F-centred from primitive."""
    primitive = {n for n in range(1, 12) if n != 7}
    f_centred = {3, 4, 8, 11}
    resample = LogSinThetaResampling(DEFAULT_GRID.start, DEFAULT_GRID.step, 2048)
    correlate = Autocorrelation(400)
    def features(a, allowed):
        return np.asarray(correlate(resample(cubic_profile(a, allowed)[None])))[0]
    small, large = features(5.0, primitive), features(6.0, primitive)
    other = features(5.0, f_centred)
    assert np.abs(small - large).max() < 0.1
    assert np.abs(small - other).max() > 0.3


def test_a_resnet_with_a_ratio_branch_saves_and_loads(tmp_path):
    model = build("resnet1d", DEFAULT_GRID.size, grid=DEFAULT_GRID, **TINY["resnet1d"],
                  ratio_lags=64)
    check_model(model, DEFAULT_GRID.size)
    assert any(layer.name == "ratio_autocorrelation" for layer in model.layers)
    model.save(tmp_path / "ratio.keras")
    loaded = keras.saving.load_model(tmp_path / "ratio.keras", compile=False, safe_mode=True)
    x = np.random.default_rng(5).random((2, DEFAULT_GRID.size)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="ratio_lags must be 0 to 2047"):
        build("resnet1d", DEFAULT_GRID.size, grid=DEFAULT_GRID, ratio_lags=2048)
    with pytest.raises(ValueError, match="d-ratio branch needs the input's 2θ grid"):
        build("resnet1d", DEFAULT_GRID.size, ratio_lags=64)


def test_growing_a_ratio_branch_keeps_the_output():
    settings = {**TINY["resnet1d"], "extra_blocks": 1}
    model = trained_weights(build("resnet1d", DEFAULT_GRID.size, **settings))
    x = np.random.default_rng(6).random((3, DEFAULT_GRID.size)).astype(np.float32)
    grown = grow_resnet1d(model, settings, DEFAULT_GRID, ratio_lags=64, extra_blocks=2)
    names = {layer.name for layer in grown.layers}
    assert {"ratio_autocorrelation", "ratio_dense", "extra_block_2_conv_a"} <= names
    np.testing.assert_allclose(grown(x), model(x), atol=1e-6)
    # Once trained, the branch changes the output, and growing more blocks keeps it.
    trained_weights(grown, seed=7)
    assert np.abs(np.asarray(grown(x)) - np.asarray(model(x))).max() > 1e-3
    grown_settings = {**settings, "extra_blocks": 2, "ratio_lags": 64}
    again = grow_resnet1d(grown, grown_settings, DEFAULT_GRID, extra_blocks=3)
    np.testing.assert_allclose(again(x), grown(x), atol=1e-6)
    with pytest.raises(ValueError, match="reads 64 lags and cannot change"):
        grow_resnet1d(grown, grown_settings, DEFAULT_GRID, ratio_lags=32)
    with pytest.raises(ValueError, match="reads 64 lags and cannot change"):
        grow_resnet1d(grown, grown_settings, DEFAULT_GRID, ratio_lags=0)
