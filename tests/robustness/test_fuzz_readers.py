"""Fuzzing the readers of uploaded files with hypothesis.

Every reader (``read_pattern`` under each supported extension, ``read_dif`` and
``read_cif``) is fed random bytes, random text, random numeric tables and mutations of
valid files written here (byte flips, truncation, duplicated, deleted and swapped lines,
NaN/inf/huge/non-numeric tokens, swapped delimiters, other encodings and line endings).
Each call must either return a valid result or raise the project's own error type whose
message starts with the file name — never another exception, and never take long. Every
pattern that is read is also put on the default grid, which must give a finite profile in
[0, 1] or a ``PatternReadError``.

``XRD_FUZZ_EXAMPLES`` (default 250) sets the examples per reader; raise it for a deeper run.
``XRD_FUZZ_LAST_INPUT=<path>`` writes each input there before it is read, to recover an input
that crashes the interpreter itself (spglib used to segfault on some CIFs).
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from core.grid import DEFAULT_GRID
from core.preprocess import to_grid
from core.readers import (
    MIN_POINTS,
    SUPPORTED_EXTENSIONS,
    DifFile,
    MeasuredPattern,
    PatternReadError,
    read_dif,
    read_pattern,
)
from core.structures import StructureReadError, read_cif

EXAMPLES = int(os.environ.get("XRD_FUZZ_EXAMPLES", "250"))
CIF_EXAMPLES = max(20, EXAMPLES // 3)   # a readable CIF is simulated: ~50 ms a call
SLOW_CALL_S = 20.0                      # one small input taking this long counts as a hang
LAST_INPUT = os.environ.get("XRD_FUZZ_LAST_INPUT")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
FUZZ_CIF = settings(FUZZ, max_examples=CIF_EXAMPLES)

# ----------------------------------------------------------------------------- valid seeds


def _profile(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    tt = np.round(np.linspace(10.0, 70.0, n), 3)
    y = 80.0 + 900.0 * np.exp(-0.5 * ((tt - 28.4) / 0.25) ** 2) \
        + 450.0 * np.exp(-0.5 * ((tt - 47.3) / 0.3) ** 2)
    return tt, np.round(y, 1)


def _xy() -> bytes:
    tt, y = _profile()
    return ("# fuzz seed, Cu Ka\n" + "".join(f"{a:.3f} {b:.1f}\n" for a, b in zip(tt, y))).encode()


def _csv() -> bytes:
    tt, y = _profile()
    return ("2theta,intensity\n" + "".join(f"{a:.3f},{b:.1f}\n" for a, b in zip(tt, y))).encode()


def _rruff_xy() -> bytes:
    tt, y = _profile()
    head = ("##NAMES=Fuzzite\n##RRUFFID=R990099\n##IDEAL CHEMISTRY=Si\n"
            "##CELL PARAMETERS=a: 5.4309  b: 5.4309  c: 5.4309  alpha: 90.000  beta: 90.000  "
            "gamma: 90.000\n##X-RAY WAVELENGTH=1.54184\n")
    body = "".join(f"{a:.3f}, {b:.1f}\n" for a, b in zip(tt, y))
    return (head + body + "##END=\n").encode()


def _dif() -> bytes:
    peaks = [(28.44, 100.0, 3.1355, (1, 1, 1)), (47.30, 55.2, 1.9201, (2, 2, 0)),
             (56.12, 30.1, 1.6375, (3, 1, 1)), (69.13, 6.8, 1.3577, (4, 0, 0)),
             (76.38, 9.9, 1.2459, (3, 3, 1)), (88.03, 11.7, 1.1086, (4, 2, 2))]
    rows = "".join(f"{t:22.2f}{i:15.2f}{d:13.4f}{h:4d}{k:4d}{l:4d}\n" for t, i, d, (h, k, l) in peaks)
    return ("      Silicon\n      Diffraction data computed for a fuzz seed\n\n"
            "      CELL PARAMETERS:    5.4309   5.4309   5.4309   90.000   90.000   90.000\n"
            "      SPACE GROUP: Fd-3m\n      X-RAY WAVELENGTH:    1.541838\n"
            "      The INTENSITY cut off value is   1.00\n\n"
            "               2-THETA      INTENSITY    D-SPACING   H   K   L\n"
            + rows + "=" * 80 + "\n").encode()


def _xrdml() -> bytes:
    tt, y = _profile(60)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
  <sample type="To be analyzed"><id>fuzz-01</id><name>Fuzzite</name></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">1.5405980</kAlpha1>
      <kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
      <ratioKAlpha2KAlpha1 unit="None">0.5000</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg">
          <startPosition>{tt[0]:.3f}</startPosition><endPosition>{tt[-1]:.3f}</endPosition>
        </positions>
        <intensities unit="counts">{" ".join(f"{v:.0f}" for v in y)}</intensities>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
""".encode()


