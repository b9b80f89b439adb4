"""Systematic absences: which space groups allow the reflections an indexed pattern shows.

A glide plane, screw axis or centred lattice makes whole classes of reflections vanish whatever
the atoms are: reflection h is absent when some operation x -> R x + t of the group has
h R = h and h·t not an integer. Given a cell from :mod:`core.indexing`, every observed line is
matched to the reflections of that cell within the 2θ tolerance; a space group *forbids* a
line when every reflection it could be is absent in the group. Groups are tried in each of
their settings whose rotations keep the cell's metric (the orthorhombic axis permutations,
the monoclinic cell choices), so the answer does not depend on how the cell's axes are named.

Powder lines overlap and weak reflections go unseen, so this is evidence, not a verdict: a
group that forbids no observed line is *consistent*; among consistent groups, the one with
the fewest allowed reflections explains the pattern with the fewest coincidences (the
crystallographer's rule of choosing the extinction symbol with the most absences).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.grid import CU_KA
from core.indexing import (RERANK_M20, CellSolution, index_pattern, lattice_weights,
                           q_from_two_theta, q_tolerance)
from core.symmetry import Setting, settings

# Relative mismatch of R^T G R and G below which a setting's rotations keep the cell's metric.
METRIC_TOLERANCE = 1e-3

# Re-ranking weights, chosen on project data (held-out train_v12 crystals rendered as a
# well-crystallised lab sample; docs/model-history.md): a group keeps ABSENCE_FORBIDDEN_FACTOR
# of its probability per observed line it forbids, and (fewest allowed / its allowed) to the
# power ABSENCE_OCCAM_POWER, so that among consistent groups those with more absences win.
ABSENCE_FORBIDDEN_FACTOR = 0.01
ABSENCE_OCCAM_POWER = 10.0
# Fewer patterns than this are indexed in the calling process (a pool takes a second to start).
MIN_POOLED = 4


@dataclass(frozen=True)
class GroupEvidence:
    """What the observed lines say about one space group, in its best-fitting setting.

    Attributes:
        number: International Tables number.
        setting: Hermann-Mauguin symbol of the setting used (``P 1 21/n 1``).
        forbidden: observed, indexed lines whose every candidate reflection the group forbids.
        allowed: distinct 1/d² values of reflections the group allows up to the last line used.
    """

    number: int
    setting: str
    forbidden: int
    allowed: int

    @property
    def consistent(self) -> bool:
        return self.forbidden == 0


def metric_tensor(cell: tuple[float, float, float, float, float, float]) -> np.ndarray:
    """Direct-space metric G (Å²) of a, b, c (Å), α, β, γ (degrees)."""
    a, b, c = cell[:3]
    cos_alpha, cos_beta, cos_gamma = np.cos(np.radians(cell[3:]))
    return np.array([[a * a, a * b * cos_gamma, a * c * cos_beta],
                     [a * b * cos_gamma, b * b, b * c * cos_alpha],
                     [a * c * cos_beta, b * c * cos_alpha, c * c]])


def keeps_metric(setting: Setting, metric: np.ndarray) -> bool:
    """Whether every rotation of ``setting`` maps the cell onto itself."""
    rotated = np.einsum("nji,jk,nkl->nil", setting.rotations, metric, setting.rotations)
    return bool(np.all(np.abs(rotated - metric) <= METRIC_TOLERANCE * np.abs(metric).max()))


def absent(setting: Setting, hkl: np.ndarray) -> np.ndarray:
    """(m,) True where reflection ``hkl`` (m, 3) is systematically absent in ``setting``."""
    hkl = np.asarray(hkl, dtype=np.int64)
    fixed = np.all(np.einsum("mi,nij->mnj", hkl, setting.rotations) == hkl[:, None, :], axis=2)
    phase = hkl @ setting.translations.T
    shifted = np.abs(phase - np.round(phase)) > 1e-6
    return np.any(fixed & shifted, axis=1)


def _reflections(metric: np.ndarray, q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Reflections with 0 < 1/d² <= q_max, one of each Friedel pair, and their 1/d²."""
    reciprocal = np.linalg.inv(metric)
    limits = [int(np.floor(np.sqrt(q_max / reciprocal[i, i]))) + 1 for i in range(3)]
    axes = [np.arange(-n, n + 1) for n in limits]
    hkl = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    # Friedel mates are absent together (h·t and -h·t are integers together).
    h, k, l = hkl.T
    hkl = hkl[(h > 0) | ((h == 0) & ((k > 0) | ((k == 0) & (l > 0))))]
    q = np.einsum("mi,ij,mj->m", hkl, reciprocal, hkl)
    keep = q <= q_max
    return hkl[keep], q[keep]


