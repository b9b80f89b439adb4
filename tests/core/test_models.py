"""Every model builder builds for the grid and padded inputs and ends in a 230-way softmax."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.grid import DEFAULT_GRID
from core.models import BUILDERS, ModelKind, build

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
