"""Model architectures. Each reads top to bottom; training choices live elsewhere."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers, regularizers

from core.grid import TwoThetaGrid
from core.models.layers import LogSinThetaResampling

N_CLASSES = 230
AXES = ("two_theta", "log_d")
POOLINGS = ("flatten", "flatten+global")
EXTRA_BLOCK = "extra_block_"  # layer-name prefix of resnet1d's extra blocks


def build_baseline_ann(input_length: int, n_classes: int = N_CLASSES,
                       units: int = 256, depth: int = 2) -> keras.Model:
    """The report's baseline: a plain dense network with ReLU."""
    inputs = keras.Input((input_length,), name="pattern")
    x = inputs
    for _ in range(depth):
        x = layers.Dense(units, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="space_group")(x)
    return keras.Model(inputs, outputs, name="baseline_ann")


def build_optimised_ann(input_length: int, n_classes: int = N_CLASSES, units: int = 512,
                        depth: int = 3, l1: float = 1e-6, l2: float = 1e-5,
                        dropout: float = 0.2) -> keras.Model:
    """The report's improved ANN: batch normalisation, LeakyReLU and L1/L2 regularisation
    (one-hot targets and ReduceLROnPlateau come from the trainer)."""
    inputs = keras.Input((input_length,), name="pattern")
    x = inputs
    for _ in range(depth):
        x = layers.Dense(units, kernel_regularizer=regularizers.L1L2(l1=l1, l2=l2))(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=0.1)(x)
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="space_group")(x)
    return keras.Model(inputs, outputs, name="optimised_ann")


def build_report_cnn(input_length: int, n_classes: int = N_CLASSES, filters: int = 32,
                     dense_units: int = 256) -> keras.Model:
    """The report's CNN: three convolution + max-pooling stages and a dense head."""
    inputs = keras.Input((input_length,), name="pattern")
    x = layers.Reshape((input_length, 1))(inputs)
    for scale in (1, 2, 4):
        x = layers.Conv1D(filters * scale, 5, padding="same", activation="relu")(x)
        x = layers.MaxPooling1D(3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="space_group")(x)
    return keras.Model(inputs, outputs, name="report_cnn")


