"""Measured powder patterns in: column text files, RRUFF files, XRDML scans, DIF and CIF.

Every reader takes a path or the file's bytes plus the name to report, and either returns a
:class:`MeasuredPattern` or raises :class:`PatternReadError`, whose message starts with that
name. Uploaded files are untrusted: sizes are capped, binary data is refused before parsing,
XML with a DTD is refused, and nothing is ever unpickled or evaluated.

Formats (dispatched on the extension, then sniffed by content where extensions are shared):

* ``.xy .xye .txt .dat .csv``: two or three numeric columns separated by whitespace,
  commas, semicolons or tabs; comment (``#``, ``!``, ``;``) and header lines are skipped, and
  a header naming the angle and intensity columns is followed.
* RRUFF XY (any of those extensions): ``##KEY=value`` headers, comma-separated data up to
  ``##END=``.
* RRUFF DIF (``.dif``, or ``.txt`` holding ``CELL PARAMETERS:``, such as RRUFF's
  ``*_CIF.txt``): calculated peak list plus space group; read as sticks.
* ``.cif``: a structure, simulated at Cu Kα and read as sticks.
* ``.xrdml``: PANalytical XML scans (see :mod:`core.xrdml`).
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.grid import CU_KA

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".xy", ".xye", ".txt", ".dat", ".csv", ".dif", ".cif",
                                         ".xrdml")
COLUMN_EXTENSIONS = (".xy", ".xye", ".txt", ".dat", ".csv")
STICK_KINDS = ("dif", "cif")
DEFAULT_MAX_BYTES = 50 * 2**20
MIN_POINTS = 10

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_SPLIT = re.compile(r"\s*[,;\t]\s*|\s+")
_WAVELENGTH = re.compile(r"(?:wave\s*length|lambda)[^0-9\n]{0,20}(\d+\.\d+)", re.IGNORECASE)
_ANGLE_NAMES = {"2theta", "twotheta", "2θ", "angle", "tth", "2th", "theta2", "pos", "position", "x"}
_INTENSITY_NAMES = {"intensity", "intensities", "counts", "count", "cps", "i", "int", "y", "obs", "yobs"}


class PatternReadError(ValueError):
    """A pattern file that cannot be read; the message starts with the file's name."""


@dataclass
class MeasuredPattern:
    """A powder pattern as read from a file.

    Attributes:
        name: file name, as given to the reader.
        two_theta: angles in degrees, float64, ascending, finite.
        intensity: intensities (file units; sticks for ``dif``/``cif``), same length, finite.
        wavelength: X-ray wavelength in Å, or None when the file does not say.
        sg_number: space-group number (1-230) when the file carries it (DIF, CIF), else None.
        metadata: anything else parsed (mineral, RRUFF id, cell, header fields).
        kind: format id: ``xy``, ``xye``, ``txt``, ``dat``, ``csv``, ``rruff_xy``, ``dif``,
            ``cif`` or ``xrdml``.
    """

    name: str
    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: float | None = None
    sg_number: int | None = None
    metadata: dict = field(default_factory=dict)
    kind: str = "xy"

    def __post_init__(self) -> None:
        self.two_theta = np.asarray(self.two_theta, dtype=np.float64)
        self.intensity = np.asarray(self.intensity, dtype=np.float64)
        if self.two_theta.shape != self.intensity.shape or self.two_theta.ndim != 1:
            raise ValueError(f"{self.name}: 2θ and intensity arrays differ in shape")

    @property
    def is_sticks(self) -> bool:
        """True for peak lists (DIF, CIF) rather than measured profiles."""
        return self.kind in STICK_KINDS


