"""Peak lists -> model inputs.

Two input representations:

* ``grid``: an intensity profile on a fixed 2θ grid, each stick broadened into a
  pseudo-Voigt peak. Rendering is vectorised over a whole batch: every peak touches only a
  window of grid points around its centre, and all windows are summed in one ``bincount``.
* ``padded``: the original report's representation, the irregular (2θ, intensity) stick
  arrays zero-padded to a fixed length (patterns with more peaks are dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import fft as sp_fft

from core.grid import TwoThetaGrid

INPUT_TYPES = ("grid", "padded")
DEFAULT_PADDED_LENGTH = 256
# Peaks are drawn out to this many FWHMs on each side; beyond it a pseudo-Voigt's Lorentzian
# part is below 1 % of its height. The window also pads the FFT so that no peak wraps around.
WINDOW_FWHM = 5.0
MAX_WINDOW_POINTS = 161


def pack_peaks(two_theta: Sequence[np.ndarray], intensity: Sequence[np.ndarray],
               max_peaks: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ragged per-pattern arrays -> dense ``(n, max_peaks)`` arrays padded with zero intensity.

    When a pattern has more than ``max_peaks`` peaks, its strongest ones are kept.
    """
    lengths = [len(t) for t in two_theta]
    width = max(lengths, default=0) if max_peaks is None else max_peaks
    tt = np.zeros((len(lengths), max(width, 1)), dtype=np.float32)
    ii = np.zeros_like(tt)
    for row, (t, i) in enumerate(zip(two_theta, intensity)):
        t = np.asarray(t, dtype=np.float32)
        i = np.asarray(i, dtype=np.float32)
        if len(t) > width:
            keep = np.sort(np.argsort(i)[-width:])
            t, i = t[keep], i[keep]
        tt[row, :len(t)] = t
        ii[row, :len(i)] = i
    return tt, ii


