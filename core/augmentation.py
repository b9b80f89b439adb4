"""Training-time perturbations that make simulated sticks look like measured patterns.

Every batch is drawn afresh, so no two epochs see the same profile. Each perturbation has a
documented range in :class:`Augmentation`; ``strength`` scales them all (0 = clean
simulation with a fixed peak width). The order follows the physics: the cell is strained,
peaks move (zero shift, sample displacement), intensities change (texture, jitter), the
Kα2 line and an impurity phase add peaks, peaks are broadened, then background and counting
noise are added and the measured range may be truncated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from core.grid import CU_KA1, CU_KA2, TwoThetaGrid, d_to_two_theta
from core.rendering import normalise_profiles, render
from core.symmetry import CRYSTAL_SYSTEMS

# Sample-to-detector radius of a typical laboratory Bragg-Brentano diffractometer, mm.
GONIOMETER_RADIUS_MM = 240.0
SCHERRER_K = 0.9


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the perturbations (each drawn per pattern unless said otherwise).

    Attributes:
        strength: scales the size of every shift, strain, jitter, broadening and background
            term below (not the probabilities, texture, count or width ranges); 0 turns
            augmentation off and renders clean peaks of fixed width.
        lattice_strain: s.d. of the relative change of each free cell length (crystal-system
            constraints kept), a few % covers thermal expansion and solid solutions.
        angle_strain_deg: s.d. of the change of each free cell angle, degrees.
        zero_shift_deg: zero error drawn from ±this, degrees.
        displacement_mm: sample displacement drawn from ±this, mm.
        texture_probability: chance of March-Dollase preferred orientation.
        march_r: (min, max) March-Dollase parameter (1 = no texture).
        intensity_jitter: s.d. of a log-normal factor on each peak's intensity.
        ka2_probability: chance of the Cu Kα2 doublet (at half the Kα1 intensity).
        impurity_probability, impurity_fraction: chance and (min, max) relative intensity of
            a second phase's peaks.
        caglioti_u, caglioti_v, caglioti_w: ranges of the instrumental FWHM² = U tan²θ +
            V tanθ + W, degrees².
        crystallite_nm: (min, max) crystallite size for Scherrer broadening, drawn log-uniform.
        eta: (min, max) Lorentzian fraction of the pseudo-Voigt.
        background_level: (min, max) height of a smooth Chebyshev background, relative to the
            strongest peak.
        hump_probability, hump_level: chance and height of an amorphous hump.
        counts: (min, max) peak counts for Poisson noise, drawn log-uniform.
        read_noise: (min, max) s.d. of Gaussian noise relative to the strongest peak.
        truncate_probability: chance of a shorter measured range (start up to 10°, or stop
            between 60° and 80°); outside it the profile is zero, as for a measured pattern.
    """

    strength: float = 1.0
    lattice_strain: float = 0.03
    angle_strain_deg: float = 0.7
    zero_shift_deg: float = 0.08
    displacement_mm: float = 0.15
    texture_probability: float = 0.5
    march_r: tuple[float, float] = (0.6, 1.0)
    intensity_jitter: float = 0.25
    ka2_probability: float = 0.5
    impurity_probability: float = 0.3
    impurity_fraction: tuple[float, float] = (0.02, 0.15)
    caglioti_u: tuple[float, float] = (0.0, 0.02)
    caglioti_v: tuple[float, float] = (-0.01, 0.0)
    caglioti_w: tuple[float, float] = (0.001, 0.01)
    crystallite_nm: tuple[float, float] = (8.0, 200.0)
    eta: tuple[float, float] = (0.0, 0.8)
    background_level: tuple[float, float] = (0.0, 0.15)
    hump_probability: float = 0.3
    hump_level: tuple[float, float] = (0.02, 0.12)
    counts: tuple[float, float] = (300.0, 30000.0)
    read_noise: tuple[float, float] = (0.0, 0.01)
    truncate_probability: float = 0.25

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Augmentation":
        fields = cls.__dataclass_fields__
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in data.items() if k in fields})


NO_AUGMENTATION = Augmentation(strength=0.0)
CLEAN_FWHM_DEG = 0.1

