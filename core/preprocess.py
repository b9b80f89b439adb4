"""A measured pattern onto a model's 2θ grid.

The steps, in order: wavelength conversion (through d-spacing) to the model's wavelength,
cropping, optional Savitzky–Golay smoothing, optional background subtraction
(pybaselines), resampling onto the grid, and scaling to [0, 1]. Stick patterns (DIF, CIF)
are rendered as pseudo-Voigt peaks instead of being resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.grid import CU_KA, TwoThetaGrid, convert_wavelength
from core.readers import MeasuredPattern, PatternReadError

BACKGROUND_METHODS: tuple[str, ...] = ("none", "snip", "arpls", "modpoly")
# SNIP clips peaks narrower than its window; 1° (half window) clears powder peaks but not the
# slowly varying background of amorphous humps and air scatter.
SNIP_HALF_WINDOW_DEG = 1.0
STICK_FWHM = 0.1
STICK_ETA = 0.5


@dataclass(frozen=True)
class Preprocessing:
    """How a measured pattern is cleaned before classification.

    Attributes:
        background: one of :data:`BACKGROUND_METHODS`.
        smoothing: Savitzky–Golay window in measured points (order 2); 0 is off. Even
            windows are widened by one point.
        two_theta_range: (min, max) 2θ in degrees at the model's wavelength to keep, or None.
    """

    background: str = "none"
    smoothing: int = 0
    two_theta_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.background not in BACKGROUND_METHODS:
            raise ValueError(f"background must be one of {BACKGROUND_METHODS}, got {self.background!r}")
        if int(self.smoothing) != self.smoothing or self.smoothing < 0:
            raise ValueError(f"smoothing must be a window of 0 or more points, got {self.smoothing!r}")
        if self.two_theta_range is not None:
            low, high = (float(v) for v in self.two_theta_range)
            if not low < high:
                raise ValueError(f"two_theta_range must be (min, max), got {self.two_theta_range!r}")
            object.__setattr__(self, "two_theta_range", (low, high))

    def to_dict(self) -> dict:
        return {"background": self.background, "smoothing": int(self.smoothing),
                "two_theta_range": list(self.two_theta_range) if self.two_theta_range else None}

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        crop = data.get("two_theta_range")
        return cls(background=str(data.get("background", "none")),
                   smoothing=int(data.get("smoothing", 0)),
                   two_theta_range=tuple(float(v) for v in crop) if crop else None)


@dataclass
class Preprocessed:
    """A pattern on a model's grid, with what was removed on the way.

    Attributes:
        profile: (grid.size,) float32 in [0, 1]; 0 outside the measured range.
        background: estimated background on ``measured_two_theta`` (zeros when none).
        measured_two_theta: measured angles at the model's wavelength after cropping, degrees.
        measured_intensity: intensities at those angles after smoothing, before background
            subtraction (sticks for DIF/CIF).
        coverage: (first, last) 2θ of the grid covered by data, degrees.
    """

    profile: np.ndarray
    background: np.ndarray
    measured_two_theta: np.ndarray
    measured_intensity: np.ndarray
    coverage: tuple[float, float]


def _angles(grid: TwoThetaGrid) -> np.ndarray:
    """Grid angles in float64 (``grid.angles`` is float32)."""
    return grid.start + grid.step * np.arange(grid.size)


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    from scipy.signal import savgol_filter

    window = window + 1 if window % 2 == 0 else window
    window = min(max(window, 3), y.size if y.size % 2 else y.size - 1)
    return savgol_filter(y, window, 2) if window >= 3 else y


def estimate_background(two_theta: np.ndarray, intensity: np.ndarray, method: str) -> np.ndarray:
    """Background of a measured profile with pybaselines.

    Args:
        two_theta: ascending angles, degrees.
        intensity: intensities at those angles.
        method: one of :data:`BACKGROUND_METHODS`.

    Returns:
        The background at each point (zeros for ``"none"``).
    """
    if method == "none" or intensity.size < 4:
        return np.zeros_like(intensity)
    from pybaselines import Baseline

    fitter = Baseline(two_theta)
    if method == "snip":
        step = float(np.median(np.diff(two_theta)))
        half = int(np.clip(round(SNIP_HALF_WINDOW_DEG / max(step, 1e-6)), 3, intensity.size // 2))
        background, _ = fitter.snip(intensity, max_half_window=half)
    elif method == "arpls":
        background, _ = fitter.arpls(intensity, lam=1e5)
    elif method == "modpoly":
        background, _ = fitter.modpoly(intensity, poly_order=3)
    else:
        raise ValueError(f"unknown background method {method!r}; use one of {BACKGROUND_METHODS}")
    return np.asarray(background, dtype=np.float64)


def _resample(tt: np.ndarray, y: np.ndarray, angles: np.ndarray, step: float,
              inside: np.ndarray) -> np.ndarray:
    """Measured points onto grid angles: bin means when finer than the grid, else interpolation."""
    out = np.zeros(angles.size)
    measured_step = float(np.median(np.diff(tt))) if tt.size > 1 else step
    if measured_step < step:
        index = np.rint((tt - angles[0]) / step).astype(np.int64)
        valid = (index >= 0) & (index < angles.size)
        sums = np.bincount(index[valid], weights=y[valid], minlength=angles.size)
        counts = np.bincount(index[valid], minlength=angles.size)
        filled = counts > 0
        out[filled] = sums[filled] / counts[filled]
        gaps = inside & ~filled  # bins between sparse points: interpolate
        out[gaps] = np.interp(angles[gaps], tt, y)
    else:
        out[inside] = np.interp(angles[inside], tt, y)
    out[~inside] = 0.0
    return out


def _scale(profile: np.ndarray, inside: np.ndarray, name: str) -> np.ndarray:
    values = profile[inside]
    low, high = float(values.min()), float(values.max())
    if not np.isfinite(high - low):  # values near the float limit overflow when resampled or scaled
        raise PatternReadError(f"{name}: intensities too large to scale (beyond the float range)")
    if not high > low:
        raise PatternReadError(f"{name}: flat pattern inside the model's 2θ range")
    scaled = np.zeros(profile.size, dtype=np.float32)
    scaled[inside] = np.clip((values - low) / (high - low), 0.0, 1.0)
    return scaled


def to_grid(pattern: MeasuredPattern, grid: TwoThetaGrid, model_wavelength: float = CU_KA,
            wavelength: float | None = None,
            preprocessing: Preprocessing = Preprocessing()) -> Preprocessed:
    """Put a measured pattern onto a model's grid.

    Args:
        pattern: as read by :func:`core.readers.read_pattern`.
        grid: the model's 2θ grid.
        model_wavelength: wavelength the model was trained at, Å.
        wavelength: wavelength the pattern was measured at, Å; overrides the file's value.
            When neither is known, Cu Kα is assumed.
        preprocessing: crop, smoothing and background options.

    Returns:
        The :class:`Preprocessed` profile and intermediate arrays.

    Raises:
        PatternReadError: no data inside the grid's range after conversion and cropping, or
            nothing but a flat line left.
    """
    source = wavelength or pattern.wavelength or CU_KA
    tt = np.asarray(pattern.two_theta, dtype=np.float64)
    y = np.asarray(pattern.intensity, dtype=np.float64)
    if abs(source - model_wavelength) > 1e-9:
        with np.errstate(divide="ignore", invalid="ignore"):
            tt = convert_wavelength(tt, source, model_wavelength)
    keep = np.isfinite(tt) & np.isfinite(y)
    low, high = grid.start, grid.stop
    if preprocessing.two_theta_range is not None:
        crop_low, crop_high = preprocessing.two_theta_range
        keep &= (tt >= crop_low) & (tt <= crop_high)
        low, high = max(low, crop_low), min(high, crop_high)
    tt, y = tt[keep], y[keep]
    order = np.argsort(tt, kind="stable")
    tt, y = tt[order], y[order]
    angles = _angles(grid)
    tolerance = 1e-9 * max(1.0, grid.stop)
    outside = PatternReadError(
        f"{pattern.name}: no data inside the model's 2θ range {low:g}–{high:g}°")

    if pattern.is_sticks:
        on_grid = (tt >= grid.start) & (tt <= grid.stop)
        if not on_grid.any() or low > high:
            raise outside
        from core.rendering import render

        profile = render(tt[None], y[None], grid, fwhm=STICK_FWHM, eta=STICK_ETA)[0]
        inside = (angles >= low - tolerance) & (angles <= high + tolerance)
        coverage = (float(angles[inside][0]), float(angles[inside][-1]))
        return Preprocessed(_scale(profile.astype(np.float64), inside, pattern.name),
                            np.zeros_like(y), tt, y, coverage)

    inside = (angles >= max(low, tt[0] if tt.size else np.inf) - tolerance) & \
             (angles <= min(high, tt[-1] if tt.size else -np.inf) + tolerance)
    if tt.size < 2 or inside.sum() < 2:
        raise outside
    if preprocessing.smoothing:
        y = _smooth(y, int(preprocessing.smoothing))
    background = estimate_background(tt, y, preprocessing.background)
    signal = np.clip(y - background, 0.0, None) if preprocessing.background != "none" else y
    profile = _resample(tt, signal, angles, grid.step, inside)
    coverage = (float(angles[inside][0]), float(angles[inside][-1]))
    return Preprocessed(_scale(profile, inside, pattern.name), background, tt, y, coverage)


def peak_indices(profile: np.ndarray, prominence: float = 0.05) -> np.ndarray:
    """Grid indices of the peaks of a profile scaled to [0, 1] whose prominence is at least
    ``prominence`` (profile units)."""
    from scipy.signal import find_peaks as scipy_find_peaks

    indices, _ = scipy_find_peaks(np.asarray(profile, dtype=np.float64), prominence=prominence)
    return indices


def find_peaks(profile: np.ndarray, grid: TwoThetaGrid, prominence: float = 0.05) -> np.ndarray:
    """2θ positions (degrees) of the peaks of a grid profile (see :func:`peak_indices`)."""
    return _angles(grid)[peak_indices(profile, prominence)]