def _cif() -> bytes:
    from pymatgen.core import Lattice, Structure

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])
    return nacl.to(fmt="cif").encode()


SEEDS: dict[str, bytes] = {"xy": _xy(), "csv": _csv(), "rruff": _rruff_xy(), "dif": _dif(),
                           "xrdml": _xrdml(), "cif": _cif()}
# Which seeds each extension reads as a valid file (mutations start there most often).
PREFERRED: dict[str, tuple[str, ...]] = {
    ".xy": ("xy", "rruff"), ".xye": ("xy",), ".txt": ("rruff", "xy", "dif"), ".dat": ("xy",),
    ".csv": ("csv",), ".dif": ("dif",), ".cif": ("cif",), ".xrdml": ("xrdml",),
    "": ("xy", "xrdml"), "_CIF.txt": ("dif",),
}
SEED_FOR: dict[str, tuple[str, str]] = {  # seed -> (a name that reads it, expected kind)
    "xy": ("seed.xy", "xy"), "csv": ("seed.csv", "csv"), "rruff": ("R990099.txt", "rruff_xy"),
    "dif": ("seed.dif", "dif"), "xrdml": ("seed.xrdml", "xrdml"), "cif": ("seed.cif", "cif"),
}

# ----------------------------------------------------------------------------- mutations

TOKENS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e999", "-1e999",
          "1.7976931348623157e308", "5e-324", "1e-400", "0", "-0", "-1", "180.0001", "9" * 40,
          "abc", "∞", "0x1F", "1,5", "--", "+", "e", ".", "1.2.3", "", "NULL", "#", "##END=",
          "<", "&amp;", "\t", ";", ",", "\x00", "\x7f", "2-THETA", "SPACE GROUP: P1"]
NUMBER = re.compile(rb"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")
DELIMITERS = [b",", b" ", b"  ", b"\t", b";", b", ", b"\n"]


def _position(draw, data: bytes, extra: int = 0) -> int:
    return draw(st.integers(0, max(0, len(data) - 1 + extra)))


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _flip(draw, data):
    if not data:
        return data
    i = _position(draw, data)
    return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]


def _truncate(draw, data):
    return data[:_position(draw, data, 1)]


def _insert_bytes(draw, data):
    i = _position(draw, data, 1)
    return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]


def _duplicate_lines(draw, data):
    lines = _lines(data)
    i = _position(draw, lines)
    return b"\n".join(lines[:i] + [lines[i]] * draw(st.integers(1, 40)) + lines[i:])


def _delete_lines(draw, data):
    lines = _lines(data)
    i = _position(draw, lines)
    return b"\n".join(lines[:i] + lines[i + draw(st.integers(1, 60)):])


def _swap_lines(draw, data):
    lines = _lines(data)
    i, j = _position(draw, lines), _position(draw, lines)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _insert_line(draw, data):
    lines = _lines(data)
    tokens = draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4))
    sep = draw(st.sampled_from([" ", ",", "\t", ";"]))
    lines.insert(_position(draw, lines, 1), sep.join(tokens).encode())
    return b"\n".join(lines)


def _replace_number(draw, data):
    matches = list(NUMBER.finditer(data))
    if not matches:
        return data
    match = matches[draw(st.integers(0, len(matches) - 1))]
    token = draw(st.sampled_from(TOKENS)).encode()
    return data[:match.start()] + token + data[match.end():]


def _replace_numbers(draw, data):
    """Many numbers at once (e.g. every intensity becomes ``nan``)."""
    token = draw(st.sampled_from(TOKENS)).encode()
    every = draw(st.integers(1, 5))
    counter = iter(range(10**9))
    return NUMBER.sub(lambda m: token if next(counter) % every == 0 else m.group(), data)


def _perturb_number(draw, data):
    """One number changed a little: still a plausible file, read through to the end."""
    matches = list(NUMBER.finditer(data))
    if not matches:
        return data
    match = matches[draw(st.integers(0, len(matches) - 1))]
    try:
        value = float(match.group()) * draw(st.sampled_from([0.5, 0.9, 0.99, 1.01, 1.1, 2.0]))
    except (OverflowError, ValueError):
        return data
    return data[:match.start()] + f"{value:.6g}".encode() + data[match.end():]


