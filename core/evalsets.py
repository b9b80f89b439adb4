"""Labelled evaluation sets and model evaluation on them.

Three kinds of set:

* a dataset's test split (simulated sticks, augmented with fixed seeds, or clean);
* a folder of measured patterns with labels: a ``labels.csv`` naming pattern files and
  space-group numbers (RRUFF-style, as in ``shared/data/rruff_dev``), or RRUFF XY + DIF pairs;
* a folder of CIFs with a ``labels.csv``: structures simulated with realistic perturbations.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.augmentation import NO_AUGMENTATION, Augmentation, StickBatch, augment_profiles
from core.classify import Classifier
from core.dataset import Dataset, split
from core.evaluation import Metrics, evaluate
from core.grid import CU_KA, TwoThetaGrid
from core.readers import MeasuredPattern, PatternReadError, read_dif, read_pattern
from core.registry import ModelMetadata

ProgressCallback = Callable[[int, int], None]

# Simulated patterns are indexed from profiles rendered finely, as a measured file would be
# (the model's input grid is too coarse to index from): a CIF folder's patterns are rendered
# on this grid, a test split's rows get a separate draw of their perturbations on it.
INDEXING_GRID = TwoThetaGrid(5.0, 90.0, 0.01)
INDEXING_SEED = 1000


@dataclass
class LabelledSet:
    """Patterns with known space groups.

    ``patterns`` are measured-like patterns; ``sticks`` (a dataset and row indices) are
    simulated peak lists rendered by each model in its own input representation, with the
    perturbations the model trained with, or as clean peaks of fixed width when ``clean``
    (how well a model learnt the task itself, apart from the measurement effects).
    ``draws`` > 1 renders each row under that many draws of the perturbations (one draw's
    luck moves top-1 by about half a point on a few thousand patterns); ``augmentation``
    replaces the model's own perturbations (to see what one effect costs, say).
    """

    name: str
    patterns: list[MeasuredPattern] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dataset: Dataset | None = None
    rows: np.ndarray | None = None
    clean: bool = False
    draws: int = 1
    augmentation: Augmentation | None = None

    def __len__(self) -> int:
        return len(self.labels)


def labelled_folder(folder: str | Path, name: str | None = None,
                    column: str | None = None) -> LabelledSet:
    """Measured patterns of a folder with their labels.

    Uses ``labels.csv`` (columns ``pattern_file`` or ``file``, and ``sg_number``) when present;
    otherwise pairs each pattern with a DIF of the same RRUFF id (``R050031.txt`` +
    ``R050031_CIF.txt`` / ``.dif``).

    Args:
        column: the ``labels.csv`` column naming the files to read instead; RRUFF's
            ``structure_file`` gives each mineral's DIF peak list, computed from its refined
            structure: the same crystals without the measurement.

    Raises:
        ValueError: ``column`` is given but ``labels.csv`` is missing or lacks it.
    """
    folder = Path(folder)
    result = LabelledSet(name=name or folder.name)
    pairs: list[tuple[Path, int]] = []
    labels_file = folder / "labels.csv"
    table = pd.read_csv(labels_file) if labels_file.exists() else None
    if column is not None and (table is None or column not in table):
        raise ValueError(f"{labels_file}: no column {column!r} naming the files to read")
    if table is not None:
        column = column or ("pattern_file" if "pattern_file" in table else "file")
        pairs = [(folder / str(f), int(n)) for f, n in zip(table[column], table["sg_number"])]
    else:
        for dif in sorted(list(folder.glob("*_CIF.txt")) + list(folder.glob("*.dif"))):
            stem = dif.name.split("_CIF")[0].removesuffix(".dif")
            partners = [p for p in folder.glob(f"{stem}*") if p != dif and p.suffix.lower()
                        in (".txt", ".xy", ".csv", ".dat", ".xye")]
            if not partners:
                continue
            try:
                pairs.append((partners[0], read_dif(dif).sg_number))
            except PatternReadError as exc:
                result.skipped.append((dif.name, str(exc)))
    labels = []
    for path, number in pairs:
        try:
            result.patterns.append(read_pattern(path))
            labels.append(number)
        except PatternReadError as exc:
            result.skipped.append((path.name, str(exc)))
    result.labels = np.asarray(labels, dtype=np.int64)
    return result


@dataclass
class SimulatedCifs:
    """The peak lists of a folder of labelled CIFs (:func:`simulate_cif_folder`), ready to be
    rendered under any perturbations (:func:`rendered_cif_set`)."""

    name: str
    sticks: StickBatch           # one row per simulated CIF
    ids: list[str]
    labels: np.ndarray
    skipped: list[tuple[str, str]]


def simulate_cif_folder(folder: str | Path, name: str | None = None,
                        progress: ProgressCallback | None = None) -> SimulatedCifs:
    """Simulate the CIFs listed in ``labels.csv`` (``file``, ``sg_number``); a CIF that cannot
    be read or simulated is skipped with its reason."""
    from core.simulation import simulate
    from core.structures import StructureReadError, read_cif
    from core.symmetry import CRYSTAL_SYSTEMS, by_number
    from core.training import stick_batch
    from core.dataset import rows_from_peaklists

    folder = Path(folder)
    table = pd.read_csv(folder / "labels.csv")
    peaks, ids, labels, skipped = [], [], [], []
    for index, (file, number) in enumerate(zip(table["file"], table["sg_number"])):
        try:
            peaks.append(simulate(read_cif(folder / file)))
            ids.append(str(file))
            labels.append(int(number))
        except (StructureReadError, Exception) as exc:  # noqa: BLE001 - one bad CIF is skipped
            skipped.append((str(file), str(exc)))
        if progress:
            progress(index + 1, len(table))
    name = name or folder.name
    rows = rows_from_peaklists(peaks, ids, "cif")
    # The label is the file's own, not spglib's re-detection.
    rows["sg_number"] = labels
    rows["crystal_system"] = [by_number(n).crystal_system for n in labels]
    sticks = stick_batch(Dataset(name=name, table=rows, meta={}), np.arange(len(rows)))
    # Lattice constraints follow the structure's own conventional cell (spglib's system).
    sticks.system = np.array([CRYSTAL_SYSTEMS.index(by_number(p.sg_number).crystal_system)
                              for p in peaks], dtype=np.int64)
    return SimulatedCifs(name, sticks, ids, np.asarray(labels, dtype=np.int64), skipped)


def rendered_cif_set(simulated: SimulatedCifs, name: str | None = None, seed: int = 0,
                     augmentation: Augmentation = Augmentation()) -> LabelledSet:
    """Simulated CIFs perturbed as measured patterns would be, with a fixed seed, and rendered
    on :data:`INDEXING_GRID` as a measured file would be (a model resamples them to its own
    grid, as it does an upload)."""
    profiles = augment_profiles(simulated.sticks, INDEXING_GRID, augmentation,
                                np.random.default_rng(seed))
    angles = INDEXING_GRID.angles.astype(np.float64)
    angles.flags.writeable = False  # one array, shared by every pattern
    patterns = [MeasuredPattern(name=pid, two_theta=angles,
                                intensity=profile.astype(np.float64) + 1e-6, wavelength=None,
                                sg_number=None, metadata={}, kind="simulated")
                for pid, profile in zip(simulated.ids, profiles)]
    return LabelledSet(name=name or simulated.name, patterns=patterns,
                       labels=simulated.labels.copy(), skipped=list(simulated.skipped))


def simulated_cif_folder(folder: str | Path, name: str | None = None, seed: int = 0,
                         augmentation: Augmentation = Augmentation(),
                         progress: ProgressCallback | None = None) -> LabelledSet:
    """CIFs listed in ``labels.csv`` (``file``, ``sg_number``), simulated, perturbed and
    rendered as :func:`rendered_cif_set` does."""
    return rendered_cif_set(simulate_cif_folder(folder, name, progress), name, seed,
                            augmentation)


def dataset_test_set(dataset: Dataset, validation: float = 0.1, test: float = 0.1,
                     seed: int = 0) -> LabelledSet:
    """The test split of a dataset (the same split training uses with these fractions)."""
    rows = split(dataset, validation, test, seed).test
    return LabelledSet(name=f"{dataset.name} test split", labels=dataset.labels[rows],
                       dataset=dataset, rows=rows)


def model_test_rows(dataset: Dataset, metadata: ModelMetadata) -> np.ndarray:
    """The rows of ``dataset`` that the model's training run held out for its final test
    (its own fractions, seed and grouping); the default 10 % split if it never trained on it."""
    if not metadata.trained_on(dataset.name):
        return split(dataset).test
    settings = metadata.hyperparameters or {}
    return split(dataset, settings.get("validation", 0.1), settings.get("test", 0.1),
                 settings.get("split_seed", 0), bool(settings.get("group_by_formula", False))).test


def held_out_test_set(dataset: Dataset, models: Sequence[ModelMetadata]) -> LabelledSet:
    """Test rows of ``dataset`` that none of ``models`` trained on, so that they can be
    compared fairly: the rows in the test split of every model that trained on the dataset
    (each drawn as its run drew it), or the default test split when none did.

    The result may be empty when the models trained on the dataset with different splits.
    """
    trained = [m for m in models if m.trained_on(dataset.name)]
    if not trained:
        return dataset_test_set(dataset)
    rows = functools.reduce(np.intersect1d, [model_test_rows(dataset, m) for m in trained])
    shared = "" if len(trained) < 2 else f", held out by all of {', '.join(m.name for m in trained)}"
    return LabelledSet(name=f"{dataset.name} test split{shared}", labels=dataset.labels[rows],
                       dataset=dataset, rows=rows)


@dataclass
class ModelEvaluation:
    """A model's predictions on a labelled set; with ``draws`` > 1, ``labels`` and
    ``probabilities`` hold every draw of the same patterns, stacked draw by draw (as
    :mod:`core.intervals` expects them)."""

    model: str
    set_name: str
    labels: np.ndarray
    probabilities: np.ndarray
    metrics: Metrics
    seconds: float
    draws: int = 1


def _reranked_by_cells(classifier: Classifier, labelled: LabelledSet, augmentation: Augmentation,
                       seed: int, probabilities: np.ndarray) -> np.ndarray:
    """Probabilities of a simulated set re-weighted as :meth:`Classifier.classify_patterns`
    does for a measured pattern, the cell found from a profile of each row at a 0.01° step."""
    from core.absences import best_cells, rerank
    from core.peaks import profile_peaks
    from core.training import stick_batch

    profiles = augment_profiles(stick_batch(labelled.dataset, labelled.rows), INDEXING_GRID,
                                augmentation, np.random.default_rng(seed)).astype(np.float64)
    angles = INDEXING_GRID.angles.astype(np.float64)
    peaks = [profile_peaks(angles, profile) for profile in profiles]
    cells = best_cells(peaks, [CU_KA] * len(peaks))
    return np.array([rerank(row, cell, evidence, classifier.metadata.classes)
                     for row, (cell, evidence) in zip(probabilities, cells)])


def evaluate_model(classifier: Classifier, labelled: LabelledSet) -> ModelEvaluation:
    """Predict every pattern of ``labelled`` and compute metrics with baselines (over all
    draws of a simulated set, seeds 2, 3, ...). A classifier that indexes (``index=True``)
    does so for measured patterns as for an upload, and for simulated ones from a separate
    draw of each row's profile at a 0.01° step (about a second a pattern, in worker processes)."""
    started = time.perf_counter()
    labels, draws = labelled.labels, 1
    if labelled.dataset is not None:
        from core.training import TrainingConfig, fixed_inputs

        meta = classifier.metadata
        config = TrainingConfig(name="evaluation", input_type=meta.input_type,
                                grid=meta.two_theta_grid, padded_length=meta.padded_length,
                                augmentation=NO_AUGMENTATION if labelled.clean else
                                labelled.augmentation or meta.training_augmentation)
        draws = 1 if labelled.clean else max(1, labelled.draws)
        rendered = [fixed_inputs(labelled.dataset, labelled.rows, config, seed=2 + draw)
                    for draw in range(draws)]
        labels = np.concatenate([labels for _, labels in rendered])
        probabilities = [classifier.predict_inputs(inputs) for inputs, _ in rendered]
        if classifier.index and not labelled.clean:
            probabilities = [_reranked_by_cells(classifier, labelled, config.augmentation,
                                                INDEXING_SEED + draw, draw_probabilities)
                             for draw, draw_probabilities in enumerate(probabilities)]
        probabilities = np.concatenate(probabilities)
    else:
        predictions = classifier.classify_patterns(labelled.patterns)
        keep = np.array([p.error is None for p in predictions], dtype=bool)
        labels = labels[keep]
        probabilities = np.array([p.probabilities for p in predictions if p.error is None])
    seconds = time.perf_counter() - started
    return ModelEvaluation(model=classifier.metadata.name, set_name=labelled.name,
                           labels=labels, probabilities=probabilities,
                           metrics=evaluate(labels, probabilities), seconds=seconds, draws=draws)
