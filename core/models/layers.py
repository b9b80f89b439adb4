"""Custom Keras layers, registered so that saved models load in Keras safe mode."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def log_sin_theta_edges(start: float, step: float, length: int, points: int) -> np.ndarray:
    """Fractional indices into a 2θ grid (``start``, ``step``, ``length`` samples) of the
    ``points + 1`` bin edges that split the grid's span into equal steps of ln sin θ."""
    two_theta = start + step * np.arange(length)
    u = np.log(np.sin(np.radians(np.maximum(two_theta, 1e-3)) / 2.0))
    targets = np.linspace(u[0], u[-1], points + 1)
    return np.interp(targets, u, np.arange(length, dtype=np.float64))


@keras.saving.register_keras_serializable(package="xrd_classify")
class LogSinThetaResampling(keras.layers.Layer):
    """Resample a profile from a uniform 2θ grid onto a uniform ln sin θ (= −ln d + const.)
    axis.

    On that axis, scaling every cell length by one factor shifts the whole pattern without
    changing its shape, so convolution filters learnt on one cell size apply to all sizes.
    Each output sample is the mean of the profile over its bin (integrated from the
    cumulative sum), so peaks keep their area where bins are wider than the input step.

    Args:
        start: the 2θ grid's first angle, degrees.
        step: the 2θ grid's spacing, degrees.
        points: output samples.
    """

    def __init__(self, start: float, step: float, points: int, **kwargs):
        super().__init__(**kwargs)
        if not (points >= 2 and step > 0 and start >= 0):
            raise ValueError(f"invalid resampling: start={start}, step={step}, points={points}")
        self.start, self.step, self.points = float(start), float(step), int(points)

    def build(self, input_shape):
        length = int(input_shape[-1])
        edges = log_sin_theta_edges(self.start, self.step, length, self.points)
        low = np.clip(np.floor(edges).astype(np.int32), 0, length - 2)
        self._low = low
        self._frac = (edges - low).astype(np.float32)
        self._width = np.maximum(np.diff(edges), 1e-6).astype(np.float32)

    def call(self, inputs):
        # Trapezoid integral of the profile from sample 0 to each sample: cumulative[k].
        halves = (inputs[:, 1:] + inputs[:, :-1]) * 0.5
        cumulative = ops.concatenate([ops.zeros_like(inputs[:, :1]), ops.cumsum(halves, axis=1)],
                                     axis=1)
        below = ops.take(cumulative, self._low, axis=1)
        above = ops.take(cumulative, self._low + 1, axis=1)
        at_edges = below + (above - below) * self._frac
        return (at_edges[:, 1:] - at_edges[:, :-1]) / self._width

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.points)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "step": self.step,
                "points": self.points}


@keras.saving.register_keras_serializable(package="xrd_classify")
class Autocorrelation(keras.layers.Layer):
    """The autocorrelation of each profile at lags 1 … ``lags``, divided by its value at lag 0.

    On a ln d axis the lag between two peaks is the logarithm of their d-spacing ratio, which
    depends on the lattice's shape and extinctions but not on its size: a cubic F lattice
    shows the same ratios (√(4/3), √(8/3), …) whatever its cell edge. Each output is a sum
    over all pairs of positions, a relation a stack of small convolutions reaches only
    through many layers. Computed with a real FFT padded against wrap-around.
    """

    def __init__(self, lags: int, **kwargs):
        super().__init__(**kwargs)
        if lags < 1:
            raise ValueError(f"lags must be 1 or more, not {lags}")
        self.lags = int(lags)

    def build(self, input_shape):
        length = int(input_shape[-1])
        if self.lags >= length:
            raise ValueError(f"{self.lags} lags need a profile longer than {length} samples")
        self._fft_length = 1 << int(np.ceil(np.log2(2 * length)))

    def call(self, inputs):
        real, imag = ops.rfft(inputs, fft_length=self._fft_length)
        power = real * real + imag * imag
        correlation = ops.irfft((power, ops.zeros_like(power)), fft_length=self._fft_length)
        return correlation[:, 1:self.lags + 1] / (correlation[:, :1] + 1e-6)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.lags)

    def get_config(self):
        return {**super().get_config(), "lags": self.lags}