def _swap_delimiters(draw, data):
    old, new = draw(st.sampled_from(DELIMITERS)), draw(st.sampled_from(DELIMITERS))
    return data.replace(old, new)


def _decimal_commas(draw, data):
    return data.replace(b".", b",")


def _line_endings(draw, data):
    return data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\x0b"])))


def _reencode(draw, data):
    text = data.decode("latin-1")
    return text.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-8-sig", "cp1252"])),
                       errors="replace")


def _scale_numbers(draw, data):
    """Every number multiplied by a factor: angles outside 0–180°, tiny or huge intensities."""
    factor = draw(st.sampled_from([-1.0, 0.0, 1e-30, 1e-3, 3.0, 1e6, 1e300]))

    def scaled(match):
        try:
            return repr(float(match.group()) * factor).encode()
        except (OverflowError, ValueError):
            return match.group()
    return NUMBER.sub(scaled, data)


MUTATIONS = [_flip, _truncate, _insert_bytes, _duplicate_lines, _delete_lines, _swap_lines,
             _insert_line, _replace_number, _replace_numbers, _perturb_number, _perturb_number,
             _swap_delimiters, _decimal_commas, _line_endings, _reencode, _scale_numbers]


@st.composite
def mutated(draw, seeds: tuple[str, ...]) -> bytes:
    data = SEEDS[draw(st.sampled_from(seeds))]
    count = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4]))  # mostly one: many stay readable
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=count, max_size=count)):
        data = mutation(draw, data)
    return data


