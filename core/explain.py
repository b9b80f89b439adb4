"""Which peaks a prediction rests on: take each peak out in turn and watch the probability.

A space group shows in a powder pattern through which reflections are present and where
they sit, so the question a crystallographer asks of a prediction is "which peaks made it
say that?". Occlusion answers it in those terms for any model with a profile input: each
peak found in the model's input is bridged over by a straight line from one foot to the
other, the profile is scaled back to a maximum of 1 as the model expects, and the model is
asked again. A peak whose removal lowers the probability of the group supports it; one whose
removal raises it speaks against it. Overlapping peaks are removed together where their
feet merge, so their influences are not additive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import peak_widths

from core.classify import Classifier
from core.grid import TwoThetaGrid, two_theta_to_d
from core.preprocess import peak_indices

# A peak is cut where it has fallen to this fraction of its prominence above its base...
FOOT_HEIGHT = 0.05
# ...but never wider than this on either side, degrees (a broad hump is not one reflection).
MAX_HALF_WIDTH_DEG = 0.6


@dataclass(frozen=True)
class PeakInfluence:
    """One peak of the model input and what removing it does to a chosen space group.

    Attributes:
        two_theta: peak position, degrees at the model's wavelength.
        d_spacing: the corresponding d, Å.
        height: peak height in the model input (scaled 0-1).
        start, stop: the 2θ window bridged over to remove it.
        probability_without: the group's probability with the peak removed.
        change: probability with the peak minus without; positive where the peak supports
            the group.
    """

    two_theta: float
    d_spacing: float
    height: float
    start: float
    stop: float
    probability_without: float
    change: float


def peak_windows(profile: np.ndarray, grid: TwoThetaGrid,
                 prominence: float = 0.05) -> list[tuple[int, int, int]]:
    """(peak, first, last) grid indices of each peak of a profile and of the window that
    holds it: from foot to foot (:data:`FOOT_HEIGHT`), at most :data:`MAX_HALF_WIDTH_DEG`
    each side. Peaks are those of :func:`core.preprocess.peak_indices`."""
    y = np.asarray(profile, dtype=np.float64)
    peaks = peak_indices(y, prominence)
    if not len(peaks):
        return []
    _, _, left, right = peak_widths(y, peaks, rel_height=1 - FOOT_HEIGHT)
    reach = int(round(MAX_HALF_WIDTH_DEG / grid.step))
    windows = []
    for peak, lo, hi in zip(peaks, left, right):
        first = max(int(np.floor(lo)), peak - reach, 0)
        last = min(int(np.ceil(hi)), peak + reach, len(y) - 1)
        windows.append((int(peak), first, last))
    return windows


def without_window(profile: np.ndarray, first: int, last: int) -> np.ndarray:
    """The profile with indices ``first..last`` replaced by the straight line between the
    values at the two ends, scaled back to a maximum of 1 (the range the model was trained on)."""
    y = np.array(profile, dtype=np.float32)
    if last > first:
        y[first:last + 1] = np.linspace(y[first], y[last], last - first + 1, dtype=np.float32)
    top = float(y.max())
    return y / top if top > 0 else y


def peak_influence(classifier: Classifier, profile: np.ndarray, group: int,
                   prominence: float = 0.05) -> list[PeakInfluence]:
    """How much each peak of ``profile`` (a model input on the classifier's grid) supports
    space group ``group`` (1-230), largest effect first.

    Probabilities are the classifier's own (re-weighted to real-world frequencies when it
    does that), so they match the prediction the user sees.

    Raises:
        ValueError: the model takes peak lists rather than profiles, or ``profile`` does not
            fit its grid, or ``group`` is not one of its classes.
    """
    meta = classifier.metadata
    if meta.input_type != "grid":
        raise ValueError(f"model {meta.name!r} reads peak lists, not profiles: peak influence "
                         "needs a profile model")
    grid = classifier.grid
    profile = np.asarray(profile, dtype=np.float32)
    if profile.shape != (grid.size,):
        raise ValueError(f"profile has {profile.size} points; model {meta.name!r} expects "
                         f"{grid.size}")
    classes = list(meta.classes)
    if group not in classes:
        raise ValueError(f"space group {group} is not one of model {meta.name!r}'s classes")
    column = classes.index(group)
    windows = peak_windows(profile, grid, prominence)
    inputs = np.stack([profile] + [without_window(profile, first, last)
                                   for _, first, last in windows])
    probability = classifier.predict_inputs(inputs)[:, column]
    angles = grid.angles
    influences = [
        PeakInfluence(two_theta=float(angles[peak]),
                      d_spacing=float(two_theta_to_d(angles[peak], meta.wavelength)),
                      height=float(profile[peak]), start=float(angles[first]),
                      stop=float(angles[last]), probability_without=float(without),
                      change=float(probability[0] - without))
        for (peak, first, last), without in zip(windows, probability[1:])]
    return sorted(influences, key=lambda i: -abs(i.change))
