"""Keras model builders: the original report's three models and a residual 1D CNN.

Each builder is ``build_x(input_length, n_classes=230, **hyperparameters) -> keras.Model`` and
returns an uncompiled model whose output is a softmax over the 230 space groups. Training
concerns (optimiser, callbacks, class weights) live in :mod:`core.training`.
"""

from core.models.builders import (
    BUILDERS,
    ModelKind,
    build,
    build_baseline_ann,
    build_optimised_ann,
    build_report_cnn,
    build_resnet1d,
    grow_resnet1d,
)

__all__ = ["BUILDERS", "ModelKind", "build", "build_baseline_ann", "build_optimised_ann",
           "build_report_cnn", "build_resnet1d", "grow_resnet1d"]
