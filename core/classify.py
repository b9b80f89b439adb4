"""Measured patterns -> ranked space groups and crystal systems with a saved model.

The same code serves the CLI, the upload page and the comparison page, so their
predictions agree by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import registry
from core.evaluation import crystal_system_probabilities
from core.grid import CU_KA
from core.absences import GroupEvidence, best_cells, rerank
from core.indexing import RERANK_M20, CellSolution
from core.paths import BUNDLED_MODEL
from core.peaks import pattern_peaks
from core.prior import adjust_for_prior
from core.preprocess import Preprocessed, Preprocessing, to_grid
from core.readers import MeasuredPattern, PatternReadError, read_pattern
from core.rendering import padded_arrays
from core.symmetry import CRYSTAL_SYSTEMS, by_number

# Below this top-1 probability a prediction is flagged as low confidence in the UI.
LOW_CONFIDENCE = 0.25
# How reports name a model's network output without the prior re-weighting ("default (raw output)").
RAW_OUTPUT = " (raw output)"
# The network without indexing (how benchmarks file a model evaluated with ``index=False``).
NETWORK_ONLY = " (network only)"


@dataclass
class Prediction:
    """The ranked answer for one input file.

    Attributes:
        file: the file as given.
        space_groups: [(number, symbol, probability)], best first.
        crystal_systems: [(name, probability)] for all 7, best first.
        probabilities: (230,) space-group probabilities.
        error: why the file could not be classified (then the lists are empty).
        true_sg: ground truth when the input carries it.
        preprocessed: the model input and what was done to get it (for plotting).
        indexed: whether the pattern was indexed (and its ranking re-weighted by the cell when
            the cell is convincing).
        cell: the best indexed cell (None if none was found or indexing was not asked for).
        absences: what the cell's indexed lines say about each space group
            (:func:`core.absences.group_evidence`; empty without a cell).
    """

    file: str
    space_groups: list[tuple[int, str, float]] = field(default_factory=list)
    crystal_systems: list[tuple[str, float]] = field(default_factory=list)
    probabilities: np.ndarray | None = None
    error: str | None = None
    true_sg: int | None = None
    pattern: MeasuredPattern | None = None
    preprocessed: Preprocessed | None = None
    indexed: bool = False
    cell: CellSolution | None = None
    absences: dict[int, GroupEvidence] = field(default_factory=dict)

    @property
    def low_confidence(self) -> bool:
        return bool(self.space_groups) and self.space_groups[0][2] < LOW_CONFIDENCE

    def to_json(self) -> dict:
        """The CLI's JSON schema (one object per file; ``cell`` only when indexed)."""
        result = {
            "file": self.file,
            "space_group": [{"number": n, "symbol": s, "probability": round(p, 6)}
                            for n, s, p in self.space_groups],
            "crystal_system": [{"name": name, "probability": round(p, 6)}
                               for name, p in self.crystal_systems],
            "error": self.error,
        }
        if self.indexed:
            cell = self.cell
            result["cell"] = None if cell is None else {
                "bravais_lattice": cell.bravais_lattice, "cell": [round(v, 5) for v in cell.cell],
                "m20": round(cell.m20, 2), "unindexed": cell.n_unindexed,
                "used": cell.m20 >= RERANK_M20}
        return result


