"""Data behind the classify page (no Streamlit): uploads in, predictions with ground truth out.

Uploads are ``(name, bytes)`` pairs. Zip archives are read in memory: members are never
extracted, names with ``..`` or an absolute path are skipped, and the number of members and
their total size are capped. Every pattern is classified through
:meth:`core.classify.Classifier.classify_sources`, so the predictions equal the CLI's
(``python -m core classify --json``) for the same files.

Ground truth comes, in this order, from a ``labels.csv`` (columns ``file`` or
``pattern_file``, and ``sg_number``; inside a zip or uploaded beside the files), from a
RRUFF DIF uploaded with a profile of the same RRUFF id (``R\\d{6}`` in both names; the DIF
is then used as the label and not classified itself), or from the file itself (DIF, CIF).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from core.classify import Classifier, Prediction
from core.evaluation import Metrics, evaluate, system_confusion
from core.explain import PeakInfluence
from core.absences import GroupEvidence
from core.indexing import CONVINCING_M20, FAMILY_OF_SYSTEM, CellSolution
from core.preprocess import Preprocessing
from core.readers import DEFAULT_MAX_BYTES, PatternReadError, read_dif
from core.symmetry import CRYSTAL_SYSTEMS, by_number

MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL_BYTES = 200 * 2**20
LABELS_FILE = "labels.csv"
# Vendor formats no well-kept reader here handles: refused with a hint before reading.
UNSUPPORTED = {".raw": "Bruker RAW", ".brml": "Bruker BRML", ".rasx": "Rigaku RASX"}
RRUFF_ID = re.compile(r"R\d{6}")
# Confusion matrices are shown from this many labelled, classified files on.
CONFUSION_MIN_FILES = 5
FORMATS_TEXT = (
    "RRUFF XY (raw and processed) and DIF, two- or three-column `.xy` `.xye` `.txt` `.dat` "
    "`.csv`, PANalytical `.xrdml`, CIF (the structure is simulated at Cu Kα), or a `.zip` of "
    "these. Bruker `.brml`/`.raw` and Rigaku `.rasx` are not supported: export them as `.xy` "
    "or `.xrdml` first."
)


@dataclass
class UploadBatch:
    """Uploaded files sorted out before classification.

    Attributes:
        entries: (name, bytes or error message) in upload order; bytes are classified,
            messages are files refused before reading (bad zip, oversized member).
        labels: name -> true space group from ``labels.csv`` or a partner DIF.
        label_sources: name -> the file the label came from.
        label_files: DIF and ``labels.csv`` files used as labels only (not classified).
    """

    entries: list[tuple[str, bytes | str]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    label_sources: dict[str, str] = field(default_factory=dict)
    label_files: list[str] = field(default_factory=list)


@dataclass
class UploadResult:
    """Predictions for an upload, one per classified (or refused) file, in upload order.

    Attributes:
        predictions: as returned by ``classify_sources`` (plus refused files as errors).
        truths: true space group per prediction, or None.
        label_sources: name -> the file its label came from (``labels.csv``, a DIF, itself).
        label_files: DIF and ``labels.csv`` files used as labels only.
        classes: the model's output classes (space-group numbers).
    """

    predictions: list[Prediction]
    truths: list[int | None]
    label_sources: dict[str, str]
    label_files: list[str]
    classes: list[int]

    @property
    def errors(self) -> list[Prediction]:
        return [p for p in self.predictions if p.error]


# ----------------------------------------------------------------------------- uploads

def _ignored(name: str) -> bool:
    """Folders' metadata that archivers add (macOS resource forks, hidden files)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return "__MACOSX" in path.parts or path.name.startswith(".")


