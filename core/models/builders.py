"""Model architectures. Each reads top to bottom; training choices live elsewhere."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers, regularizers

from core.grid import TwoThetaGrid
from core.models.layers import Autocorrelation, LogSinThetaResampling

N_CLASSES = 230
AXES = ("two_theta", "log_d")
POOLINGS = ("flatten", "flatten+global")
EXTRA_BLOCK = "extra_block_"  # layer-name prefix of resnet1d's extra blocks
RATIO = "ratio_"  # layer-name prefix of resnet1d's d-ratio branch
RATIO_POINTS = 2048  # ln d samples the d-ratio branch correlates


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
                   grid: TwoThetaGrid | None = None, extra_blocks: int = 0,
                   ratio_lags: int = 0) -> keras.Model:
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
        ratio_lags: with more than 0, a second branch reads the autocorrelation of the
            pattern on a ln d axis at this many lags (ratios of d-spacings, see
            :class:`Autocorrelation`) and adds its features to the dense head's. Its last
            layer starts at zero, so :func:`grow_resnet1d` can add it to a trained network
            without changing it. Needs ``grid``.

    The defaults (0.9 M parameters) train at over 1,000 samples/s on 2 CPU cores.
    """
    if axis not in AXES or pooling not in POOLINGS:
        raise ValueError(f"axis must be one of {AXES} and pooling one of {POOLINGS}")
    if extra_blocks < 0:
        raise ValueError(f"extra_blocks must be 0 or more, not {extra_blocks}")
    if not 0 <= ratio_lags < RATIO_POINTS:
        raise ValueError(f"ratio_lags must be 0 to {RATIO_POINTS - 1}, not {ratio_lags}")
    for needs, what in ((axis == "log_d", "axis='log_d'"), (ratio_lags, "the d-ratio branch")):
        if needs and grid is None:
            raise ValueError(f"{what} needs the input's 2θ grid")
    inputs = keras.Input((input_length,), name="pattern")
    x = inputs
    if axis == "log_d":
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
    if ratio_lags:
        x = layers.Add()([layers.Dense(dense_units)(x),
                          _ratio_branch(inputs, grid, ratio_lags, dense_units)])
        x = layers.Activation("relu")(x)
    else:
        x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="space_group")(x)
    return keras.Model(inputs, outputs, name="resnet1d")


def _ratio_branch(inputs, grid: TwoThetaGrid, lags: int, units: int):
    """Features of the d-spacing ratios in a pattern: peaks above a running mean on a ln d
    axis, their autocorrelation, and three strided convolutions over the lags."""
    x = LogSinThetaResampling(grid.start, grid.step, RATIO_POINTS,
                              name=f"{RATIO}log_d_axis")(inputs)
    x = layers.Reshape((RATIO_POINTS, 1), name=f"{RATIO}channels")(x)
    background = layers.AveragePooling1D(31, strides=1, padding="same",
                                         name=f"{RATIO}background")(x)
    x = layers.Subtract(name=f"{RATIO}minus")([x, background])
    x = layers.Activation("relu", name=f"{RATIO}peaks")(x)
    x = layers.Reshape((RATIO_POINTS,), name=f"{RATIO}flat")(x)
    x = Autocorrelation(lags, name=f"{RATIO}autocorrelation")(x)
    x = layers.Reshape((lags, 1), name=f"{RATIO}lags")(x)
    for index, (filters, kernel) in enumerate(((32, 7), (64, 5), (64, 3)), start=1):
        x = layers.Conv1D(filters, kernel, strides=2, padding="same", use_bias=False,
                          name=f"{RATIO}conv_{index}")(x)
        x = layers.BatchNormalization(name=f"{RATIO}norm_{index}")(x)
        x = layers.Activation("relu", name=f"{RATIO}relu_{index}")(x)
        if index < 3:
            x = layers.MaxPooling1D(2, name=f"{RATIO}pool_{index}")(x)
    x = layers.Conv1D(32, 1, activation="relu", name=f"{RATIO}mix")(x)
    x = layers.Flatten(name=f"{RATIO}features")(x)
    return layers.Dense(units, use_bias=False, kernel_initializer="zeros", name=f"{RATIO}dense")(x)


def grow_resnet1d(model: keras.Model, hyperparameters: dict, grid: TwoThetaGrid | None = None,
                  *, extra_blocks: int | None = None, ratio_lags: int | None = None) -> keras.Model:
    """A copy of a trained resnet1d (built with ``hyperparameters``) with ``extra_blocks``
    in all and, with ``ratio_lags``, a d-ratio branch: every trained weight is kept and the
    new parts start as the identity, so the grown network gives the same output until it is
    trained further. ``None`` keeps what the model has.

    Raises:
        ValueError: fewer blocks than the model has, a change to an existing d-ratio branch,
            or a model these settings do not build.
    """
    have_blocks = int(hyperparameters.get("extra_blocks", 0))
    have_lags = int(hyperparameters.get("ratio_lags", 0))
    blocks = have_blocks if extra_blocks is None else extra_blocks
    lags = have_lags if ratio_lags is None else ratio_lags
    if blocks < have_blocks:
        raise ValueError(f"a model with {have_blocks} extra blocks cannot shrink to {blocks}")
    if have_lags and lags != have_lags:
        raise ValueError(f"the model's d-ratio branch reads {have_lags} lags and cannot change")
    settings = {**hyperparameters, "extra_blocks": blocks, "ratio_lags": lags}
    grown = build("resnet1d", int(model.input_shape[-1]), int(model.output_shape[-1]),
                  grid=grid, **settings)
    new = tuple(f"{EXTRA_BLOCK}{index}_" for index in range(have_blocks + 1, blocks + 1))
    new += (RATIO,) if lags and not have_lags else ()
    # The branch's layers and the trunk's are matched apart: where one path deepens, Keras
    # may interleave the two differently.
    def in_order(layers_):
        weighted = [layer for layer in layers_ if layer.weights]
        return ([layer for layer in weighted if not layer.name.startswith(RATIO)]
                + [layer for layer in weighted if layer.name.startswith(RATIO)])

    targets = in_order(layer for layer in grown.layers if not layer.name.startswith(new))
    sources = in_order(model.layers)
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