@dataclass
class DifFile:
    """A RRUFF DIF file: calculated peak list of a mineral with its space group.

    Attributes:
        name: file name.
        mineral: mineral name (first line of the file).
        sg_symbol: space-group symbol as written in the file (``P2_1/c``, ``Pbnm``).
        sg_number: standard space-group number of that symbol.
        cell: (a, b, c, alpha, beta, gamma) in Å and degrees; empty when absent.
        wavelength: Å, or None when the file does not say (RRUFF then uses Cu Kα).
        two_theta: peak positions, degrees (Kα1 column for two-wavelength tables).
        intensity: peak intensities, strongest 100.
        d_spacing: interplanar spacings, Å.
        hkl: (n, 3) Miller indices.
        metadata: other details (alternate setting, both wavelengths).
    """

    name: str
    mineral: str
    sg_symbol: str
    sg_number: int
    cell: tuple[float, ...]
    wavelength: float | None
    two_theta: np.ndarray
    intensity: np.ndarray
    d_spacing: np.ndarray
    hkl: np.ndarray
    metadata: dict = field(default_factory=dict)

    @property
    def n_peaks(self) -> int:
        return int(self.two_theta.size)

    def to_pattern(self) -> MeasuredPattern:
        """The peak list as a stick pattern (``kind="dif"``) with ``sg_number`` set."""
        order = np.argsort(self.two_theta, kind="stable")
        metadata = {"mineral": self.mineral, "sg_symbol": self.sg_symbol, "cell": self.cell,
                    "d_spacing": self.d_spacing[order], "hkl": self.hkl[order], **self.metadata}
        return MeasuredPattern(self.name, self.two_theta[order], self.intensity[order],
                               self.wavelength, self.sg_number, metadata, "dif")


# ----------------------------------------------------------------------------- input bytes

def _label(source: str | Path | bytes, name: str | None) -> str:
    if name:
        return str(name)
    return "<upload>" if isinstance(source, (bytes, bytearray)) else Path(source).name


def _human(n_bytes: float) -> str:
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:.1f} MB"
    return f"{n_bytes / 1024:.1f} kB" if n_bytes >= 1024 else f"{int(n_bytes)} bytes"


def _load(source: str | Path | bytes, label: str, max_bytes: int) -> bytes:
    """The file's bytes, refusing missing, empty and oversized input."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            if not path.is_file():
                raise PatternReadError(f"{label}: no such file")
            size = path.stat().st_size
            if size > max_bytes:
                raise PatternReadError(
                    f"{label}: too large ({_human(size)}, limit {_human(max_bytes)})")
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise PatternReadError(f"{label}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise PatternReadError(f"{label}: too large ({_human(len(data))}, limit {_human(max_bytes)})")
    if not data.strip():
        raise PatternReadError(f"{label}: file is empty")
    return data


def _decode(data: bytes, label: str) -> str:
    """Text of the file; binary data (NULs, many control characters) is refused."""
    binary = PatternReadError(f"{label}: binary file, not a text pattern")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            text = data.decode("utf-16")
        except UnicodeError:
            raise binary from None
    else:
        if b"\x00" in data:
            raise binary
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    head = text[:65536]
    if len(_CONTROL.findall(head)) > max(2, 0.01 * len(head)):
        raise binary
    if len(text) > len(head) and len(text) - len(_CONTROL.sub("", text)) > 0.01 * len(text):
        raise binary
    return text


def _extension(label: str) -> str:
    lower = label.lower()
    return ".dif" if lower.endswith("_cif.txt") else Path(lower).suffix


# ----------------------------------------------------------------------------- cleaning

def _clean(label: str, two_theta: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite rows, 2θ ascending, duplicates averaged; refuses short, flat or odd data."""
    tt = np.asarray(two_theta, dtype=np.float64)
    ii = np.asarray(intensity, dtype=np.float64)
    keep = np.isfinite(tt) & np.isfinite(ii)
    if not keep.any():
        raise PatternReadError(f"{label}: no finite data rows")
    tt, ii = tt[keep], ii[keep]
    if tt.min() < 0 or tt.max() > 180:
        raise PatternReadError(f"{label}: 2θ values outside 0–180° "
                               f"({tt.min():g}–{tt.max():g}); is the first column the angle?")
    unique, inverse, counts = np.unique(tt, return_inverse=True, return_counts=True)
    if unique.size < tt.size:
        # Divide before summing: a sum of values near the float limit would overflow to inf.
        ii = np.bincount(inverse, weights=ii / counts[inverse])
    else:
        ii = ii[np.argsort(tt, kind="stable")]
    if unique.size < MIN_POINTS:
        raise PatternReadError(f"{label}: only {unique.size} data points; need at least {MIN_POINTS}")
    if np.ptp(ii) == 0:
        raise PatternReadError(f"{label}: flat pattern (all intensities are {ii[0]:g})")
    return unique, ii