def _unsafe(name: str) -> bool:
    """Absolute paths, drive letters and '..' components."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or bool(re.match(r"^[A-Za-z]:", name))


def _zip_members(name: str, data: bytes) -> list[tuple[str, bytes | str]]:
    """Members of a zip as (zip/member, bytes or refusal message); never touches the disk."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [(name, f"{name}: not a readable zip archive ({exc})")]
    if len(infos) > MAX_ZIP_MEMBERS:
        return [(name, f"{name}: {len(infos)} files in the archive; at most {MAX_ZIP_MEMBERS}")]
    members: list[tuple[str, bytes | str]] = []
    total = 0
    for info in infos:
        label = f"{name}/{info.filename}"
        if _unsafe(info.filename):
            members.append((label, f"{label}: unsafe path in the archive; skipped"))
            continue
        if _ignored(info.filename):
            continue
        if info.file_size > DEFAULT_MAX_BYTES:
            members.append((label, f"{label}: {info.file_size / 2**20:.1f} MB unpacked; "
                                   f"at most {DEFAULT_MAX_BYTES // 2**20} MB per file"))
            continue
        try:
            with archive.open(info) as handle:  # the header's size may lie: read at most the cap
                content = handle.read(DEFAULT_MAX_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
            members.append((label, f"{label}: cannot be unpacked ({exc})"))
            continue
        if len(content) > DEFAULT_MAX_BYTES:
            members.append((label, f"{label}: larger than {DEFAULT_MAX_BYTES // 2**20} MB unpacked"))
            continue
        total += len(content)
        if total > MAX_ZIP_TOTAL_BYTES:
            members.append((name, f"{name}: more than {MAX_ZIP_TOTAL_BYTES // 2**20} MB unpacked; "
                                  "the remaining files were skipped"))
            break
        members.append((label, content))
    if not members:
        members.append((name, f"{name}: the archive holds no files"))
    return members


def _parse_labels(name: str, data: bytes) -> tuple[dict[str, int], str | None]:
    """``labels.csv`` -> {file: sg_number}, or an error message."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        return {}, f"{name}: unreadable labels file ({exc})"
    columns = set(rows[0]) if rows else set()
    column = "pattern_file" if "pattern_file" in columns else "file"
    if column not in columns or "sg_number" not in columns:
        return {}, f"{name}: needs columns 'file' (or 'pattern_file') and 'sg_number'"
    labels = {}
    for number, row in enumerate(rows, start=2):
        try:
            value = int(float(row["sg_number"]))
        except (TypeError, ValueError):
            return {}, f"{name}: line {number}: sg_number {row['sg_number']!r} is not a number"
        if not 1 <= value <= 230:
            return {}, f"{name}: line {number}: sg_number {value} is not in 1–230"
        labels[str(row[column]).strip().replace("\\", "/")] = value
    return labels, None


def _is_dif(name: str, data: bytes) -> bool:
    lower = name.lower()
    if lower.endswith((".dif", "_cif.txt")):
        return True
    return lower.endswith(".txt") and b"CELL PARAMETERS:" in data[:20000] and b"2-THETA" in data


def _rruff_id(name: str) -> str | None:
    match = RRUFF_ID.search(PurePosixPath(name).name)
    return match.group() if match else None


def expand_uploads(files: Sequence[tuple[str, bytes]]) -> UploadBatch:
    """Unpack zips, read ``labels.csv`` files and pair profiles with DIFs by RRUFF id."""
    batch = UploadBatch()
    flat: list[tuple[str, bytes | str]] = []
    label_tables: list[tuple[str, dict[str, int]]] = []
    for name, data in files:
        members = _zip_members(name, data) if name.lower().endswith(".zip") else [(name, data)]
        for member, content in members:
            if isinstance(content, bytes) and PurePosixPath(member).name.lower() == LABELS_FILE:
                table, problem = _parse_labels(member, content)
                if problem:
                    flat.append((member, problem))
                else:
                    label_tables.append((member, table))
                    batch.label_files.append(member)
                continue
            vendor = UNSUPPORTED.get(PurePosixPath(member).suffix.lower())
            if vendor and isinstance(content, bytes):
                content = (f"{member}: {vendor} files are not supported; export the scan as "
                           "`.xy` or `.xrdml` from the instrument software")
            flat.append((member, content))

    profiles: dict[str, list[str]] = {}
    for member, content in flat:
        rid = _rruff_id(member)
        if rid and isinstance(content, bytes) and not _is_dif(member, content) and \
                not member.lower().endswith(".cif"):
            profiles.setdefault(rid, []).append(member)
    for member, content in flat:
        rid = _rruff_id(member)
        if not (rid and rid in profiles and isinstance(content, bytes) and _is_dif(member, content)):
            batch.entries.append((member, content))
            continue
        try:
            number = read_dif(content, name=PurePosixPath(member).name).sg_number
        except PatternReadError as exc:
            batch.entries.append((member, f"{member}: cannot be used as ground truth: {exc}"))
            continue
        batch.label_files.append(member)
        for partner in profiles[rid]:
            batch.labels.setdefault(partner, number)
            batch.label_sources.setdefault(partner, PurePosixPath(member).name)

    for table_name, table in label_tables:
        folder = str(PurePosixPath(table_name).parent)
        for member, _ in batch.entries:
            relative = member[len(folder) + 1:] if member.startswith(folder + "/") else member
            for key in (relative, PurePosixPath(member).name):
                if key in table:
                    batch.labels[member] = table[key]
                    batch.label_sources[member] = PurePosixPath(table_name).name
                    break
    return batch


def classify_uploads(classifier: Classifier, files: Sequence[tuple[str, bytes]], top: int = 5,
                     wavelength: float | None = None,
                     preprocessing: Preprocessing | None = None,
                     index: bool | None = None) -> UploadResult:
    """Classify uploaded files (zips unpacked); each bad file gets its own error. ``index``
    (default: the classifier's setting, on unless turned off) re-ranks by each pattern's
    indexed cell, as ``classify`` does unless given ``--no-index``."""
    batch = expand_uploads(files)
    readable = [(name, content) for name, content in batch.entries if isinstance(content, bytes)]
    classified = iter(classifier.classify_sources(readable, top, wavelength, preprocessing, index))
    predictions = [next(classified) if isinstance(content, bytes)
                   else Prediction(file=name, error=content) for name, content in batch.entries]
    truths, sources = [], dict(batch.label_sources)
    for prediction in predictions:
        truth = batch.labels.get(prediction.file, prediction.true_sg)
        if prediction.file not in sources and prediction.true_sg is not None:
            sources[prediction.file] = "the file itself"
        truths.append(truth)
    return UploadResult(predictions, truths, sources, batch.label_files,
                        [int(c) for c in classifier.metadata.classes])


# ----------------------------------------------------------------------------- results

def full_probabilities(prediction: Prediction, classes: Sequence[int]) -> np.ndarray:
    """(230,) probabilities indexed by space-group number - 1."""
    full = np.zeros(230)
    if prediction.probabilities is not None:
        full[np.asarray(classes, dtype=np.int64) - 1] = prediction.probabilities
    return full


def truth_rank(prediction: Prediction, truth: int | None) -> int | None:
    """1-based rank of the true group among the listed predictions (None: not listed)."""
    numbers = [n for n, _, _ in prediction.space_groups]
    return numbers.index(truth) + 1 if truth in numbers else None


def top_table(prediction: Prediction) -> pd.DataFrame:
    """The ranked space groups: rank, number, symbol, crystal system, probability."""
    return pd.DataFrame({
        "rank": range(1, len(prediction.space_groups) + 1),
        "number": [n for n, _, _ in prediction.space_groups],
        "symbol": [s for _, s, _ in prediction.space_groups],
        "crystal system": [by_number(n).crystal_system for n, _, _ in prediction.space_groups],
        "probability": [round(p, 4) for _, _, p in prediction.space_groups],
    })


def influence_table(influences: Sequence[PeakInfluence], rows: int = 10) -> pd.DataFrame:
    """The peaks that move a group's probability most: position, d-spacing, height in the
    model input, the probability without the peak and the change, in percentage points."""
    shown = list(influences)[:rows]
    return pd.DataFrame({
        "2θ (°)": [round(i.two_theta, 2) for i in shown],
        "d (Å)": [round(i.d_spacing, 4) for i in shown],
        "height": [round(i.height, 3) for i in shown],
        "probability without it": [round(i.probability_without, 4) for i in shown],
        "support (points)": [round(100 * i.change, 2) for i in shown],
    })


def cells_table(solutions: Sequence[CellSolution]) -> pd.DataFrame:
    """Unit cells found by indexing, best first: family, lattice, parameters, volume, M20."""
    return pd.DataFrame({
        "crystal family": [s.system for s in solutions],
        "lattice": [f"{s.bravais_lattice} ({s.centring})" for s in solutions],
        **{name: [round(s.cell[i], 4 if i < 3 else 2) for s in solutions]
           for i, name in enumerate(("a (Å)", "b (Å)", "c (Å)", "α (°)", "β (°)", "γ (°)"))},
        "V (Å³)": [round(s.volume, 1) for s in solutions],
        "M20": [round(s.m20, 1) for s in solutions],
        "unindexed lines": [s.n_unindexed for s in solutions],
        "zero shift (°)": [round(s.zero_shift, 3) for s in solutions],
    })


def indexed_lines_table(solution: CellSolution) -> pd.DataFrame:
    """The lines one cell was fitted to: observed and calculated 2θ and their Miller indices
    (up to three reflections that fall within the tolerance; none for an unindexed line)."""
    return pd.DataFrame({
        "2θ observed (°)": [round(line.two_theta, 3) for line in solution.lines],
        "2θ calculated (°)": [None if line.two_theta_calc is None else round(line.two_theta_calc, 3)
                              for line in solution.lines],
        "hkl": ["; ".join(" ".join(map(str, hkl)) for hkl in line.hkl) or "not indexed"
                for line in solution.lines],
    })


def groups_of_lattice(prediction: Prediction, solution: CellSolution, rows: int = 5,
                      evidence: dict[int, GroupEvidence] | None = None) -> pd.DataFrame:
    """The network's most probable space groups among those of the cell's Bravais lattice,
    with their probability and their share of that lattice's total; with ``evidence``
    (:func:`core.absences.group_evidence`), also how many observed lines each group forbids
    and how many reflections it allows up to the last line."""
    from core.symmetry import bravais_lattice_of

    probabilities = np.asarray(prediction.probabilities, dtype=np.float64)
    numbers = [n for n in range(1, 231) if bravais_lattice_of(n) == solution.bravais_lattice]
    numbers.sort(key=lambda n: -probabilities[n - 1])
    total = probabilities[[n - 1 for n in numbers]].sum()
    shown = numbers[:rows]
    table = pd.DataFrame({
        "number": shown,
        "symbol": [by_number(n).symbol for n in shown],
        "probability": [round(float(probabilities[n - 1]), 4) for n in shown],
        "share of the lattice": [round(float(probabilities[n - 1] / total), 4) if total > 0 else 0.0
                                 for n in shown],
    })
    if evidence is not None:
        table["lines it forbids"] = [evidence[n].forbidden if n in evidence else None for n in shown]
        table["reflections allowed"] = [evidence[n].allowed if n in evidence else None for n in shown]
    return table


def absences_verdict(evidence: dict[int, GroupEvidence], solution: CellSolution) -> str:
    """One sentence on which groups of the cell's lattice the systematic absences favour."""
    from core.symmetry import bravais_lattice_of

    lattice = solution.bravais_lattice
    groups = [e for n, e in evidence.items() if bravais_lattice_of(n) == lattice]
    consistent = [e for e in groups if e.consistent]
    if not consistent:
        return (f"Every space group of lattice {lattice} forbids at least one indexed line: "
                "some lines may belong to another phase, or the cell may be wrong.")
    fewest = min(e.allowed for e in consistent)
    best = sorted(e.number for e in consistent if e.allowed == fewest)
    names = ", ".join(by_number(n).symbol for n in best)
    return (f"Systematic absences: {len(consistent)} of the {len(groups)} groups of lattice "
            f"{lattice} allow every indexed line; the most absences ({fewest} reflections "
            f"allowed up to the last line) belong to {names}.")


def indexing_verdict(solutions: Sequence[CellSolution], prediction: Prediction) -> str:
    """One sentence on the best cell and whether it agrees with the network."""
    if not solutions:
        return ("No cell, cubic to triclinic, indexes all but two of the first peaks: the "
                "sample may be a mixture, or its peaks too broad or too few to index.")
    best = solutions[0]
    strength = ("convincing" if best.m20 >= CONVINCING_M20 and best.n_unindexed == 0 else
                "plausible" if best.m20 >= 10 else "weak")
    family = {"hexagonal": "hexagonal or trigonal"}.get(best.system, best.system)
    network_system, probability = prediction.crystal_systems[0]
    agrees = FAMILY_OF_SYSTEM[network_system] == best.system
    return (f"Best cell: {family}, lattice {best.bravais_lattice}, M20 = {best.m20:.1f} with "
            f"{best.n_unindexed} of {len(best.lines)} lines unindexed ({strength}). The network's "
            f"most probable crystal system, {network_system} ({probability:.0%}), "
            f"{'agrees' if agrees else 'does not agree'}.")


def results_table(result: UploadResult) -> pd.DataFrame:
    """One row per file: top prediction, crystal system, truth and correctness, or the error."""
    rows = []
    for prediction, truth in zip(result.predictions, result.truths):
        row: dict = {"file": prediction.file}
        if prediction.error:
            row["error"] = prediction.error
        else:
            number, symbol, probability = prediction.space_groups[0]
            system, system_probability = prediction.crystal_systems[0]
            row.update({
                "space group": number, "symbol": symbol, "probability": round(probability, 4),
                "best crystal system": system,
                "system probability": round(system_probability, 4),
                "top 5": " ".join(str(n) for n, _, _ in prediction.space_groups),
                "low confidence": prediction.low_confidence,
            })
        row["true space group"] = truth
        if truth is not None and not prediction.error:
            row["correct"] = truth == prediction.space_groups[0][0]
            row["in top 5"] = truth_rank(prediction, truth) is not None
            row["system correct"] = by_number(truth).crystal_system == prediction.crystal_systems[0][0]
        rows.append(row)
    columns = ["file", "space group", "symbol", "probability", "best crystal system",
               "system probability", "top 5", "low confidence", "true space group", "correct",
               "in top 5", "system correct", "error"]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("space group", "true space group"):
        table[column] = table[column].astype("Int64")
    return table


def _status(file: str, error: object) -> str:
    """"ok", or "error: <message>" without the file name the message starts with."""
    if error is None or pd.isna(error) or not str(error):
        return "ok"
    message = str(error)
    if message.startswith(f"{file}: "):
        message = message[len(file) + 2:]
    return f"error: {message}"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as the page shows it: a short "status" column ("ok" or
    "error: <message>") right after the file name, in place of the last column "error", so a
    broken file's row says why without scrolling. Downloads keep :func:`results_table`."""
    view = table.drop(columns="error")
    view.insert(1, "status", [_status(f, e) for f, e in zip(table["file"], table["error"])])
    return view


def labelled(result: UploadResult) -> tuple[np.ndarray, np.ndarray]:
    """(true numbers, (n, 230) probabilities) of the classified files with ground truth."""
    pairs = [(t, full_probabilities(p, result.classes))
             for p, t in zip(result.predictions, result.truths) if t is not None and not p.error]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros((0, 230))
    return np.array([t for t, _ in pairs], np.int64), np.stack([q for _, q in pairs])


def summary(result: UploadResult) -> Metrics | None:
    """Top-1, top-5 and crystal-system accuracy over the labelled files (None: no labels)."""
    truths, probabilities = labelled(result)
    return evaluate(truths, probabilities) if len(truths) else None


def confusion(result: UploadResult) -> tuple[np.ndarray, list[str]] | None:
    """7x7 crystal-system confusion over the labelled files, when there are enough of them."""
    truths, probabilities = labelled(result)
    if len(truths) < CONFUSION_MIN_FILES:
        return None
    return system_confusion(truths, probabilities), list(CRYSTAL_SYSTEMS)


def space_group_confusion(result: UploadResult) -> tuple[np.ndarray, list[str]] | None:
    """Space-group confusion restricted to the groups that occur (true or predicted)."""
    truths, probabilities = labelled(result)
    if len(truths) < CONFUSION_MIN_FILES:
        return None
    predicted = probabilities.argmax(axis=1) + 1
    groups = np.union1d(truths, predicted)
    index = {int(g): i for i, g in enumerate(groups)}
    matrix = np.zeros((len(groups), len(groups)), np.int64)
    for t, p in zip(truths, predicted):
        matrix[index[int(t)], index[int(p)]] += 1
    return matrix, [f"{g} {by_number(int(g)).symbol}" for g in groups]


def json_lines(predictions: Sequence[Prediction]) -> str:
    """One JSON object per line, exactly as ``python -m core classify --json`` prints them."""
    return "".join(json.dumps(p.to_json()) + "\n" for p in predictions)


def json_list(predictions: Sequence[Prediction]) -> str:
    """The same objects as one JSON list."""
    return json.dumps([p.to_json() for p in predictions], indent=1)


def trust_note(confidence: dict[str, dict], low_confidence: bool) -> str | None:
    """How far to trust one prediction, from the model's record on a real evaluation set
    (``confidence``: set name -> ``benchmarks/accuracy.py`` confidence entry; RRUFF is
    preferred, as measured patterns like the user's). ``None`` without a usable record."""
    if not confidence:
        return None
    name = next((s for s in confidence if s.startswith("RRUFF")), next(iter(confidence)))
    entry = confidence[name]
    threshold, share = entry.get("threshold"), entry.get("share")
    right = entry.get("accuracy_below" if low_confidence else "accuracy_above")
    if threshold is None or share is None or right is None or right != right:
        return None
    side, kept = ("below", 1 - share) if low_confidence else ("at or above", share)
    return (f"How far to trust it: on {name}, this model's predictions with a top probability "
            f"{side} {threshold:.0%} ({kept:.0%} of the set) had the right space group first "
            f"{right:.0%} of the time.")