# The measurement effects, each with the Augmentation fields that make it.
EFFECTS: dict[str, tuple[str, ...]] = {
    "lattice strain": ("lattice_strain", "angle_strain_deg"),
    "zero shift and sample displacement": ("zero_shift_deg", "displacement_mm"),
    "preferred orientation": ("texture_probability", "march_r"),
    "intensity jitter": ("intensity_jitter",),
    "Cu Kα2 doublet": ("ka2_probability",),
    "impurity phase": ("impurity_probability", "impurity_fraction"),
    "peak broadening": ("caglioti_u", "caglioti_v", "caglioti_w", "crystallite_nm", "eta"),
    "background": ("background_level", "hump_probability", "hump_level"),
    "counting and read noise": ("counts", "read_noise"),
    "shorter measured range": ("truncate_probability",),
}
# Every effect switched off: peaks of FWHM 0.1° and η 0.5 at their Cu Kα1 positions, rendered
# by the perturbation code, so that one effect at a time can be switched back on (:func:`only`).
QUIET = Augmentation(
    lattice_strain=0.0, angle_strain_deg=0.0, zero_shift_deg=0.0, displacement_mm=0.0,
    texture_probability=0.0, intensity_jitter=0.0, ka2_probability=0.0,
    impurity_probability=0.0, caglioti_u=(0.0, 0.0), caglioti_v=(0.0, 0.0),
    caglioti_w=(CLEAN_FWHM_DEG ** 2,) * 2, crystallite_nm=(1e9, 1e9), eta=(0.5, 0.5),
    background_level=(0.0, 0.0), hump_probability=0.0, counts=(1e16, 1e16),
    read_noise=(0.0, 0.0), truncate_probability=0.0)


def only(effect: str, ranges: Augmentation) -> Augmentation:
    """Perturbations with just ``effect`` (a key of :data:`EFFECTS`) switched on, at its size
    in ``ranges``, and on every pattern: an effect that ``ranges`` applies to some patterns
    only (Kα2, texture, impurity, hump, truncation) is applied to all of them.

    Raises:
        ValueError: an unknown effect.
    """
    if effect not in EFFECTS:
        raise ValueError(f"unknown effect {effect!r}; choose one of {sorted(EFFECTS)}")
    switched_on = {name: getattr(ranges, name) for name in EFFECTS[effect]}
    switched_on.update({name: 1.0 for name in switched_on if name.endswith("_probability")})
    return replace(QUIET, strength=ranges.strength, **switched_on)


@dataclass
class StickBatch:
    """Dense arrays of a batch of peak lists (padding has zero intensity)."""

    two_theta: np.ndarray   # (n, p) degrees
    intensity: np.ndarray   # (n, p)
    hkl: np.ndarray         # (n, p, 3)
    lattice: np.ndarray     # (n, 6) a, b, c, alpha, beta, gamma
    system: np.ndarray      # (n,) index into CRYSTAL_SYSTEMS


def metric_inverse(lattice: np.ndarray) -> np.ndarray:
    """(n, 3, 3) reciprocal metric tensors of (n, 6) cells; 1/d² = hᵀ G* h."""
    a, b, c = lattice[:, 0], lattice[:, 1], lattice[:, 2]
    cos = np.cos(np.radians(lattice[:, 3:6]))
    g = np.empty((len(lattice), 3, 3))
    g[:, 0, 0], g[:, 1, 1], g[:, 2, 2] = a * a, b * b, c * c
    g[:, 0, 1] = g[:, 1, 0] = a * b * cos[:, 2]
    g[:, 0, 2] = g[:, 2, 0] = a * c * cos[:, 1]
    g[:, 1, 2] = g[:, 2, 1] = b * c * cos[:, 0]
    return np.linalg.inv(g)


def _strained_lattice(lattice: np.ndarray, system: np.ndarray, aug: Augmentation,
                      rng: np.random.Generator) -> np.ndarray:
    n = len(lattice)
    s = aug.strength
    scale = np.exp(rng.normal(0, aug.lattice_strain * s, (n, 3)))
    scale *= np.exp(rng.normal(0, aug.lattice_strain * s, (n, 1)))  # isotropic part
    cubic = system == CRYSTAL_SYSTEMS.index("cubic")
    uniaxial = np.isin(system, [CRYSTAL_SYSTEMS.index(x) for x in ("tetragonal", "trigonal", "hexagonal")])
    scale[cubic, 1] = scale[cubic, 2] = scale[cubic, 0]
    scale[uniaxial, 1] = scale[uniaxial, 0]
    angles = lattice[:, 3:6].copy()
    delta = rng.normal(0, aug.angle_strain_deg * s, (n, 3))
    triclinic = system == CRYSTAL_SYSTEMS.index("triclinic")
    monoclinic = system == CRYSTAL_SYSTEMS.index("monoclinic")
    angles[triclinic] += delta[triclinic]
    angles[monoclinic, 1] += delta[monoclinic, 1]
    return np.concatenate([lattice[:, :3] * scale, angles], axis=1)