def pseudo_voigt(x: np.ndarray, fwhm: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Pseudo-Voigt of unit height: ``eta`` Lorentzian + ``1 - eta`` Gaussian, same FWHM."""
    z = (2.0 * x / fwhm) ** 2
    return eta / (1.0 + z) + (1.0 - eta) * np.exp(-np.log(2.0) * z)


def render(two_theta: np.ndarray, intensity: np.ndarray, grid: TwoThetaGrid,
           fwhm: float | np.ndarray = 0.1, eta: float | np.ndarray = 0.5,
           normalise: bool = True, width_levels: int = 3) -> np.ndarray:
    """Render sticks onto ``grid`` as pseudo-Voigt peaks.

    Sticks are deposited on the grid (split linearly between the two nearest points) and
    convolved with a pseudo-Voigt kernel per pattern through the FFT. Widths that vary peak by
    peak are handled by depositing each stick on ``width_levels`` width levels (split linearly
    between the two nearest), each convolved with its own kernel.

    Args:
        two_theta: (n, p) peak positions in degrees; NaN or out-of-grid peaks are ignored.
        intensity: (n, p) peak heights; zero for padding.
        grid: the 2θ grid.
        fwhm: full width at half maximum in degrees: a scalar, per pattern (n,) or per
            peak (n, p).
        eta: Lorentzian fraction: a scalar or per pattern (n,).
        normalise: scale each profile to a maximum of 1.
        width_levels: levels used when ``fwhm`` varies within a pattern.

    Returns:
        (n, grid.size) float32 profiles.
    """
    tt = np.atleast_2d(np.asarray(two_theta, dtype=np.float32))
    ii = np.atleast_2d(np.asarray(intensity, dtype=np.float32))
    n, p = tt.shape
    fwhm = np.asarray(fwhm, dtype=np.float32)
    eta = np.broadcast_to(np.asarray(eta, dtype=np.float32).reshape(-1), (n,))
    if fwhm.ndim < 2:
        levels = np.broadcast_to(fwhm.reshape(-1), (n,))[:, None]          # (n, 1)
        weights = [np.ones_like(tt)]
    else:
        low, high = fwhm.min(axis=1), fwhm.max(axis=1)
        levels = low[:, None] + (high - low)[:, None] * np.linspace(0, 1, width_levels)[None, :]
        position = np.where((high > low)[:, None], (fwhm - low[:, None]) / np.maximum(high - low, 1e-9)[:, None], 0)
        position = position * (width_levels - 1)
        lower = np.clip(np.floor(position), 0, width_levels - 2).astype(np.int32)
        frac = position - lower
        weights = [np.where(lower == k, 1 - frac, 0) + np.where(lower == k - 1, frac, 0)
                   for k in range(width_levels)]
    half = int(min(MAX_WINDOW_POINTS // 2,
                   np.ceil(WINDOW_FWHM * float(levels.max(initial=grid.step)) / grid.step)))
    size = sp_fft.next_fast_len(grid.size + 2 * half, real=True)
    # The kernel is centred on index 0 and wraps around: offsets 0..half, then -half..-1.
    window = np.concatenate([np.arange(half + 1), np.arange(-half, 0)]).astype(np.float32) * grid.step
    columns = np.concatenate([np.arange(half + 1), np.arange(size - half, size)])
    profiles = np.zeros((n, grid.size), dtype=np.float32)
    # One kernel serves the whole batch when every pattern has the same shape.
    shared = bool(np.all(levels == levels[:1]) and np.all(eta == eta[:1]))
    for level, weight in enumerate(weights):
        sticks = _deposit(tt, ii * weight, grid, size)
        rows = 1 if shared else n
        kernel = np.zeros((rows, size), dtype=np.float32)
        kernel[:, columns] = pseudo_voigt(window[None, :], levels[:rows, level:level + 1].astype(np.float32),
                                          eta[:rows, None])
        spectrum = sp_fft.rfft(sticks, axis=1, workers=-1) * sp_fft.rfft(kernel, axis=1, workers=-1)
        profiles += sp_fft.irfft(spectrum, n=size, axis=1, workers=-1)[:, :grid.size]
    return normalise_profiles(profiles) if normalise else profiles


def _deposit(tt: np.ndarray, ii: np.ndarray, grid: TwoThetaGrid, size: int) -> np.ndarray:
    """Sticks onto a (n, size) array, each split linearly between its two nearest points."""
    n = tt.shape[0]
    position = (tt - grid.start) / grid.step
    valid = np.isfinite(position) & (ii > 0) & (position >= 0) & (position <= grid.size - 1)
    rows = np.broadcast_to(np.arange(n)[:, None], tt.shape)[valid]
    position, height = position[valid], ii[valid]
    left = np.floor(position).astype(np.int64)
    frac = position - left
    flat = rows * size + left
    out = np.bincount(flat, weights=height * (1 - frac), minlength=n * size)
    out += np.bincount(flat + 1, weights=height * frac, minlength=n * size)
    return out.reshape(n, size).astype(np.float32)


def _per_peak(value, n: int) -> np.ndarray:
    value = np.asarray(value, dtype=np.float32)
    return value.reshape(n, 1) if value.ndim == 1 else value


def normalise_profiles(profiles: np.ndarray) -> np.ndarray:
    """Shift each profile's minimum to 0 and scale its maximum to 1 (all-zero rows stay 0)."""
    low = profiles.min(axis=1, keepdims=True)
    span = profiles.max(axis=1, keepdims=True) - low
    return np.where(span > 0, (profiles - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


def padded_arrays(two_theta: Sequence[np.ndarray], intensity: Sequence[np.ndarray],
                  length: int = DEFAULT_PADDED_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """The report's representation: ``[2θ/90 ..., I/max ...]`` zero-padded to ``2 * length``.

    Returns:
        (inputs, kept): inputs of shape (k, 2 * length) and the indices of the k patterns that
        fit; patterns with more than ``length`` peaks are dropped, as in the report.
    """
    kept = [i for i, t in enumerate(two_theta) if 0 < len(t) <= length]
    inputs = np.zeros((len(kept), 2 * length), dtype=np.float32)
    for row, i in enumerate(kept):
        t = np.asarray(two_theta[i], dtype=np.float32)
        y = np.asarray(intensity[i], dtype=np.float32)
        order = np.argsort(t)
        inputs[row, :len(t)] = t[order] / 90.0
        inputs[row, length:length + len(t)] = y[order] / max(float(y.max()), 1e-12)
    return inputs, np.asarray(kept, dtype=np.int64)
