"""The 2θ grid a profile lives on, and X-ray wavelengths.

A model is trained on one grid; the grid is saved with the model's metadata and every
measured pattern is put onto that same grid before classification.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Wavelengths in Å (Kα1 and the weighted Kα1/Kα2 mean, as pymatgen tabulates them).
WAVELENGTHS: dict[str, float] = {
    "CuKa": 1.54184,
    "CuKa1": 1.54056,
    "MoKa": 0.71073,
    "CoKa": 1.79026,
    "FeKa": 1.93735,
    "CrKa": 2.29100,
    "AgKa": 0.560885,
}
CU_KA = WAVELENGTHS["CuKa"]
# Kα2 sits at a slightly longer wavelength with about half the intensity of Kα1.
CU_KA1 = 1.540562
CU_KA2 = 1.544390


@dataclass(frozen=True)
class TwoThetaGrid:
    """A uniform 2θ grid in degrees: ``start, start + step, ..., stop`` (inclusive).

    Attributes:
        start: first angle, degrees.
        stop: last angle, degrees.
        step: spacing, degrees.
    """

    start: float = 5.0
    stop: float = 90.0
    step: float = 0.04

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.stop <= 180 and self.step > 0):
            raise ValueError(f"invalid 2θ grid {self}")

    @property
    def size(self) -> int:
        return int(round((self.stop - self.start) / self.step)) + 1

    @property
    def angles(self) -> np.ndarray:
        return (self.start + self.step * np.arange(self.size)).astype(np.float32)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TwoThetaGrid":
        return cls(float(data["start"]), float(data["stop"]), float(data["step"]))


DEFAULT_GRID = TwoThetaGrid()


def two_theta_to_d(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """Bragg's law: d-spacing (Å) of 2θ angles (degrees) at ``wavelength`` (Å)."""
    return wavelength / (2.0 * np.sin(np.radians(np.asarray(two_theta)) / 2.0))


def d_to_two_theta(d: np.ndarray, wavelength: float) -> np.ndarray:
    """Bragg's law: 2θ (degrees) of d-spacings (Å); NaN where no reflection is possible."""
    ratio = wavelength / (2.0 * np.asarray(d, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(ratio <= 1.0, ratio, np.nan)))


def convert_wavelength(two_theta: np.ndarray, source: float, target: float) -> np.ndarray:
    """Angles measured at ``source`` wavelength as they would appear at ``target``."""
    return d_to_two_theta(two_theta_to_d(two_theta, source), target)