class Classifier:
    """A loaded model plus what it needs to turn measured patterns into its inputs.

    When the model's metadata records its training prior, probabilities are re-weighted to
    the space-group frequencies of real crystals (:mod:`core.prior`); ``adjust_prior=False``
    gives the raw network output. With ``index`` (the default), each measured pattern is also
    indexed and, when its cell is convincing, the ranking is re-weighted by the cell's lattice
    and systematic absences (:func:`core.absences.rerank`); ``index=False`` gives the
    network alone, about a hundred times faster.
    """

    def __init__(self, model, metadata: registry.ModelMetadata, adjust_prior: bool = True,
                 index: bool = True):
        self.model = model
        self.metadata = metadata
        self.adjust_prior = adjust_prior and len(metadata.training_prior) == 230
        self.index = index
        self.grid = metadata.two_theta_grid
        self.default_preprocessing = Preprocessing.from_dict(metadata.preprocessing or {})

    @classmethod
    def load(cls, name: str | Path = BUNDLED_MODEL, adjust_prior: bool = True,
             index: bool = True) -> "Classifier":
        """Load a saved model by name or folder (Keras safe mode)."""
        model, metadata = registry.load_model(name)
        return cls(model, metadata, adjust_prior, index)

    def inputs(self, patterns: Sequence[MeasuredPattern], wavelength: float | None = None,
               preprocessing: Preprocessing | None = None) -> tuple[np.ndarray, list]:
        """Model inputs for measured patterns; errors are returned per pattern, not raised."""
        preprocessing = preprocessing or self.default_preprocessing
        rows, details = [], []
        for pattern in patterns:
            try:
                prepared = to_grid(pattern, self.grid, self.metadata.wavelength, wavelength,
                                   preprocessing)
            except PatternReadError as exc:
                details.append(exc)
                continue
            if self.metadata.input_type == "padded":
                rows.append(self._padded(pattern, prepared))
            else:
                rows.append(prepared.profile)
            details.append(prepared)
        width = self.metadata.input_length
        return (np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)), details

    def _padded(self, pattern: MeasuredPattern, prepared: Preprocessed) -> np.ndarray:
        from core.preprocess import find_peaks

        if pattern.kind in ("dif", "cif"):
            positions, heights = pattern.two_theta, pattern.intensity
        else:
            positions = find_peaks(prepared.profile, self.grid)
            heights = np.interp(positions, self.grid.angles, prepared.profile)
        length = self.metadata.padded_length
        if len(positions) > length:
            keep = np.sort(np.argsort(heights)[-length:])
            positions, heights = positions[keep], heights[keep]
        if len(positions) == 0:
            return np.zeros(2 * length, np.float32)
        return padded_arrays([positions], [heights], length)[0][0]

    def predict_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """(n, 230) space-group probabilities for ready model inputs."""
        if len(inputs) == 0:
            return np.zeros((0, 230), np.float32)
        probabilities = self.model.predict_on_batch(inputs) if len(inputs) <= 256 else \
            self.model.predict(inputs, batch_size=256, verbose=0)
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self.adjust_prior:
            probabilities = adjust_for_prior(probabilities, np.asarray(self.metadata.training_prior))
        return probabilities

    def classify_patterns(self, patterns: Sequence[MeasuredPattern], names: Sequence[str] | None = None,
                          top: int = 5, wavelength: float | None = None,
                          preprocessing: Preprocessing | None = None,
                          index: bool | None = None) -> list[Prediction]:
        """Rank space groups for already-read patterns.

        ``index`` (default: the classifier's own setting) also indexes each pattern
        (:mod:`core.indexing`, about a second each, several at once in worker processes) and,
        when its best cell is convincing (M20 >= ``RERANK_M20``), re-weights the ranking by the
        cell's lattice and systematic absences (:func:`core.absences.rerank`).
        """
        index = self.index if index is None else index
        names = list(names) if names is not None else [p.name for p in patterns]
        inputs, details = self.inputs(patterns, wavelength, preprocessing)
        probabilities = self.predict_inputs(inputs)
        good = [(name, pattern, detail) for name, pattern, detail in zip(names, patterns, details)
                if not isinstance(detail, Exception)]
        cells = iter(best_cells(
            [pattern_peaks(pattern) for _, pattern, _ in good],
            [wavelength or pattern.wavelength or CU_KA for _, pattern, _ in good])) \
            if index else iter([(None, {}) for _ in good])
        predictions, row = [], 0
        for name, pattern, detail in zip(names, patterns, details):
            if isinstance(detail, Exception):
                predictions.append(Prediction(file=name, error=str(detail), pattern=pattern))
                continue
            cell, evidence = next(cells)
            if index:
                probabilities[row] = rerank(probabilities[row], cell, evidence,
                                            self.metadata.classes)
            prediction = self._prediction(name, probabilities[row], top, pattern, detail)
            prediction.indexed, prediction.cell, prediction.absences = index, cell, evidence
            predictions.append(prediction)
            row += 1
        return predictions

    def classify_files(self, files: Sequence[str | Path], top: int = 5,
                       wavelength: float | None = None,
                       preprocessing: Preprocessing | None = None,
                       index: bool | None = None) -> list[Prediction]:
        """Read and classify files; unreadable ones get a :class:`Prediction` with an error."""
        return self.classify_sources([(str(f), f) for f in files], top, wavelength, preprocessing,
                                     index)

    def classify_sources(self, sources: Sequence[tuple[str, str | Path | bytes]], top: int = 5,
                         wavelength: float | None = None,
                         preprocessing: Preprocessing | None = None,
                         index: bool | None = None) -> list[Prediction]:
        """Classify (name, path-or-bytes) pairs, in order; each failure is reported on its own."""
        readable, results = [], {}
        for position, (name, source) in enumerate(sources):
            try:
                pattern = read_pattern(source, name=Path(name).name if isinstance(source, bytes) else None)
                readable.append((position, name, pattern))
            except PatternReadError as exc:
                results[position] = Prediction(file=name, error=_with_name(str(exc), name))
        predictions = self.classify_patterns([p for _, _, p in readable],
                                             [n for _, n, _ in readable], top, wavelength,
                                             preprocessing, index)
        for (position, _, _), prediction in zip(readable, predictions):
            results[position] = prediction
        return [results[i] for i in range(len(sources))]

    def _prediction(self, name: str, probabilities: np.ndarray, top: int,
                    pattern: MeasuredPattern, prepared: Preprocessed) -> Prediction:
        classes = np.asarray(self.metadata.classes)
        order = np.argsort(-probabilities, kind="stable")[:top]
        systems = crystal_system_probabilities(probabilities[None, :])[0]
        system_order = np.argsort(-systems, kind="stable")
        return Prediction(
            file=name,
            space_groups=[(int(classes[i]), by_number(int(classes[i])).symbol,
                           float(probabilities[i])) for i in order],
            crystal_systems=[(CRYSTAL_SYSTEMS[i], float(systems[i])) for i in system_order],
            probabilities=probabilities, true_sg=pattern.sg_number, pattern=pattern,
            preprocessed=prepared,
        )


def _with_name(message: str, name: str) -> str:
    return message if message.startswith(Path(name).name) or message.startswith(name) else f"{name}: {message}"