def _d_spacings(hkl: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    inverse = metric_inverse(lattice)
    q2 = np.einsum("npi,nij,npj->np", hkl, inverse, hkl)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q2 > 0, 1.0 / np.sqrt(q2), np.nan)


def _march_dollase(hkl: np.ndarray, lattice: np.ndarray, r: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Texture factor per peak for a random preferred direction per pattern."""
    inverse = metric_inverse(lattice)
    direction = rng.integers(-1, 2, size=(len(hkl), 3)).astype(float)
    direction[np.all(direction == 0, axis=1), 2] = 1.0
    dot = np.einsum("npi,nij,nj->np", hkl, inverse, direction)
    norm_h = np.einsum("npi,nij,npj->np", hkl, inverse, hkl)
    norm_d = np.einsum("ni,nij,nj->n", direction, inverse, direction)[:, None]
    cos2 = np.clip(dot ** 2 / np.maximum(norm_h * norm_d, 1e-12), 0, 1)
    r = r[:, None]
    return (r ** 2 * cos2 + (1 - cos2) / r) ** -1.5


def _uniform(rng, bounds, n, strength=1.0, log=False):
    low, high = bounds
    if log:
        return np.exp(rng.uniform(np.log(low), np.log(high), n))
    return rng.uniform(low, high, n) * strength


def augment_profiles(sticks: StickBatch, grid: TwoThetaGrid, aug: Augmentation,
                     rng: np.random.Generator) -> np.ndarray:
    """Realistic profiles on ``grid`` for a batch of stick patterns.

    Returns:
        (n, grid.size) float32 profiles, each scaled to [0, 1] like a preprocessed measurement.
    """
    n = len(sticks.two_theta)
    intensity = sticks.intensity.astype(np.float64).copy()
    if aug.strength <= 0:
        return render(sticks.two_theta, intensity, grid, fwhm=CLEAN_FWHM_DEG, eta=0.5)
    s = aug.strength
    lattice = _strained_lattice(sticks.lattice, sticks.system, aug, rng)
    d = _d_spacings(sticks.hkl.astype(np.float64), lattice)
    # Fall back to the stored positions where a peak has no usable hkl.
    has_hkl = np.isfinite(d) & np.any(sticks.hkl != 0, axis=2)
    two_theta = np.where(has_hkl, d_to_two_theta(d, CU_KA1), sticks.two_theta)

    theta = np.radians(np.nan_to_num(two_theta, nan=90.0) / 2)
    zero = rng.uniform(-1, 1, (n, 1)) * aug.zero_shift_deg * s
    displacement = rng.uniform(-1, 1, (n, 1)) * aug.displacement_mm * s
    two_theta = two_theta + zero - np.degrees(2 * displacement * np.cos(theta) / GONIOMETER_RADIUS_MM)

    textured = rng.random(n) < aug.texture_probability
    r = np.where(textured, _uniform(rng, aug.march_r, n), 1.0)
    intensity *= _march_dollase(sticks.hkl.astype(np.float64), lattice, r, rng)
    intensity *= np.exp(rng.normal(0, aug.intensity_jitter * s, intensity.shape))

    doublet = rng.random(n) < aug.ka2_probability
    ka2 = np.where(doublet[:, None], d_to_two_theta(two_theta_to_d_safe(two_theta), CU_KA2), np.nan)
    two_theta = np.concatenate([two_theta, ka2], axis=1)
    intensity = np.concatenate([intensity, np.where(doublet[:, None], 0.5 * intensity, 0)], axis=1)

    impure = rng.random(n) < aug.impurity_probability
    if impure.any():
        partner = rng.permutation(n)
        fraction = np.where(impure, _uniform(rng, aug.impurity_fraction, n), 0)[:, None]
        other = sticks.intensity[partner] / np.maximum(sticks.intensity[partner].max(axis=1, keepdims=True), 1e-9)
        scale = intensity[:, :sticks.intensity.shape[1]].max(axis=1, keepdims=True)
        two_theta = np.concatenate([two_theta, sticks.two_theta[partner]], axis=1)
        intensity = np.concatenate([intensity, other * fraction * scale], axis=1)

    tan = np.tan(np.radians(np.nan_to_num(two_theta, nan=90.0) / 2))
    u = _uniform(rng, aug.caglioti_u, n, s)[:, None]
    v = _uniform(rng, aug.caglioti_v, n, s)[:, None]
    w = _uniform(rng, aug.caglioti_w, n)[:, None]
    instrumental = np.sqrt(np.clip(u * tan ** 2 + v * tan + w, 1e-4, None))
    size_nm = _uniform(rng, aug.crystallite_nm, n, log=True)[:, None]
    cos = np.cos(np.radians(np.nan_to_num(two_theta, nan=0.0) / 2))
    scherrer = np.degrees(SCHERRER_K * CU_KA1 / (size_nm * 10.0 * cos))
    fwhm = np.clip(np.sqrt(instrumental ** 2 + (s * scherrer) ** 2), grid.step, 1.5)
    # Simulated intensities are integrated intensities: a broader peak is lower.
    intensity = intensity * (CLEAN_FWHM_DEG / fwhm)
    eta = _uniform(rng, aug.eta, n)
    profiles = render(two_theta, intensity, grid, fwhm=fwhm, eta=eta, normalise=True)

    return _measurement(profiles, grid, aug, rng)


def two_theta_to_d_safe(two_theta: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return CU_KA1 / (2 * np.sin(np.radians(two_theta) / 2))


def _measurement(profiles: np.ndarray, grid: TwoThetaGrid, aug: Augmentation,
                 rng: np.random.Generator) -> np.ndarray:
    """Background, counting and read noise, and a possibly shorter measured range."""
    n, size = profiles.shape
    s = aug.strength
    x = np.linspace(-1, 1, size)
    chebyshev = np.polynomial.chebyshev.chebvander(x, 3)                 # (size, 4)
    coefficients = rng.normal(0, 1, (n, 4)) * np.array([1, 0.6, 0.3, 0.15])
    background = coefficients @ chebyshev.T
    background -= background.min(axis=1, keepdims=True)
    background /= np.maximum(background.max(axis=1, keepdims=True), 1e-9)
    background *= _uniform(rng, aug.background_level, n, s)[:, None]
    hump = rng.random(n) < aug.hump_probability
    centre = rng.uniform(15, 35, (n, 1))
    width = rng.uniform(4, 12, (n, 1))
    level = np.where(hump, _uniform(rng, aug.hump_level, n, s), 0)[:, None]
    background += level * np.exp(-0.5 * ((grid.angles[None, :] - centre) / width) ** 2)

    counts = _uniform(rng, aug.counts, n, log=True)[:, None].astype(np.float32)
    expected = np.clip((profiles + background.astype(np.float32)) * counts, 0, None)
    # Counting noise: the normal approximation of Poisson statistics (an order of magnitude
    # faster to draw; the two differ only at a few counts, where the read noise dominates).
    gaussian = rng.standard_normal((n, size), dtype=np.float32)
    noisy = np.clip(expected + np.sqrt(expected) * gaussian, 0, None) / counts
    noisy += rng.standard_normal((n, size), dtype=np.float32) * \
        _uniform(rng, aug.read_noise, n, s)[:, None].astype(np.float32)

    truncate = rng.random(n) < aug.truncate_probability
    start = np.where(truncate & (rng.random(n) < 0.5), rng.uniform(grid.start, 10, n), grid.start)
    stop = np.where(truncate, rng.uniform(60, 80, n), grid.stop)
    stop = np.where(truncate & (start > grid.start), grid.stop, stop)
    inside = (grid.angles[None, :] >= start[:, None]) & (grid.angles[None, :] <= stop[:, None])
    clipped = np.where(inside, noisy, np.nan)
    low = np.nanmin(clipped, axis=1, keepdims=True)
    high = np.nanmax(clipped, axis=1, keepdims=True)
    scaled = (clipped - low) / np.maximum(high - low, 1e-9)
    return np.nan_to_num(scaled, nan=0.0).astype(np.float32)


__all__ = ["Augmentation", "EFFECTS", "NO_AUGMENTATION", "QUIET", "StickBatch",
           "augment_profiles", "normalise_profiles", "metric_inverse", "only"]