def _residual_block(x, filters: int, kernel: int, stride: int, prefix: str | None = None):
    """Two convolutions and a shortcut. With ``prefix`` (the extra blocks), the layers are named
    after it and the block starts as the identity: its last batch normalisation scales by 0,
    so adding the block to a trained network leaves the network's output unchanged."""
    def named(suffix):
        return {"name": f"{prefix}_{suffix}"} if prefix else {}

    shortcut = x
    y = layers.Conv1D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      **named("conv_a"))(x)
    y = layers.BatchNormalization(**named("norm_a"))(y)
    y = layers.Activation("relu", **named("relu_a"))(y)
    y = layers.Conv1D(filters, kernel, padding="same", use_bias=False, **named("conv_b"))(y)
    y = layers.BatchNormalization(gamma_initializer="zeros" if prefix else "ones",
                                  **named("norm_b"))(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv1D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.Activation("relu", **named("out"))(layers.Add(**named("add"))([y, shortcut]))


def build_resnet1d(input_length: int, n_classes: int = N_CLASSES, width: int = 24,
                   stages: tuple[int, ...] = (1, 2, 3, 4, 6), kernel: int = 3,
                   dense_units: int = 512, dropout: float = 0.3, axis: str = "two_theta",
                   log_points: int | None = None, pooling: str = "flatten",
                   grid: TwoThetaGrid | None = None, extra_blocks: int = 0) -> keras.Model:
    """A residual 1D CNN sized for CPU training.

    A strided, pooled stem (a quarter of the grid's length), then one residual block per
    stage, each halving the length and widening by ``stages[i] * width`` filters; the final
    feature map is flattened (absolute peak positions carry the cell) into a dense head.

    Args:
        axis: ``"two_theta"`` convolves the profile as given; ``"log_d"`` first resamples
            it onto ``log_points`` equal steps of ln d (default: 1.5 × the grid's length;
            needs ``grid``), where a change of cell size only shifts the pattern.
        pooling: ``"flatten"``, or ``"flatten+global"`` to add the final features' global
            mean and maximum, which do not depend on where a motif sits.
        grid: the 2θ grid of the input (the trainer passes it).
        extra_blocks: residual blocks added after the last stage at its width and length
            (cheap: the feature map is shortest there); each starts as the identity, so
            :func:`grow_resnet1d` can add them to a trained network without changing it.

    The defaults (0.9 M parameters) train at over 1,000 samples/s on 2 CPU cores.
    """
    if axis not in AXES or pooling not in POOLINGS:
        raise ValueError(f"axis must be one of {AXES} and pooling one of {POOLINGS}")
    if extra_blocks < 0:
        raise ValueError(f"extra_blocks must be 0 or more, not {extra_blocks}")
    inputs = keras.Input((input_length,), name="pattern")
    x = inputs
    if axis == "log_d":
        if grid is None:
            raise ValueError("axis='log_d' needs the input's 2θ grid")
        x = LogSinThetaResampling(grid.start, grid.step, log_points or int(1.5 * input_length),
                                  name="log_d_axis")(x)
    x = layers.Reshape((x.shape[-1], 1))(x)
    x = layers.Conv1D(width, 9, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling1D(2)(x)
    for multiplier in stages:
        x = _residual_block(x, width * multiplier, kernel, stride=2)
    for index in range(1, extra_blocks + 1):
        x = _residual_block(x, width * stages[-1], kernel, stride=1, prefix=f"{EXTRA_BLOCK}{index}")
    features = x
    x = layers.Flatten()(layers.Conv1D(width * 2, 1, activation="relu")(features))
    if pooling == "flatten+global":
        x = layers.Concatenate()([x, layers.GlobalAveragePooling1D()(features),
                                  layers.GlobalMaxPooling1D()(features)])
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="space_group")(x)
    return keras.Model(inputs, outputs, name="resnet1d")


def grow_resnet1d(model: keras.Model, hyperparameters: dict, extra_blocks: int,
                  grid: TwoThetaGrid | None = None) -> keras.Model:
    """A copy of a trained resnet1d (built with ``hyperparameters``) with ``extra_blocks`` in
    all: every trained weight is kept and the new blocks start as the identity, so the grown
    network gives the same output until it is trained further.

    Raises:
        ValueError: fewer blocks than the model has, or a model these settings do not build.
    """
    have = int(hyperparameters.get("extra_blocks", 0))
    if extra_blocks < have:
        raise ValueError(f"a model with {have} extra blocks cannot shrink to {extra_blocks}")
    settings = {**hyperparameters, "extra_blocks": extra_blocks}
    grown = build("resnet1d", int(model.input_shape[-1]), int(model.output_shape[-1]),
                  grid=grid, **settings)
    new = tuple(f"{EXTRA_BLOCK}{index}_" for index in range(have + 1, extra_blocks + 1))
    targets = [layer for layer in grown.layers if layer.weights and not layer.name.startswith(new)]
    sources = [layer for layer in model.layers if layer.weights]
    shapes = [[tuple(w.shape) for w in layer.get_weights()] for layer in sources]
    if shapes != [[tuple(w.shape) for w in layer.get_weights()] for layer in targets]:
        raise ValueError("the model was not built by build_resnet1d with these settings")
    for source, target in zip(sources, targets):
        target.set_weights(source.get_weights())
    return grown


@dataclass(frozen=True)
class ModelKind:
    """A model family the app offers."""

    key: str
    label: str
    builder: Callable[..., keras.Model]
    description: str


BUILDERS: dict[str, ModelKind] = {kind.key: kind for kind in (
    ModelKind("baseline_ann", "Baseline ANN (report)", build_baseline_ann,
              "Two dense ReLU layers, as in the original report's first model."),
    ModelKind("optimised_ann", "Optimised ANN (report)", build_optimised_ann,
              "Batch norm, LeakyReLU, L1/L2 and dropout: the report's second model."),
    ModelKind("report_cnn", "CNN (report)", build_report_cnn,
              "Three convolution/pooling stages and a dense head: the report's best model."),
    ModelKind("resnet1d", "Residual 1D CNN", build_resnet1d,
              "Strided residual blocks and a dense head; the project's default architecture."),
)}


def build(kind: str, input_length: int, n_classes: int = N_CLASSES,
          grid: TwoThetaGrid | None = None, **hyperparameters) -> keras.Model:
    """Build a model of ``kind`` (a key of :data:`BUILDERS`); ``grid`` (the input's 2θ grid)
    reaches the builders that take it."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(BUILDERS)}")
    builder = BUILDERS[kind].builder
    if grid is not None and "grid" in inspect.signature(builder).parameters:
        hyperparameters["grid"] = grid
    return builder(input_length, n_classes, **hyperparameters)