def group_evidence(solution: CellSolution, wavelength: float = CU_KA,
                   tolerance: float = 0.03) -> dict[int, GroupEvidence]:
    """Evidence for every space group with a setting that keeps ``solution``'s metric.

    Args:
        solution: an indexed cell; its indexed lines (zero shift removed) are the observations.
        wavelength: Å, the one the pattern was indexed with.
        tolerance: 2θ window, degrees, within which a reflection can be an observed line.

    Returns:
        Space-group number -> evidence in that group's best setting (fewest forbidden lines,
        then fewest allowed reflections). Groups of higher symmetry than the cell's metric
        have no setting that fits and are left out.
    """
    metric = metric_tensor(solution.cell)
    observed = np.array([line.two_theta for line in solution.lines if line.hkl]) \
        - solution.zero_shift
    if len(observed) == 0:
        return {}
    q_observed = q_from_two_theta(observed, wavelength)
    window = q_tolerance(observed, wavelength, tolerance)
    q_max = q_observed.max() + window[np.argmax(q_observed)]
    hkl, q = _reflections(metric, q_max)
    candidates = np.abs(q[None, :] - q_observed[:, None]) < window[:, None]
    levels = np.round(q / q_max, 6)
    best: dict[int, GroupEvidence] = {}
    for setting in settings():
        if not keeps_metric(setting, metric):
            continue
        allowed = ~absent(setting, hkl)
        evidence = GroupEvidence(
            number=setting.number, setting=setting.symbol,
            forbidden=int((~(candidates & allowed).any(1)).sum()),
            allowed=len(np.unique(levels[allowed])))
        kept = best.get(setting.number)
        if kept is None or (evidence.forbidden, evidence.allowed) < (kept.forbidden, kept.allowed):
            best[setting.number] = evidence
    return best


def absence_weights(evidence: dict[int, GroupEvidence], classes) -> np.ndarray:
    """Weight of each class (a space-group number) from :func:`group_evidence`:
    :data:`ABSENCE_FORBIDDEN_FACTOR` per forbidden line times (fewest allowed reflections of
    a consistent group / the group's) ** :data:`ABSENCE_OCCAM_POWER`. Groups with no setting that fits
    the cell take the smallest weight of those with one; all 1 without evidence."""
    classes = [int(n) for n in classes]
    if not evidence:
        return np.ones(len(classes))
    # Relative to the consistent group with the most absences (any common factor cancels
    # when the probabilities are renormalised).
    consistent = [e for e in evidence.values() if e.consistent] or list(evidence.values())
    fewest = min(e.allowed for e in consistent)
    weight = {n: ABSENCE_FORBIDDEN_FACTOR ** e.forbidden
              * (fewest / max(e.allowed, 1)) ** ABSENCE_OCCAM_POWER for n, e in evidence.items()}
    floor = min(weight.values())
    return np.array([weight.get(n, floor) for n in classes])


def best_cell(peaks: np.ndarray, wavelength: float = CU_KA
              ) -> tuple[CellSolution | None, dict[int, GroupEvidence]]:
    """The best cell :func:`core.indexing.index_pattern` finds for peak positions ``peaks``
    (2θ, degrees) and the absence evidence of its lines; (None, {}) when no cell is found."""
    cells = index_pattern(peaks, wavelength)
    if not cells:
        return None, {}
    return cells[0], group_evidence(cells[0], wavelength)


def best_cells(peak_lists: Sequence[np.ndarray], wavelengths: Sequence[float],
               workers: int | None = None
               ) -> list[tuple[CellSolution | None, dict[int, GroupEvidence]]]:
    """:func:`best_cell` of each peak list, in a pool of ``workers`` processes (by default
    one per CPU) when there are several: indexing takes about a second a pattern."""
    jobs = list(zip(peak_lists, wavelengths))
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    # Forked workers only: a spawned one would re-run the parent's __main__, which under
    # Streamlit is the page script. The workers run numpy and spglib only, never TensorFlow.
    forkable = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or len(jobs) < MIN_POOLED or not forkable:
        return [best_cell(peaks, wavelength) for peaks, wavelength in jobs]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(best_cell, *zip(*jobs), chunksize=max(1, len(jobs) // (4 * workers))))


def rerank(probabilities: np.ndarray, solution: CellSolution | None,
           evidence: dict[int, GroupEvidence], classes) -> np.ndarray:
    """Class probabilities re-weighted by an indexed cell and renormalised: by its Bravais
    lattice (:func:`core.indexing.lattice_weights`) and by the systematic absences of its
    indexed lines (:func:`absence_weights` of ``evidence``), when its M20 >=
    :data:`core.indexing.RERANK_M20`; unchanged otherwise."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if solution is None or solution.m20 < RERANK_M20:
        return probabilities / probabilities.sum()
    weighted = probabilities * lattice_weights(solution, classes) \
        * absence_weights(evidence, classes)
    return weighted / weighted.sum()