def _sticks(label: str, two_theta: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tt = np.asarray(two_theta, dtype=np.float64)
    ii = np.asarray(intensity, dtype=np.float64)
    keep = np.isfinite(tt) & np.isfinite(ii) & (ii > 0) & (tt > 0) & (tt < 180)
    if not keep.any():
        raise PatternReadError(f"{label}: no peaks")
    order = np.argsort(tt[keep], kind="stable")
    return tt[keep][order], ii[keep][order]


# ----------------------------------------------------------------------------- column text

def _tokens(line: str) -> list[str]:
    if ";" in line and "." not in line and "," in line:  # 1,5;200 — decimal commas
        line = line.replace(",", ".")
    return _SPLIT.split(line.strip())


def _column_key(name: str) -> str:
    name = re.sub(r"[\(\[].*?[\)\]]", "", name.lower())
    return re.sub(r"[^a-z0-9θ]", "", name)


def _header_columns(header: list[str] | None) -> tuple[int, int] | None:
    """(angle, intensity) column indices named by a header line, if it names both."""
    if not header:
        return None
    keys = [_column_key(h) for h in header]
    angle = next((i for i, k in enumerate(keys)
                  if k in _ANGLE_NAMES or k.startswith(("2theta", "twotheta", "angle"))), None)
    intensity = next((i for i, k in enumerate(keys) if i != angle and (
        k in _INTENSITY_NAMES or k.startswith(("intens", "count")))), None)
    return None if angle is None or intensity is None else (angle, intensity)


def _parse_columns(lines: Iterable[str], label: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Numeric rows of a column file -> (2θ, intensity, metadata) before cleaning.

    The header, if any, is the last non-numeric line before the first numeric row; the
    columns it names (or the first two) are kept, as float arrays rather than row lists.
    """
    lines = lines if isinstance(lines, list) else list(lines)
    fast = _parse_uniform_block(lines)
    if fast is not None:
        return fast
    tt, ii = array("d"), array("d")
    widths: Counter[int] = Counter()
    header: list[str] | None = None
    columns: tuple[int, int] | None = None
    notes: list[str] = []
    skipped = 0
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[0] in "#!;" or stripped.startswith("//"):
            if len(notes) < 200:
                notes.append(stripped)
            continue
        tokens = _tokens(stripped)
        try:
            row = [float(t) if t else np.nan for t in tokens]
        except ValueError:
            skipped += 1
            if len(notes) < 200:
                notes.append(stripped)
            if columns is None:
                header = tokens
            continue
        if columns is None:
            columns = _header_columns(header) or (0, 1)
        widths[len(row)] += 1
        if len(row) > max(columns):
            tt.append(row[columns[0]])
            ii.append(row[columns[1]])
    if not widths:
        raise PatternReadError(f"{label}: no numeric data rows")
    if max(widths) < 2:
        raise PatternReadError(f"{label}: only one column; need 2θ and intensity")
    metadata: dict = {"columns": columns, "n_columns": widths.most_common(1)[0][0]}
    if header:
        metadata["header"] = header
    if skipped:
        metadata["skipped_lines"] = skipped
    match = next((m for m in map(_WAVELENGTH.search, notes) if m), None)
    if match and 0.1 < float(match.group(1)) < 5.0:
        metadata["wavelength"] = float(match.group(1))
    return np.frombuffer(tt, dtype=np.float64), np.frombuffer(ii, dtype=np.float64), metadata


def _parse_uniform_block(lines: list[str]) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Fast path for the common case: header and comment lines, then one block of numeric
    rows with one delimiter, parsed by numpy's C reader. ``None`` hands the file to the
    line-by-line parser, which copes with anything else."""
    notes: list[str] = []
    header: list[str] | None = None
    for start, line in enumerate(lines[:500]):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[0] in "#!;" or stripped.startswith("//"):
            notes.append(stripped)
            continue
        tokens = _tokens(stripped)
        try:
            [float(t) for t in tokens]
        except ValueError:
            header = tokens
            notes.append(stripped)
            continue
        break
    else:
        return None
    first = lines[start]
    if ";" in first or ("," in first and "\t" in first):
        return None  # decimal commas or mixed delimiters: the careful parser decides
    delimiter = "," if "," in first else None
    try:
        data = np.loadtxt(lines[start:], delimiter=delimiter, comments="#",
                          ndmin=2, dtype=np.float64)
    except ValueError:
        return None
    columns = _header_columns(header) or (0, 1)
    if data.shape[1] < 2 or data.shape[1] <= max(columns) or len(data) == 0:
        return None
    metadata: dict = {"columns": columns, "n_columns": int(data.shape[1])}
    if header:
        metadata["header"] = header
    match = next((m for m in map(_WAVELENGTH.search, notes) if m), None)
    if match and 0.1 < float(match.group(1)) < 5.0:
        metadata["wavelength"] = float(match.group(1))
    return np.ascontiguousarray(data[:, columns[0]]), np.ascontiguousarray(data[:, columns[1]]), metadata


def _read_columns(text: str, label: str, kind: str) -> MeasuredPattern:
    tt, ii, metadata = _parse_columns(text.splitlines(), label)
    tt, ii = _clean(label, tt, ii)
    return MeasuredPattern(label, tt, ii, metadata.pop("wavelength", None), None, metadata, kind)


def _is_rruff_xy(text: str) -> bool:
    head = [line.strip() for line in text[:20000].splitlines() if line.strip()][:60]
    return sum(line.startswith("##") and "=" in line for line in head) >= 1 and \
        head[0].startswith("##")


def _read_rruff_xy(text: str, label: str) -> MeasuredPattern:
    metadata: dict = {}
    data: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("##"):
            key, _, value = stripped[2:].partition("=")
            key = re.sub(r"\W+", "_", key.strip().lower()).strip("_")
            if key == "end":
                break
            if key:
                metadata[key] = value.strip()
        else:
            data.append(stripped)
    tt, ii, columns = _parse_columns(data, label)
    tt, ii = _clean(label, tt, ii)
    if "names" in metadata:
        metadata["mineral"] = metadata["names"].split(",")[0].strip()
    if "rruffid" in metadata:
        metadata["rruff_id"] = metadata["rruffid"]
    cell = dict(re.findall(r"\b(a|b|c|alpha|beta|gamma)\s*[:=]\s*([-+]?\d+(?:\.\d+)?)",
                           metadata.get("cell_parameters", "")))
    if len(cell) == 6:
        metadata["cell"] = tuple(float(cell[k]) for k in ("a", "b", "c", "alpha", "beta", "gamma"))
    wavelength = None
    for key, value in metadata.items():
        number = re.search(r"\d+\.\d+", value) if "wavelength" in key else None
        if number and 0.1 < float(number.group()) < 5.0:
            wavelength = float(number.group())
            break
    metadata["columns"] = columns["columns"]
    return MeasuredPattern(label, tt, ii, wavelength, None, metadata, "rruff_xy")


# ----------------------------------------------------------------------------- DIF

_NUM = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_DIF_ROW = re.compile(
    rf"^\s*(?P<tt>{_NUM})(?:\s*/\s*(?P<tt2>{_NUM}))?\s+(?P<i>{_NUM})(?:\s*/\s*(?P<i2>{_NUM}))?"
    rf"\s+(?P<d>{_NUM})\s+(?P<h>-?\d+)\s+(?P<k>-?\d+)(?:\s+-?\d+)?\s+(?P<l>-?\d+)\s*$")
_DIF_SG = re.compile(r"^\s*(ALTERNATE SETTING FOR )?SPACE GROUP:[ \t]*(.*?)\s*$", re.M | re.I)


def _looks_like_dif(text: str) -> bool:
    return bool(re.search(r"^\s*CELL PARAMETERS:", text, re.M)) and "2-THETA" in text


def _floats(text: str) -> list[float]:
    return [float(v) for v in re.findall(_NUM, text)]


def _parse_dif(text: str, label: str) -> DifFile:
    from core.symmetry import UnknownSpaceGroupError, by_symbol

    lines = text.splitlines()
    mineral = next((line.strip() for line in lines if line.strip()), "")
    sg_match = _DIF_SG.search(text)
    if not sg_match or not sg_match.group(2):
        raise PatternReadError(f"{label}: no SPACE GROUP line; not a RRUFF DIF file")
    symbol = sg_match.group(2).strip()
    try:
        sg_number = by_symbol(symbol).number
    except UnknownSpaceGroupError as exc:
        raise PatternReadError(f"{label}: unknown space group {symbol!r}") from exc
    cell_match = re.search(r"CELL PARAMETERS:(.*)$", text, re.M)
    cell = tuple(_floats(cell_match.group(1))[:6]) if cell_match else ()
    wl_match = re.search(r"X-RAY WAVELENGTHS?:(.*)$", text, re.M)
    wavelengths = _floats(wl_match.group(1)) if wl_match else []
    start = next((i for i, line in enumerate(lines)
                  if "2-THETA" in line and "INTENSITY" in line), None)
    rows = []
    for line in lines[start + 1:] if start is not None else []:
        match = _DIF_ROW.match(line)
        if match:
            rows.append(match.groupdict())
        elif line.strip() or rows:
            break
    if not rows:
        raise PatternReadError(f"{label}: no peaks in the DIF table")
    metadata: dict = {"alternate_setting": bool(sg_match.group(1))}
    if wavelengths:
        metadata["wavelengths"] = tuple(wavelengths)
    rruff = re.search(r"R\d{6}", label)
    if rruff:
        metadata["rruff_id"] = rruff.group()
    return DifFile(
        name=label, mineral=mineral, sg_symbol=symbol, sg_number=sg_number, cell=cell,
        wavelength=wavelengths[0] if wavelengths and 0.1 < wavelengths[0] < 5.0 else None,
        two_theta=np.array([float(r["tt"]) for r in rows]),
        intensity=np.array([float(r["i"]) for r in rows]),
        d_spacing=np.array([float(r["d"]) for r in rows]),
        hkl=np.array([[int(r["h"]), int(r["k"]), int(r["l"])] for r in rows]).reshape(-1, 3),
        metadata=metadata)


def read_dif(source: str | Path | bytes, name: str | None = None) -> DifFile:
    """Read a RRUFF DIF file (also RRUFF's ``*_CIF.txt``, which hold the same layout).

    Args:
        source: a path, or the file's bytes.
        name: the name to report (defaults to the path's file name).

    Raises:
        PatternReadError: unreadable file, no recognisable space group, or no peak table.
    """
    label = _label(source, name)
    try:
        text = _decode(_load(source, label, DEFAULT_MAX_BYTES), label)
        return _parse_dif(text, label)
    except PatternReadError:
        raise
    except Exception as exc:  # a malformed file must not leak a traceback
        raise PatternReadError(f"{label}: unreadable DIF file ({exc.__class__.__name__}: {exc})") from exc


def _dif_pattern(text: str, label: str) -> MeasuredPattern:
    pattern = _parse_dif(text, label).to_pattern()
    pattern.two_theta, pattern.intensity = _sticks(label, pattern.two_theta, pattern.intensity)
    return pattern


# ----------------------------------------------------------------------------- CIF, XRDML

def _read_cif(data: bytes, label: str) -> MeasuredPattern:
    from core.simulation import simulate
    from core.structures import StructureReadError, read_cif

    try:
        structure = read_cif(data, name=label)
    except StructureReadError as exc:
        raise PatternReadError(str(exc)) from exc
    try:
        peaks = simulate(structure, CU_KA)
    except Exception as exc:  # spglib/pymatgen fail in assorted ways on odd structures
        raise PatternReadError(f"{label}: cannot simulate a pattern ({exc})") from exc
    tt, ii = _sticks(label, peaks.two_theta, peaks.intensity)
    metadata = {"formula": peaks.formula, "cell": peaks.lattice, "n_sites": peaks.n_sites}
    return MeasuredPattern(label, tt, ii, CU_KA, peaks.sg_number, metadata, "cif")


def _read_xrdml(data: bytes, text: str, label: str) -> MeasuredPattern:
    from core.xrdml import parse_xrdml

    tt, ii, wavelength, metadata = parse_xrdml(text, data, label, PatternReadError)
    tt, ii = _clean(label, tt, ii)
    return MeasuredPattern(label, tt, ii, wavelength, None, metadata, "xrdml")


# ----------------------------------------------------------------------------- dispatch

def _dispatch(data: bytes, label: str) -> MeasuredPattern:
    text = _decode(data, label)
    ext = _extension(label)
    if ext == ".cif":
        return _read_cif(data, label)
    if ext == ".xrdml":
        return _read_xrdml(data, text, label)
    if ext == ".dif":
        return _dif_pattern(text, label)
    if ext and ext not in COLUMN_EXTENSIONS:
        raise PatternReadError(f"{label}: unknown file type {ext!r} "
                               f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})")
    if _looks_like_dif(text):
        return _dif_pattern(text, label)
    head = text.lstrip()[:2000]
    if not ext and head.startswith("<"):
        return _read_xrdml(data, text, label)
    if "_cell_length_a" in text and re.search(r"^\s*data_", text, re.M):
        return _read_cif(data, label)
    if _is_rruff_xy(text):
        return _read_rruff_xy(text, label)
    return _read_columns(text, label, ext.lstrip(".") or "xy")


def read_pattern(source: str | Path | bytes, name: str | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> MeasuredPattern:
    """Read a measured (or reference) powder pattern from a file or its bytes.

    The format follows the extension of ``name`` (or of the path); text extensions are
    also sniffed for RRUFF XY, DIF and CIF content. Profiles come back with finite values
    only, 2θ ascending and duplicate angles averaged.

    Args:
        source: a path (``str`` or ``Path``), or the file's bytes (an upload).
        name: file name to report and to take the extension from; needed for bytes.
        max_bytes: largest file accepted, bytes.

    Returns:
        The :class:`MeasuredPattern`; 2θ in degrees, wavelength in Å when the file says.

    Raises:
        PatternReadError: for any unreadable input; the message starts with the file name.
    """
    label = _label(source, name)
    try:
        return _dispatch(_load(source, label, max_bytes), label)
    except PatternReadError:
        raise
    except Exception as exc:  # anything unexpected still names the file, never a traceback
        raise PatternReadError(f"{label}: unreadable ({exc.__class__.__name__}: {exc})") from exc


def read_many(paths: Iterable[str | Path]) -> list[MeasuredPattern | PatternReadError]:
    """Read several files; each entry is the pattern or the error that file raised."""
    results: list[MeasuredPattern | PatternReadError] = []
    for path in paths:
        try:
            results.append(read_pattern(path))
        except PatternReadError as exc:
            results.append(exc)
    return results