NUMBERISH = st.one_of(
    st.floats(0.0, 180.0).map(lambda v: f"{v:.3f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**25, 10**25).map(str),
    st.sampled_from(TOKENS),
)


@st.composite
def numeric_tables(draw) -> bytes:
    """Column files with random numbers, delimiters and headers."""
    sep = draw(st.sampled_from([" ", "  ", ",", ", ", "\t", ";"]))
    header = draw(st.sampled_from(["", "2theta intensity\n", "intensity,2theta\n",
                                   "# wavelength 0.7093\n", "counts angle esd\n", "##NAMES=x\n"]))
    if draw(st.booleans()):  # ascending angles with random intensities: mostly readable
        n = draw(st.integers(0, 80))
        start = draw(st.floats(0.0, 170.0))
        rows = [[f"{start + 0.1 * k:.3f}", draw(NUMBERISH)] for k in range(n)]
    else:
        rows = draw(st.lists(st.lists(NUMBERISH, min_size=1, max_size=4), max_size=80))
    return (header + "\n".join(sep.join(r) for r in rows)).encode()


def inputs(seeds: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated(seeds), mutated(seeds), mutated(seeds), mutated(tuple(SEEDS)),
        st.binary(max_size=3000),
        st.text(max_size=2000).map(lambda s: s.encode("utf-8", errors="replace")),
        numeric_tables(),
    )


# ----------------------------------------------------------------------------- checks


def _note(what: str) -> None:
    """Count an outcome in hypothesis' statistics (``--hypothesis-show-statistics``)."""
    try:
        event(what)
    except InvalidArgument:  # called outside a hypothesis test
        pass


def _timed(call, *args, **kwargs):
    if LAST_INPUT and isinstance(args[0], bytes):
        with open(LAST_INPUT, "wb") as handle:
            handle.write(args[0])
    start = time.perf_counter()
    try:
        return call(*args, **kwargs)
    finally:
        elapsed = time.perf_counter() - start
        assert elapsed < SLOW_CALL_S, f"{call.__name__} took {elapsed:.1f} s on a small input"


def check_pattern(pattern: MeasuredPattern, name: str) -> None:
    """A pattern as the readers promise it, and its profile on the default grid."""
    assert isinstance(pattern, MeasuredPattern)
    assert pattern.name == name
    tt, ii = pattern.two_theta, pattern.intensity
    assert tt.dtype == np.float64 and ii.dtype == np.float64
    assert tt.ndim == 1 and tt.shape == ii.shape
    assert np.isfinite(tt).all() and np.isfinite(ii).all()
    if pattern.is_sticks:
        assert tt.size >= 1 and np.all(np.diff(tt) >= 0)
        assert tt.min() > 0 and tt.max() < 180 and np.all(ii > 0)
    else:
        assert tt.size >= MIN_POINTS and np.all(np.diff(tt) > 0)
        assert tt.min() >= 0 and tt.max() <= 180
    if pattern.wavelength is not None:
        assert np.isfinite(pattern.wavelength) and 0.1 < pattern.wavelength < 5.0, pattern.wavelength
    if pattern.sg_number is not None:
        assert 1 <= pattern.sg_number <= 230
    try:
        prepared = _timed(to_grid, pattern, DEFAULT_GRID)
    except PatternReadError as exc:
        assert str(exc).startswith(name), str(exc)
        _note("read, but not on the grid")
        return
    profile = prepared.profile
    assert profile.shape == (DEFAULT_GRID.size,)
    assert np.isfinite(profile).all(), "non-finite values in the grid profile"
    assert profile.min() >= 0.0 and profile.max() <= 1.0


def read_and_check(data: bytes, name: str) -> MeasuredPattern | None:
    try:
        pattern = _timed(read_pattern, data, name=name)
    except PatternReadError as exc:
        assert str(exc).startswith(name), str(exc)
        _note("refused")
        return None
    _note(f"read as {pattern.kind}")
    check_pattern(pattern, name)
    return pattern


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seeds_are_valid_files(seed):
    name, kind = SEED_FOR[seed]
    pattern = read_and_check(SEEDS[seed], name)
    assert pattern is not None and pattern.kind == kind


FAST_SUFFIXES = [e for e in SUPPORTED_EXTENSIONS if e != ".cif"] + ["", "_CIF.txt"]


@pytest.mark.parametrize("suffix", FAST_SUFFIXES)
@FUZZ
@given(data=st.data())
def test_read_pattern_survives_fuzzing(suffix, data):
    payload = data.draw(inputs(PREFERRED[suffix]), label="file")
    read_and_check(payload, f"fuzz{suffix}")


@FUZZ_CIF
@given(payload=inputs(("cif",)))
def test_read_pattern_survives_fuzzed_cifs(payload):
    read_and_check(payload, "fuzz.cif")


@FUZZ
@given(payload=inputs(("dif", "dif", "rruff")))
def test_read_dif_survives_fuzzing(payload):
    name = "R990099_fuzz.dif"
    try:
        dif = _timed(read_dif, payload, name=name)
    except PatternReadError as exc:
        assert str(exc).startswith(name), str(exc)
        _note("refused")
        return
    _note("read")
    assert isinstance(dif, DifFile)
    assert 1 <= dif.sg_number <= 230 and dif.n_peaks >= 1
    n = dif.n_peaks
    assert dif.intensity.shape == dif.d_spacing.shape == (n,) and dif.hkl.shape == (n, 3)
    pattern = dif.to_pattern()
    assert pattern.sg_number == dif.sg_number and pattern.two_theta.size == n


@FUZZ_CIF
@given(payload=inputs(("cif", "cif", "xy")))
def test_read_cif_survives_fuzzing(payload):
    from pymatgen.core import Structure

    name = "fuzz_structure.cif"
    try:
        structure = _timed(read_cif, payload, name=name)
    except StructureReadError as exc:
        assert str(exc).startswith(name), str(exc)
        _note("refused")
        return
    _note("read")
    assert isinstance(structure, Structure) and len(structure) >= 1


def test_cif_with_a_giant_cell_is_refused_quickly():
    """A few atoms in a 150 Å cell would mean millions of reflections (gigabytes, minutes):
    such a CIF is refused with a clear message instead."""
    text = SEEDS["cif"].decode().replace("5.64000000", "150.00000000")
    assert "150.00000000" in text
    start = time.perf_counter()
    with pytest.raises(PatternReadError, match=r"^giant\.cif: .*cell"):
        read_pattern(text.encode(), name="giant.cif")
    assert time.perf_counter() - start < SLOW_CALL_S


@pytest.mark.parametrize("old, new, count", [
    ("5.64000000", "nan", 1), ("5.64000000", "inf", 1), ("90.00000000", "0", 1),
    ("90.00000000", "nan", 1), ("5.64000000", "0.5", 3), ("0.50000000", "nan", 1),
])
def test_cif_with_an_impossible_cell_is_refused(old, new, count):
    """spglib used to crash the interpreter (segfault) on such cells."""
    text = SEEDS["cif"].decode().replace(old, new, count).encode()
    with pytest.raises(PatternReadError, match=r"^bad\.cif: "):
        read_pattern(text, name="bad.cif")
    with pytest.raises(StructureReadError, match=r"^bad\.cif: "):
        read_cif(text, name="bad.cif")


def test_huge_intensities_give_a_finite_profile_or_a_clear_error():
    """Intensities near the float64 limit must not turn into NaN on the grid."""
    tt, _ = _profile()
    y = np.where(np.arange(tt.size) % 2, 1.7e308, -1.7e308)
    text = "".join(f"{a:.3f} {float(b)!r}\n" for a, b in zip(tt, y)).encode()
    read_and_check(text, "huge.xy")
