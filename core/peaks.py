"""Peak positions of measured patterns, for indexing (:mod:`core.indexing`).

A profile's peaks are picked after a SNIP background and a light smoothing, above a noise
threshold measured locally, at positions refined below the measuring step; the Cu Kα2 line
of a doublet is dropped. A stick list (a DIF or CIF pattern) gives its own lines.
"""

from __future__ import annotations

import numpy as np

from core.grid import CU_KA, CU_KA1, CU_KA2

KA2_RATIO = CU_KA2 / CU_KA1
# Peaks weaker than this fraction of the strongest (after the background) are not picked.
PEAK_PROMINENCE = 0.02
# Half-width of the smoothing window, degrees, and the noise threshold for a peak.
SMOOTHING_DEG = 0.035
NOISE_SIGMAS = 4.0


def pick_peaks(two_theta: np.ndarray, intensity: np.ndarray, background: np.ndarray | None = None,
               prominence: float = PEAK_PROMINENCE, ka2: bool = True) -> np.ndarray:
    """Peak positions (2θ, degrees) of a measured profile, for indexing.

    Each maximum is refined by a parabola through its highest points, so positions are better
    than the measuring step. With ``ka2``, a peak where the Cu Kα2 line of a stronger
    neighbour falls (within two steps, at most 3/4 of its height) is dropped as that line.

    Args:
        two_theta: ascending angles, degrees.
        intensity: counts or scaled intensities at those angles.
        background: subtracted first when given.
        prominence: smallest peak prominence, as a fraction of the strongest peak.
        ka2: drop Kα2 shoulders.
    """
    from scipy.ndimage import median_filter
    from scipy.signal import find_peaks as scipy_find_peaks
    from scipy.signal import savgol_filter

    tt = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(intensity, dtype=np.float64)
    if background is not None:
        y = y - background
    finite = np.isfinite(tt) & np.isfinite(y)
    tt, y = tt[finite], y[finite]
    if tt.size < 5 or np.ptp(y) <= 0:
        return np.zeros(0)
    step = float(np.median(np.diff(tt)))
    # Smoothing over about 0.07° and a threshold of several noise s.d. keep counting noise
    # from being picked; the noise is the spread of the data about the smoothed curve,
    # measured locally (over about 2°, at most 401 points) since it grows with the signal.
    window = int(np.clip(round(SMOOTHING_DEG / max(step, 1e-6)), 2, 50)) * 2 + 1
    smooth = savgol_filter(y, min(window, tt.size - (1 - tt.size % 2)), 2) if tt.size > window else y
    noise_window = int(np.clip(round(2.0 / max(step, 1e-6)), 3, 401)) | 1
    noise = 1.4826 * median_filter(np.abs(y - smooth), size=noise_window, mode="nearest")
    y = smooth - smooth.min()
    indices, properties = scipy_find_peaks(y, prominence=prominence * y.max(),
                                           distance=max(1, int(round(0.04 / max(step, 1e-6)))))
    indices = indices[properties["prominences"] >= NOISE_SIGMAS * noise[indices]]
    inner = indices[(indices > 0) & (indices < len(y) - 1)]
    left, mid, right = y[inner - 1], y[inner], y[inner + 1]
    curvature = left - 2 * mid + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1), 0)
    positions = tt[inner] + np.clip(offset, -0.5, 0.5) * step
    heights = mid
    if ka2 and len(positions) > 1:
        ka2_at = 2 * np.degrees(np.arcsin(np.clip(np.sin(np.radians(positions / 2)) * KA2_RATIO, 0, 1)))
        shoulder = np.zeros(len(positions), bool)
        for i, expected in enumerate(ka2_at):
            j = np.argmin(np.abs(positions - expected))
            if j != i and abs(positions[j] - expected) < 2 * step + 0.01 and heights[j] <= 0.75 * heights[i]:
                shoulder[j] = True
        positions = positions[~shoulder]
    return positions


def pattern_peaks(pattern) -> np.ndarray:
    """Peak positions (2θ, degrees) of a read :class:`core.readers.MeasuredPattern` for
    indexing: a stick list's own lines, or :func:`profile_peaks` of a profile (Kα2 shoulders
    dropped when the wavelength is copper's or not given)."""
    two_theta = np.asarray(pattern.two_theta, dtype=np.float64)
    intensity = np.asarray(pattern.intensity, dtype=np.float64)
    if pattern.is_sticks:
        return np.sort(two_theta[intensity > 0])
    copper = pattern.wavelength is None or abs(pattern.wavelength - CU_KA) < 0.01
    return profile_peaks(two_theta, intensity, ka2=copper)


def profile_peaks(two_theta: np.ndarray, intensity: np.ndarray, ka2: bool = True) -> np.ndarray:
    """:func:`pick_peaks` of a profile after a SNIP background."""
    from core.preprocess import estimate_background

    return pick_peaks(two_theta, intensity, estimate_background(two_theta, intensity, "snip"),
                      ka2=ka2)
