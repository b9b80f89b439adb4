"""Powder indexing: a unit cell that explains a pattern's first peak positions.

Trial-and-error indexing in the spirit of TREOR (Werner, Eriksson & Westdahl 1985): a few
low-angle lines are given small Miller indices, the reciprocal metric those assignments fix is
solved for, and a trial survives when it indexes most of the first 20 lines. Survivors are
refined by least squares (with a zero shift) and ranked by de Wolff's figure of merit M20
(J. Appl. Cryst. 1 (1968) 108): the 20th line's 1/d², over twice the mean misfit times the
number of distinct lines the cell allows up to there. The lattice centring is the one that
allows every indexed line and the fewest others.

Cubic to monoclinic cells are searched by assigning indices to lines; triclinic cells, whose
six unknowns make that too slow, by zones in the spirit of Ito (1949): three low-angle lines
are taken as a*, b*, c* and each cross term comes from a line that fits a (1, ±1)-type index
of the zone the two axes span. Triclinic is searched last, only when no higher family indexed
every line convincingly. An answer is a hint, as from any indexing program: on the 222
measured RRUFF patterns a best cell with M20 >= 20 had the right crystal family 89 % of the
time, and the right family over all of them 82 % (``benchmarks/indexing.py``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.grid import CU_KA

SYSTEMS = ("cubic", "hexagonal", "tetragonal", "orthorhombic", "monoclinic", "triclinic")
# The crystal family each crystal system's cell is searched as (a cell alone cannot tell a
# trigonal crystal with a hexagonal lattice from a hexagonal one).
FAMILY_OF_SYSTEM = {"triclinic": "triclinic", "monoclinic": "monoclinic",
                    "orthorhombic": "orthorhombic", "tetragonal": "tetragonal",
                    "trigonal": "hexagonal", "hexagonal": "hexagonal", "cubic": "cubic"}
CENTRINGS = {"cubic": ("P", "I", "F"), "tetragonal": ("P", "I"), "hexagonal": ("P", "R"),
             "orthorhombic": ("P", "C", "A", "B", "I", "F"), "monoclinic": ("P", "C", "A", "I"),
             "triclinic": ("P",)}
# Lattice points per cell of each centring (S: one face centred, as in a Bravais symbol).
LATTICE_POINTS = {"P": 1, "A": 2, "B": 2, "C": 2, "S": 2, "I": 2, "R": 3, "F": 4}
# Lines used: de Wolff's M20 is defined on the first 20.
N_LINES = 20
# Trial cells come from this many lowest-angle lines.
N_TRIAL_LINES = {"cubic": 3, "hexagonal": 5, "tetragonal": 5, "orthorhombic": 5, "monoclinic": 6,
                 "triclinic": 7}
# Largest Miller index sum in the trial assignments (TREOR's base lines are low-index ones).
TRIAL_INDEX_SUM = {"cubic": 6, "hexagonal": 4, "tetragonal": 4, "orthorhombic": 3, "monoclinic": 2}
# C-centred monoclinic cells have few low-index lines (h + k odd are absent) and often need
# 11-1, 111 or 021 among their lowest: extra trials give C-allowed indices up to this sum to
# the first CENTRED_TRIAL_LINES lines (a wider primitive table would be far slower).
CENTRED_TRIAL_INDEX_SUM = 3
CENTRED_TRIAL_LINES = 5
MAX_AXIS = 30.0  # Å
MAX_VOLUME = 4000.0  # Å³
# Monoclinic β is kept in [90°, MAX_BETA]: wider angles mean a non-reduced cell.
MAX_BETA = 130.0
# Solutions are ranked by M20 times this: a lower symmetry can index the same lines with
# more parameters, so it must fit much better to win.
SYMMETRY_PREFERENCE = {"cubic": 16.0, "hexagonal": 8.0, "tetragonal": 8.0, "orthorhombic": 4.0,
                       "monoclinic": 1.0, "triclinic": 0.25}
# Each line a cell leaves unindexed divides its score by this.
UNINDEXED_PENALTY = 3.0
# Trial cells are made from lines corrected by each of these zero shifts (degrees of 2θ): a
# zero error of a tenth of a degree changes the lowest lines' 1/d² by a percent or more.
TRIAL_ZERO_SHIFTS = (0.0, -0.08, 0.08)
# Largest zero shift refined, degrees of 2θ.
MAX_ZERO_SHIFT = 0.15
# Trials are counted within this many times the final tolerance.
TRIAL_TOLERANCE_FACTOR = 2.5
TRIAL_RELATIVE_TOLERANCE = 0.003
# Lower symmetries are not searched once a cell indexes every line this well.
CONVINCING_M20 = 20.0
# Trials are first counted on this many lowest-angle lines.
N_COUNTED = 10
# The best solutions are checked for a higher metric symmetry (see _promoted), with this
# spglib distance tolerance (Å) on their lattice points.
N_PROMOTED = 10
PROMOTION_SYMPREC = 0.1
# Trials that survive the first, cheap count and are refined.
N_REFINED = 40
N_REFINED_TRICLINIC = 16  # fewer: each trial is slower to refine, and they are many more
# Triclinic zones: the cross-term candidates kept per pair of axes (those whose zone indexes
# the most lines), and the largest index along each zone axis when counting them.
N_ZONE_CANDIDATES = 6
ZONE_INDEX = 4
# A zone's cross term X is tried up to this times sqrt(qa·qb) (2: any positive-definite zone).
ZONE_BOUND = 2.0
# Of the combinations of three zones' cross terms, those whose zones index the most lines are
# tried, this many for each three lines.
N_TRICLINIC_COMBINATIONS = 96


@dataclass(frozen=True)
class IndexedLine:
    """One observed line and the reflection(s) that index it."""

    two_theta: float
    two_theta_calc: float | None
    hkl: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class CellSolution:
    """A cell that indexes a pattern.

    Attributes:
        system: crystal family searched ("hexagonal" covers trigonal and hexagonal cells).
        centring: P, I, F, C, A, B or R (monoclinic A and I cells are C cells in another setting).
        cell: a, b, c (Å), α, β, γ (degrees).
        volume: Å³.
        m20: de Wolff's figure of merit on the lines used.
        n_unindexed: lines among those used that the cell does not index.
        zero_shift: refined 2θ zero offset, degrees (observed minus true).
        lines: every line used, indexed or not.
    """

    system: str
    centring: str
    cell: tuple[float, float, float, float, float, float]
    volume: float
    m20: float
    n_unindexed: int
    zero_shift: float
    lines: tuple[IndexedLine, ...]

    @property
    def bravais_lattice(self) -> str:
        """Pearson-style symbol as :func:`core.symmetry.bravais_lattice_of` writes it."""
        family = {"cubic": "c", "tetragonal": "t", "hexagonal": "h", "orthorhombic": "o",
                  "monoclinic": "m", "triclinic": "a"}[self.system]
        if self.system == "monoclinic" and self.centring != "P":
            return "mS"
        return family + ("S" if self.centring in "ABC" else self.centring)

    @property
    def lattice_points(self) -> int:
        """Lattice points per cell (the primitive cell's volume is volume / this)."""
        return LATTICE_POINTS[self.centring]


def _terms(system: str, hkl: np.ndarray) -> np.ndarray:
    """(n, p) coefficients of the p reciprocal-metric unknowns in 1/d² for each hkl."""
    h, k, l = (hkl[..., i].astype(np.float64) for i in range(3))
    if system == "cubic":
        return (h * h + k * k + l * l)[..., None]
    if system == "tetragonal":
        return np.stack([h * h + k * k, l * l], axis=-1)
    if system == "hexagonal":
        return np.stack([h * h + h * k + k * k, l * l], axis=-1)
    if system == "orthorhombic":
        return np.stack([h * h, k * k, l * l], axis=-1)
    if system == "monoclinic":
        return np.stack([h * h, k * k, l * l, h * l], axis=-1)
    return np.stack([h * h, k * k, l * l, h * l, k * l, h * k], axis=-1)


def _allowed(centring: str, hkl: np.ndarray) -> np.ndarray:
    h, k, l = hkl[..., 0], hkl[..., 1], hkl[..., 2]
    return {"P": np.ones(h.shape, bool), "I": (h + k + l) % 2 == 0, "C": (h + k) % 2 == 0,
            "A": (k + l) % 2 == 0, "B": (h + l) % 2 == 0, "R": (-h + k + l) % 3 == 0,
            "F": ((h % 2) == (k % 2)) & ((k % 2) == (l % 2))}[centring]


@lru_cache(maxsize=4096)
def _hkl_table(system: str, limits: tuple[int, int, int], all_signs: bool = True) -> np.ndarray:
    """Miller indices up to ``limits`` that give every distinct 1/d² of the family (0 excluded).

    Monoclinic cells need negative h, triclinic ones negative h and k. Hexagonal ones need
    negative h and k only to test the rhombohedral condition (``all_signs``): h, k >= 0
    already give every h² + hk + k².
    Read-only: the same few tables serve every trial, so each is made once per process.
    """
    lh, lk, ll = limits
    signed_k = system == "triclinic" or (system == "hexagonal" and all_signs)
    signed_h = signed_k or system == "monoclinic"
    hs = np.arange(-lh if signed_h else 0, lh + 1)
    ks = np.arange(-lk if signed_k else 0, lk + 1)
    grid = np.stack(np.meshgrid(hs, ks, np.arange(0, ll + 1), indexing="ij"), -1).reshape(-1, 3)
    table = grid[np.abs(grid).sum(1) > 0]
    table.flags.writeable = False
    return table


def _trial_hkl(system: str, centred: bool = False) -> np.ndarray:
    """Distinct low Miller indices given to trial lines: primitive ones up to the family's
    index sum, or (``centred``, monoclinic only) C-allowed ones up to a larger sum."""
    table = _hkl_table(system, (3, 3, 3))
    if centred:
        table = table[(np.abs(table).sum(1) <= CENTRED_TRIAL_INDEX_SUM) & _allowed("C", table)]
    else:
        table = table[np.abs(table).sum(1) <= TRIAL_INDEX_SUM[system]]
    _, first = np.unique(np.round(_terms(system, table), 9), axis=0, return_index=True)
    return table[np.sort(first)]


def _reciprocal_metric(params: np.ndarray) -> np.ndarray:
    """(n, 3, 3) reciprocal metric G* of triclinic parameters (h², k², l², hl, kl, hk)."""
    p = params
    return np.stack([np.stack([p[:, 0], p[:, 5] / 2, p[:, 3] / 2], -1),
                     np.stack([p[:, 5] / 2, p[:, 1], p[:, 4] / 2], -1),
                     np.stack([p[:, 3] / 2, p[:, 4] / 2, p[:, 2]], -1)], -2)


def _direct_axes(params: np.ndarray) -> np.ndarray:
    """(n, 3) direct cell lengths a, b, c (Å) of triclinic parameter rows."""
    metric = np.linalg.inv(_reciprocal_metric(params))
    return np.sqrt(np.abs(np.diagonal(metric, axis1=1, axis2=2)))


def _metric_ok(system: str, params: np.ndarray) -> np.ndarray:
    """Which rows of reciprocal-metric parameters give a sensible cell."""
    if system == "triclinic":
        det = np.linalg.det(_reciprocal_metric(params))
        minors = (params[:, 0] > 0) & (params[:, 0] * params[:, 1] > params[:, 5] ** 2 / 4)
        ok = minors & (det > 0) & np.all(params[:, :3] < 1.0, axis=1)
        rows = np.flatnonzero(ok)  # G* positive definite: it can be inverted
        ok[rows] = np.all(_direct_axes(params[rows]) < MAX_AXIS, axis=1) \
            & (det[rows] ** -0.5 < MAX_VOLUME)
        return ok
    squares = params[:, :3] if system in ("orthorhombic", "monoclinic") else params
    ok = np.all(squares > 1.0 / MAX_AXIS ** 2, axis=1) & np.all(squares < 1.0, axis=1)
    if system == "monoclinic":
        cos_beta_star = params[:, 3] / (2.0 * np.sqrt(np.abs(params[:, 0] * params[:, 2])) + 1e-30)
        ok &= (cos_beta_star >= 0) & (cos_beta_star < np.cos(np.radians(180.0 - MAX_BETA)))
    volume = _volume(system, np.where(ok[:, None], params, 1.0))
    return ok & (volume < MAX_VOLUME)


def _volume(system: str, params: np.ndarray) -> np.ndarray:
    p = params
    det = {"cubic": lambda: p[:, 0] ** 3, "tetragonal": lambda: p[:, 0] ** 2 * p[:, 1],
           "hexagonal": lambda: 0.75 * p[:, 0] ** 2 * p[:, 1],
           "orthorhombic": lambda: p[:, 0] * p[:, 1] * p[:, 2],
           "monoclinic": lambda: p[:, 1] * (p[:, 0] * p[:, 2] - p[:, 3] ** 2 / 4.0),
           "triclinic": lambda: np.linalg.det(_reciprocal_metric(p))}[system]()
    return 1.0 / np.sqrt(np.maximum(det, 1e-30))


def _cell(system: str, p: np.ndarray) -> tuple[float, float, float, float, float, float]:
    if system == "cubic":
        a = 1 / np.sqrt(p[0])
        return (a, a, a, 90.0, 90.0, 90.0)
    if system == "tetragonal":
        a = 1 / np.sqrt(p[0])
        return (a, a, 1 / np.sqrt(p[1]), 90.0, 90.0, 90.0)
    if system == "hexagonal":
        a = np.sqrt(4.0 / (3.0 * p[0]))
        return (a, a, 1 / np.sqrt(p[1]), 90.0, 90.0, 120.0)
    if system == "orthorhombic":
        return (1 / np.sqrt(p[0]), 1 / np.sqrt(p[1]), 1 / np.sqrt(p[2]), 90.0, 90.0, 90.0)
    if system == "triclinic":
        g = np.linalg.inv(_reciprocal_metric(p[None])[0])
        a, b, c = np.sqrt(np.diag(g))
        angles = np.degrees(np.arccos(np.clip([g[1, 2] / (b * c), g[0, 2] / (a * c),
                                               g[0, 1] / (a * b)], -1.0, 1.0)))
        return (a, b, c, *angles)
    a_star, b_star, c_star = np.sqrt(p[:3])
    cos_beta_star = p[3] / (2 * a_star * c_star)
    sin_beta_star = np.sqrt(1 - cos_beta_star ** 2)
    beta = 180.0 - np.degrees(np.arccos(cos_beta_star))
    return (1 / (a_star * sin_beta_star), 1 / b_star, 1 / (c_star * sin_beta_star), 90.0, beta, 90.0)


@lru_cache(maxsize=None)
def _trial_inverses(system: str, centred: bool = False) -> np.ndarray:
    """(n, p, p): inverses of every regular assignment of trial indices to p lines. The same
    for every pattern, so made once per process."""
    terms = _terms(system, _trial_hkl(system, centred))
    rows = np.array(list(itertools.permutations(range(len(terms)), terms.shape[1])))
    matrices = terms[rows]  # (n, p, p): one trial assignment of indices per row
    inverses = np.linalg.inv(matrices[np.abs(np.linalg.det(matrices)) > 1e-9])
    inverses.flags.writeable = False
    return inverses


def _zone_cross_terms(q: np.ndarray, qa: float, qb: float, loose: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate cross terms X >= 0 of the zone 1/d² = h²·qa + k²·qb + hk·X, from lines that fit
    (1, ±1), (2, ±1) or (1, ±2) (any X of a positive-definite zone: the axes need not be a
    reduced basis, since a weak line may be missing). Returns the N_ZONE_CANDIDATES whose zone
    indexes the most lines, and those counts."""
    x = np.concatenate([np.abs(q - qa - qb), np.abs(q - 4 * qa - qb) / 2,
                        np.abs(q - qa - 4 * qb) / 2])
    x = np.unique(np.round(x[x < ZONE_BOUND * np.sqrt(qa * qb)], 7))
    if len(x) == 0:
        return x, np.zeros(0, np.int64)
    h, k = np.meshgrid(np.arange(0, ZONE_INDEX + 1), np.arange(-ZONE_INDEX, ZONE_INDEX + 1))
    h, k = h.ravel(), k.ravel()
    zone = (h * h * qa + k * k * qb)[None, :] + x[:, None] * (h * k)[None, :]
    counts = (np.abs(zone[:, :, None] - q[None, None, :]) < loose).any(1).sum(1)
    best = np.argsort(-counts, kind="stable")[:N_ZONE_CANDIDATES]
    return x[best], counts[best]


def _triclinic_trials(q: np.ndarray, loose: np.ndarray) -> np.ndarray:
    """Triclinic parameters (h², k², l², hl, kl, hk) from zones: three of the lowest lines as
    a*², b*², c*², and the combinations of their zones' candidate cross terms (hk and hl taken
    >= 0, which fixes the signs of b and c; kl of both signs) whose three zones index the most
    lines, N_TRICLINIC_COMBINATIONS per three lines."""
    first = range(min(N_TRIAL_LINES["triclinic"], len(q)))
    zones = {(i, j): _zone_cross_terms(q, q[i], q[j], loose)
             for i, j in itertools.combinations(first, 2)}
    found = []
    for i, j, k in itertools.combinations(first, 3):
        qa, qb, qc = q[i], q[j], q[k]
        (ab, n_ab), (ac, n_ac), (bc, n_bc) = zones[i, j], zones[i, k], zones[j, k]
        bc, n_bc = np.concatenate([bc, -bc]), np.concatenate([n_bc, n_bc])
        score = n_ab[:, None, None] + n_ac[None, :, None] + n_bc[None, None, :]
        best = np.argsort(-score, axis=None, kind="stable")[:N_TRICLINIC_COMBINATIONS]
        i_ab, i_ac, i_bc = np.unravel_index(best, score.shape)
        found += [(qa, qb, qc, x_ac, x_bc, x_ab)
                  for x_ab, x_ac, x_bc in zip(ab[i_ab], ac[i_ac], bc[i_bc])]
    return np.array(found).reshape(-1, 6)


def _trials(system: str, q: np.ndarray, loose: np.ndarray) -> np.ndarray:
    """Reciprocal-metric parameters of trial cells: fixed by giving the lowest lines small
    Miller indices, or (triclinic) made from zones."""
    if system == "triclinic":
        params = _triclinic_trials(q, loose)
        return _unique_trials(params[_metric_ok(system, params)]) if len(params) else params
    tables = [(_trial_inverses(system), N_TRIAL_LINES[system])]
    if system == "monoclinic":
        tables.append((_trial_inverses(system, centred=True), CENTRED_TRIAL_LINES))
    n_params = tables[0][0].shape[1]
    found = []
    for inverses, n_lines in tables:
        for chosen in itertools.combinations(range(min(n_lines, len(q))), n_params):
            params = inverses @ q[list(chosen)]
            found.append(params[_metric_ok(system, params)])
    params = np.concatenate(found) if found else np.zeros((0, n_params))
    return _unique_trials(params) if len(params) else params


def _unique_trials(params: np.ndarray) -> np.ndarray:
    """One of each group of trials that agree to about 0.3 % (first occurrences kept)."""
    n_params = params.shape[1]
    key = np.round(np.log(params[:, :3] if n_params > 3 else params) * 300).astype(np.int64)
    if n_params > 3:
        key = np.column_stack([key, np.round(params[:, 3:] / params[:, :1] * 300).astype(np.int64)])
    _, first = np.unique(key, axis=0, return_index=True)
    return params[np.sort(first)]


def _candidates(system: str, params: np.ndarray, q: np.ndarray, q_max: float,
                dtype=np.float64) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Per (h, k) pair and observed line, the reflections (h, k, l) nearest to it in 1/d².

    Solving 1/d² = c0 + c1·l + c2·l² for l, rather than listing every l, keeps the work linear
    in the number of (h, k) pairs. Returns the (h, k) table and, per root of that quadratic,
    l (n, hk, m) and the calculated 1/d² (n, hk, m); only monoclinic and triclinic cells have
    two roots.
    """
    if system == "triclinic":  # |h| <= a·|r*| exactly, a the direct axis
        limit_h, limit_k = (int(n) for n in np.ceil(np.sqrt(q_max)
                                                    * _direct_axes(params)[:, :2].max(0)))
    else:
        a_star2 = params[:, 0]
        limit_h = int(np.ceil(np.sqrt(q_max / a_star2.min())
                              * (1.6 if system == "monoclinic" else 1.2)))
        b_star2 = params[:, 1] if system in ("orthorhombic", "monoclinic") else a_star2
        limit_k = int(np.ceil(np.sqrt(q_max / b_star2.min()) * 1.2))
    hk = np.vstack([_hkl_table(system, (limit_h, limit_k, 0), all_signs=False), [[0, 0, 0]]])
    h, k = hk[:, 0].astype(dtype), hk[:, 1].astype(dtype)
    p = params.astype(dtype)[:, None, :]
    c1 = None
    if system == "cubic":
        c0, c2 = p[..., 0] * (h * h + k * k), p[..., 0]
    elif system in ("tetragonal", "hexagonal"):
        form = h * h + k * k if system == "tetragonal" else h * h + h * k + k * k
        c0, c2 = p[..., 0] * form, p[..., 1]
    elif system == "orthorhombic":
        c0, c2 = p[..., 0] * h * h + p[..., 1] * k * k, p[..., 2]
    elif system == "monoclinic":
        c0, c1, c2 = p[..., 0] * h * h + p[..., 1] * k * k, (p[..., 3] * h)[..., None], p[..., 2]
    else:
        c0 = p[..., 0] * h * h + p[..., 1] * k * k + p[..., 5] * h * k
        c1, c2 = (p[..., 3] * h + p[..., 4] * k)[..., None], p[..., 2]
    c0, c2 = c0[..., None], c2[..., None]
    target = q.astype(dtype)[None, None, :]
    ls, calcs = [], []
    if c1 is None:
        l_value = np.rint(np.sqrt(np.maximum((target - c0) / c2, 0.0)))
        ls.append(l_value)
        calcs.append(c0 + c2 * l_value * l_value)
    else:
        root = np.sqrt(np.maximum(c1 * c1 + 4 * c2 * (target - c0), 0.0))
        for sign in (1.0, -1.0):
            l_value = np.maximum(np.rint((-c1 + sign * root) / (2 * c2)), 0.0)
            ls.append(l_value)
            calcs.append(c0 + c1 * l_value + c2 * l_value * l_value)
    return hk, ls, calcs


def _misfit(system: str, params: np.ndarray, q: np.ndarray, q_max: float) -> np.ndarray:
    """(n, m): for each parameter row, the 1/d² distance of each line to its nearest reflection."""
    _, _, calcs = _candidates(system, params, q, q_max, np.float32)
    target = q.astype(np.float32)[None, None, :]
    return np.min([np.abs(calc - target).min(axis=1) for calc in calcs], axis=0)


def _nearest(system: str, params: np.ndarray, q: np.ndarray, q_max: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """For each parameter row and observed 1/d², the closest calculated 1/d² and its hkl.

    Returns (calc (n, m), hkl (n, m, 3)).
    """
    hk, ls, calcs = _candidates(system, params, q, q_max)
    best_calc = np.full((len(params), len(q)), np.inf)
    best_hkl = np.zeros((len(params), len(q), 3), np.int64)
    for l_value, calc in zip(ls, calcs):
        calc = np.where(calc > 0, calc, np.inf)
        pick = np.argmin(np.abs(calc - q), axis=1)  # (n, m)
        chosen = np.take_along_axis(calc, pick[:, None, :], axis=1)[:, 0, :]
        better = np.abs(chosen - q) < np.abs(best_calc - q)
        best_calc = np.where(better, chosen, best_calc)
        l_chosen = np.take_along_axis(np.broadcast_to(l_value, calc.shape), pick[:, None, :],
                                      axis=1)[:, 0, :]
        new_hkl = np.concatenate([hk[pick][..., :2], l_chosen[..., None].astype(np.int64)], -1)
        best_hkl = np.where(better[..., None], new_hkl, best_hkl)
    return best_calc, best_hkl


def q_from_two_theta(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """1/d² (Å⁻²) of 2θ (degrees) at ``wavelength`` (Å)."""
    return (2.0 * np.sin(np.radians(two_theta) / 2.0) / wavelength) ** 2


def _two_theta_from_q(q: np.ndarray, wavelength: float) -> np.ndarray:
    return 2.0 * np.degrees(np.arcsin(np.clip(np.sqrt(q) * wavelength / 2.0, 0.0, 1.0)))


def q_tolerance(two_theta: np.ndarray, wavelength: float, tolerance: float) -> np.ndarray:
    """1/d² span of ±tolerance degrees of 2θ at each line."""
    return 2.0 * np.sin(np.radians(two_theta)) / wavelength ** 2 * np.radians(tolerance)


def index_pattern(two_theta: np.ndarray, wavelength: float = CU_KA, tolerance: float = 0.03,
                  systems: tuple[str, ...] = SYSTEMS, n_lines: int = N_LINES,
                  top: int = 5) -> list[CellSolution]:
    """Cells that index the lowest-angle peak positions, best first.

    Args:
        two_theta: observed peak positions, degrees; only the lowest ``n_lines`` are used.
        wavelength: Å (Cu Kα by default).
        tolerance: largest 2θ misfit, degrees, for a line to count as indexed.
        systems: crystal families to search.
        n_lines: how many lines to index (20 for M20).
        top: how many solutions to return.

    Returns:
        Solutions, best first: by M20 times :data:`SYMMETRY_PREFERENCE`, divided by
        :data:`UNINDEXED_PENALTY` for each line left unindexed. Empty when no cell indexes
        all but two lines.
    """
    two_theta = np.sort(np.asarray(two_theta, dtype=np.float64))
    two_theta = two_theta[np.isfinite(two_theta) & (two_theta > 2.0) & (two_theta < 170.0)]
    two_theta = two_theta[:n_lines]
    if len(two_theta) < 6:
        return []
    q = q_from_two_theta(two_theta, wavelength)
    q_tol = q_tolerance(two_theta, wavelength, tolerance)
    # Trials are counted with a looser tolerance: a zero shift, refined later, moves every
    # line, and a trial cell's scale error moves high-angle lines most.
    loose = np.maximum(q_tolerance(two_theta, wavelength, TRIAL_TOLERANCE_FACTOR * tolerance),
                       TRIAL_RELATIVE_TOLERANCE * q)
    solutions = []
    for system in systems:
        for zero in TRIAL_ZERO_SHIFTS:
            solutions += _search(system, two_theta, zero, loose, q_tol, wavelength)
        if any(s.n_unindexed == 0 and s.m20 >= CONVINCING_M20 for s in solutions):
            break
    solutions.sort(key=lambda s: -_score(s))
    # A lattice is described in the highest family its metric has, when that indexes as much.
    for i, solution in enumerate(solutions[:N_PROMOTED]):
        promoted = _promoted(solution, two_theta, loose, q_tol, wavelength)
        if promoted is not None and promoted.n_unindexed <= solution.n_unindexed:
            solutions[i] = promoted
    solutions.sort(key=lambda s: -_score(s))
    return _distinct(solutions)[:top]


_FAMILY_RANK = {"triclinic": -1, "monoclinic": 0, "orthorhombic": 1, "tetragonal": 2,
                "hexagonal": 2, "cubic": 3}
_CENTRING_POINTS = {"P": [], "I": [[0.5, 0.5, 0.5]], "C": [[0.5, 0.5, 0]], "A": [[0, 0.5, 0.5]],
                    "B": [[0.5, 0, 0.5]], "R": [[2 / 3, 1 / 3, 1 / 3], [1 / 3, 2 / 3, 2 / 3]],
                    "F": [[0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]}


def _promoted(solution: CellSolution, two_theta: np.ndarray, loose: np.ndarray,
              q_tol: np.ndarray, wavelength: float) -> CellSolution | None:
    """The same lattice described in a higher crystal family, refined, when its metric has
    that symmetry (spglib on the lattice points): an fcc lattice indexed as rhombohedral, or
    an orthorhombic one as monoclinic with β = 90°."""
    import spglib
    from pymatgen.core import Lattice

    from core.symmetry import crystal_system_of

    lattice = Lattice.from_parameters(*solution.cell).matrix
    points = np.array([[0.0, 0.0, 0.0]] + _CENTRING_POINTS[solution.centring])
    cell = (lattice, points, np.ones(len(points), int))
    dataset = spglib.get_symmetry_dataset(cell, symprec=PROMOTION_SYMPREC)
    if dataset is None:
        return None
    system = crystal_system_of(int(dataset.number))
    system = "hexagonal" if system == "trigonal" else system
    if system not in _FAMILY_RANK or _FAMILY_RANK[system] <= _FAMILY_RANK[solution.system]:
        return None
    g_star = np.linalg.inv(dataset.std_lattice @ dataset.std_lattice.T)
    params = {"cubic": [g_star[0, 0]], "tetragonal": [g_star[0, 0], g_star[2, 2]],
              "hexagonal": [g_star[0, 0], g_star[2, 2]],
              "orthorhombic": [g_star[0, 0], g_star[1, 1], g_star[2, 2]],
              # b unique; the sign of a chosen so that β is obtuse
              "monoclinic": [g_star[0, 0], g_star[1, 1], g_star[2, 2], 2 * abs(g_star[0, 2])]
              }[system]
    return _refine(system, np.array(params), two_theta, solution.zero_shift, loose, q_tol,
                   wavelength)


def _score(solution: CellSolution) -> float:
    return (solution.m20 * SYMMETRY_PREFERENCE[solution.system]
            / UNINDEXED_PENALTY ** solution.n_unindexed)


def _search(system: str, two_theta: np.ndarray, zero: float, loose: np.ndarray,
            q_tol: np.ndarray, wavelength: float) -> list[CellSolution]:
    """Refined cells of one family from trials on lines corrected for a trial zero shift."""
    q = q_from_two_theta(two_theta - zero, wavelength)
    params = _trials(system, q, loose)
    if len(params) == 0:
        return []
    # Trials are counted on the first lines only: a trial cell's small errors grow with
    # angle, and refinement on the lines it does index removes them.
    n_used = min(N_COUNTED, len(q))
    counts = _count_indexed(system, params, q[:n_used], loose[:n_used])
    keep = np.argsort(-counts, kind="stable")[:N_REFINED_TRICLINIC if system == "triclinic"
                                               else N_REFINED]
    keep = keep[counts[keep] >= n_used - 2]
    found = []
    for row in params[keep]:
        solution = _refine(system, row, two_theta, zero, loose, q_tol, wavelength)
        if solution is not None:
            found.append(solution)
    return found


def _count_indexed(system: str, params: np.ndarray, q: np.ndarray, q_tol: np.ndarray
                   ) -> np.ndarray:
    """How many of the lines each trial indexes."""
    if len(params) == 0:
        return np.zeros(0, np.int64)
    # Chunks of similar cell size keep each chunk's table of (h, k) small.
    size = -_direct_axes(params)[:, :2].max(1) if system == "triclinic" else params[:, :2].min(1)
    order = np.argsort(size)
    counts = np.zeros(len(params), np.int64)
    for chunk in np.array_split(order, max(1, len(order) // 200)):
        counts[chunk] = (_misfit(system, params[chunk], q, q[-1]) < q_tol).sum(1)
    return counts


def _refine(system: str, params: np.ndarray, two_theta: np.ndarray, zero: float,
            loose: np.ndarray, q_tol: np.ndarray, wavelength: float) -> CellSolution | None:
    """Least-squares cell and zero shift from the lines a trial indexes; None if it degrades.

    Lines are matched within the loose tolerance while refining, within ``q_tol`` at the end.
    """
    q = q_from_two_theta(two_theta, wavelength)
    slope = 2.0 * np.sin(np.radians(two_theta)) / wavelength ** 2 * np.radians(1.0)
    # Lines are added in steps, so that each refinement extrapolates only a little; the last
    # step runs twice, since the cell refined on every line can index lines it missed before.
    for n_used in sorted({min(n, len(q)) for n in (N_COUNTED, 15, len(q))}) + [len(q)]:
        q_corrected = q[:n_used] - zero * slope[:n_used]
        calc, hkl = _nearest(system, params[None], q_corrected, q_corrected[-1])
        indexed = np.abs(calc[0] - q_corrected) < loose[:n_used]
        if indexed.sum() < len(params) + 2:
            return None
        design = np.column_stack([_terms(system, hkl[0][indexed]), slope[:n_used][indexed]])
        solution, *_ = np.linalg.lstsq(design, q[:n_used][indexed], rcond=None)
        new_params, zero = solution[:-1], float(solution[-1])
        if abs(zero) > MAX_ZERO_SHIFT or not _metric_ok(system, new_params[None])[0]:
            return None
        params = new_params
    q_corrected = q - zero * slope
    if system == "orthorhombic":  # the usual setting a <= b <= c
        params = np.sort(params)[::-1]
    if system == "monoclinic":
        params = _reduced_monoclinic(params)
    if system == "triclinic":
        params = _reduced_triclinic(params)
    return _solution(system, params, two_theta, q_corrected, q_tol, wavelength, zero)


def _reduced_monoclinic(params: np.ndarray) -> np.ndarray:
    """The same monoclinic lattice with the shortest a and c (Gauss reduction in the ac plane),
    a <= c and β obtuse."""
    a, b, c, _, beta, _ = _cell("monoclinic", params)
    u = np.array([a, 0.0])
    v = c * np.array([np.cos(np.radians(beta)), np.sin(np.radians(beta))])
    while True:
        if u @ u > v @ v:
            u, v = v, u
        m = np.rint((u @ v) / (u @ u))
        if m == 0:
            break
        v = v - m * u
    a, c = np.hypot(*u), np.hypot(*v)
    cos_beta = -abs(u @ v) / (a * c)  # obtuse: flip one axis if needed
    sin2 = 1.0 - cos_beta ** 2
    return np.array([1 / (a * a * sin2), 1 / (b * b), 1 / (c * c * sin2),
                     -2 * cos_beta / (a * c * sin2)])


def _reduced_triclinic(params: np.ndarray) -> np.ndarray:
    """The same triclinic lattice in its Niggli-reduced cell (pymatgen)."""
    from pymatgen.core import Lattice

    reduced = Lattice.from_parameters(*_cell("triclinic", params)).get_niggli_reduced_lattice()
    g_star = np.linalg.inv(reduced.metric_tensor)
    return np.array([g_star[0, 0], g_star[1, 1], g_star[2, 2], 2 * g_star[0, 2],
                     2 * g_star[1, 2], 2 * g_star[0, 1]])


def _solution(system: str, params: np.ndarray, two_theta: np.ndarray, q: np.ndarray,
              q_tol: np.ndarray, wavelength: float, zero: float) -> CellSolution | None:
    q_max = q[-1] * 1.0005
    limit = [int(np.ceil(np.sqrt(q_max) * axis)) + 1 for axis in _cell(system, params)[:3]]
    if system == "hexagonal":
        limit = [limit[0] * 2, limit[0] * 2, limit[2]]
    table = _hkl_table(system, tuple(limit))
    q_table = _terms(system, table) @ params
    table, q_table = table[q_table <= q_max], q_table[q_table <= q_max]
    misfit = np.abs(q_table[None, :] - q[:, None])
    matches = misfit < q_tol[:, None]
    indexed = matches.any(1)
    if indexed.sum() < len(q) - 2:
        return None
    best = None
    for centring in CENTRINGS[system]:
        allowed = _allowed(centring, table)
        if not all((matches[i] & allowed).any() for i in np.flatnonzero(indexed)):
            continue
        n_calc = len(np.unique(np.round(q_table[allowed] / q_max, 6)))
        if best is None or n_calc < best[1]:
            best = (centring, n_calc, allowed)
    if best is None:
        return None
    centring, n_calc, allowed = best
    errors = np.where(matches & allowed[None, :], misfit, np.inf).min(1)[indexed]
    m20 = float(q[-1] / (2.0 * max(errors.mean(), 1e-7 * q[-1]) * n_calc))
    lines = []
    for i, tt in enumerate(two_theta):
        hits = np.flatnonzero(matches[i] & allowed)
        hkl = tuple(tuple(int(x) for x in table[j]) for j in hits[np.argsort(misfit[i, hits])][:3])
        calc = float(_two_theta_from_q(q_table[hits[np.argmin(misfit[i, hits])]], wavelength)
                     + zero) if len(hits) else None
        lines.append(IndexedLine(float(tt), calc, hkl))
    return CellSolution(system, centring, tuple(float(x) for x in _cell(system, params)),
                        float(_volume(system, params[None])[0]), m20,
                        int(len(q) - indexed.sum()), zero, tuple(lines))


def _distinct(solutions: list[CellSolution]) -> list[CellSolution]:
    """Drop solutions that repeat an earlier one's family and primitive volume."""
    kept: list[CellSolution] = []
    for solution in solutions:
        reduced = solution.volume / solution.lattice_points
        if not any(s.system == solution.system and abs(s.volume / s.lattice_points - reduced)
                   < 0.01 * reduced for s in kept):
            kept.append(solution)
    return kept


# Re-ranking a network's space groups by an indexed cell's lattice (with core.absences; the
# classify default). Chosen on project data (docs/model-history.md): below RERANK_M20 the cell
# is ignored (30, re-chosen on measured-like fresh crystals); above it, groups of another
# centring in the cell's family keep RERANK_SAME_FAMILY of their probability, groups of other
# families RERANK_OTHER (both chosen on held-out train_v12 crystals).
RERANK_M20 = 30.0
RERANK_SAME_FAMILY = 0.1
RERANK_OTHER = 0.01
def lattice_weights(solution: CellSolution | None, classes) -> np.ndarray:
    """Weight of each class (a space-group number) given an indexed cell: 1 for groups of the
    cell's Bravais lattice, :data:`RERANK_SAME_FAMILY` for other groups of its family,
    :data:`RERANK_OTHER` for the rest; all 1 without a cell of M20 >= :data:`RERANK_M20`."""
    from core.symmetry import bravais_lattice_of, crystal_system_of

    classes = [int(n) for n in classes]
    if solution is None or solution.m20 < RERANK_M20:
        return np.ones(len(classes))
    return np.array([1.0 if bravais_lattice_of(n) == solution.bravais_lattice else
                     RERANK_SAME_FAMILY if FAMILY_OF_SYSTEM[crystal_system_of(n)] == solution.system
                     else RERANK_OTHER for n in classes])

