"""Readers of measured patterns: every format from real files, and every kind of bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from core.grid import CU_KA, DEFAULT_GRID
from core.readers import (
    SUPPORTED_EXTENSIONS,
    DifFile,
    MeasuredPattern,
    PatternReadError,
    read_dif,
    read_many,
    read_pattern,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rruff_dev"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/rruff_dev not present")


def synthetic(start: float = 10.0, stop: float = 60.0, step: float = 0.02,
              peaks=((20.0, 1000.0), (35.0, 600.0), (47.5, 300.0))) -> tuple[np.ndarray, np.ndarray]:
    """A profile with Gaussian peaks on a flat background of 50 counts."""
    tt = np.round(np.arange(start, stop + step / 2, step), 4)
    y = 50.0 + sum(h * np.exp(-0.5 * ((tt - c) / 0.08) ** 2) for c, h in peaks)
    return tt, np.round(y, 2)


def lines(tt, y, sep: str = " ") -> str:
    return "\n".join(f"{a:.4f}{sep}{b:.2f}" for a, b in zip(tt, y)) + "\n"


def assert_pattern(p: MeasuredPattern, kind: str, n: int | None = None) -> None:
    assert isinstance(p, MeasuredPattern)
    assert p.kind == kind
    assert p.two_theta.dtype == np.float64 and p.intensity.dtype == np.float64
    assert p.two_theta.shape == p.intensity.shape
    assert np.all(np.diff(p.two_theta) > 0)
    assert np.isfinite(p.two_theta).all() and np.isfinite(p.intensity).all()
    if n is not None:
        assert p.two_theta.size == n


# ----------------------------------------------------------------------------- happy paths

def test_xy_whitespace_with_comments_and_header(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "quartz.xy"
    path.write_text("# measured on a lab diffractometer\n! wavelength: 0.71073 A\n"
                    "2theta intensity\n" + lines(tt, y, "   "))
    p = read_pattern(path)
    assert_pattern(p, "xy", tt.size)
    assert p.name == "quartz.xy"
    assert p.wavelength == pytest.approx(0.71073)
    np.testing.assert_allclose(p.two_theta, tt)
    np.testing.assert_allclose(p.intensity, y)


def test_semicolon_dat(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "sample.dat"
    path.write_text("; exported by an instrument\n" + lines(tt, y, ";"))
    p = read_pattern(path)
    assert_pattern(p, "dat", tt.size)
    assert p.wavelength is None and p.sg_number is None
    np.testing.assert_allclose(p.intensity, y)


def test_semicolon_with_decimal_commas(tmp_path):
    tt, y = synthetic()
    text = "\n".join(f"{a:.3f};{b:.1f}".replace(".", ",") for a, b in zip(tt, y))
    p = read_pattern(text.encode(), name="euro.txt")
    assert_pattern(p, "txt", tt.size)
    np.testing.assert_allclose(p.two_theta, tt, atol=1e-3)


def test_tab_separated_txt(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "tabs.txt"
    path.write_text(lines(tt, y, "\t"))
    assert_pattern(read_pattern(path), "txt", tt.size)


def test_csv_with_header_follows_column_names(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "named.csv"
    path.write_text("angle,intensity\n" + lines(tt, y, ","))
    p = read_pattern(path)
    assert_pattern(p, "csv", tt.size)
    np.testing.assert_allclose(p.two_theta, tt)
    # Columns are found by name, not by position.
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("Counts,2Theta (deg),esd\n" + "\n".join(
        f"{b},{a},1.0" for a, b in zip(tt, y)))
    q = read_pattern(swapped)
    np.testing.assert_allclose(q.two_theta, tt)
    np.testing.assert_allclose(q.intensity, y)


def test_csv_without_header(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "plain.csv"
    path.write_text(lines(tt, y, ", "))
    p = read_pattern(path)
    assert_pattern(p, "csv", tt.size)
    np.testing.assert_allclose(p.intensity, y)


def test_xye_three_columns(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "scan.xye"
    path.write_text("\n".join(f"{a:.4f} {b:.2f} {np.sqrt(b):.3f}" for a, b in zip(tt, y)))
    p = read_pattern(path)
    assert_pattern(p, "xye", tt.size)
    assert p.metadata["n_columns"] == 3
    np.testing.assert_allclose(p.intensity, y)


def test_descending_input_is_sorted_and_duplicates_averaged(tmp_path):
    tt, y = synthetic()
    body = lines(tt[::-1], y[::-1]) + f"{tt[5]:.4f} {y[5] + 10:.2f}\n"
    p = read_pattern(body.encode(), name="reversed.xy")
    assert_pattern(p, "xy", tt.size)
    np.testing.assert_allclose(p.two_theta, tt)
    assert p.intensity[5] == pytest.approx(y[5] + 5)


def test_averaging_duplicates_near_the_float_limit_stays_finite():
    tt, y = synthetic()
    huge = y / y.max() * 1e308
    body = lines(tt, huge) + lines(tt, huge)  # every angle twice
    p = read_pattern(body.encode(), name="huge.xy")
    assert np.isfinite(p.intensity).all()
    np.testing.assert_allclose(p.intensity, huge, rtol=1e-12)


def test_nan_and_blank_fields_dropped(tmp_path):
    tt, y = synthetic()
    rows = [f"{a:.4f},{b:.2f}" for a, b in zip(tt, y)]
    rows[3] = f"{tt[3]:.4f},nan"
    rows[7] = f"NaN,{y[7]}"
    rows[9] = f"{tt[9]:.4f},"
    rows[11] = f"{tt[11]:.4f},inf"
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(rows))
    p = read_pattern(path)
    assert_pattern(p, "csv", tt.size - 4)
    assert tt[3] not in p.two_theta and tt[11] not in p.two_theta


RRUFF_XY = """##NAMES=Diopside
##RRUFFID=R040009
##IDEAL CHEMISTRY=CaMgSi_2_O_6_
##LOCALITY=Ala, Piedmont, Italy
##OWNER=RRUFF
##SOURCE=Michael Scott
##DESCRIPTION=Pale green crystal
##CELL PARAMETERS=a: 9.7481 b: 8.9230 c: 5.2508 alpha: 90. beta: 105.886 gamma: 90. volume: 439.08 crystal system: monoclinic
##X-RAY WAVELENGTH=1.54184
{data}##END=
"""


def test_rruff_xy(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "Diopside__R040009-1__Powder__Xray_Data_XY_RAW__1234.txt"
    path.write_text(RRUFF_XY.format(data=lines(tt, y, ", ")) + "junk after the end\n")
    p = read_pattern(path)
    assert_pattern(p, "rruff_xy", tt.size)
    assert p.metadata["mineral"] == "Diopside"
    assert p.metadata["rruff_id"] == "R040009"
    assert p.metadata["ideal_chemistry"] == "CaMgSi_2_O_6_"
    assert p.metadata["locality"] == "Ala, Piedmont, Italy"
    assert p.metadata["cell"] == pytest.approx((9.7481, 8.9230, 5.2508, 90, 105.886, 90))
    assert p.wavelength == pytest.approx(1.54184)
    # The same content under other extensions is recognised by its headers.
    for ext in (".xy", ".dat", ".csv"):
        q = read_pattern(path.read_bytes(), name=f"R040009{ext}")
        assert q.kind == "rruff_xy" and q.two_theta.size == tt.size


XRDML = """<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
  <sample type="To be analyzed"><id>quartz-01</id><name>Quartz</name></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">1.5405980</kAlpha1>
      <kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
      <kBeta unit="Angstrom">1.3922500</kBeta>
      <ratioKAlpha2KAlpha1 unit="None">0.5000</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg">{positions}</positions>
        <positions axis="Omega" unit="deg">
          <startPosition>5.0</startPosition><endPosition>30.0</endPosition>
        </positions>
        <commonCountingTime unit="seconds">1.00</commonCountingTime>
        <intensities unit="counts">{values}</intensities>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
"""


def test_xrdml_start_end_and_list_positions(tmp_path):
    tt, y = synthetic()
    values = " ".join(f"{v:g}" for v in y)
    path = tmp_path / "scan.xrdml"
    path.write_text(XRDML.format(
        positions="<startPosition>10.0</startPosition><endPosition>60.0</endPosition>",
        values=values))
    p = read_pattern(path)
    assert_pattern(p, "xrdml", tt.size)
    np.testing.assert_allclose(p.two_theta, tt, atol=1e-9)
    assert p.wavelength == pytest.approx((1.540598 + 0.5 * 1.544426) / 1.5)
    assert p.metadata["sample_id"] == "quartz-01"
    listed = XRDML.format(positions="<listPositions>" + " ".join(f"{a:g}" for a in tt)
                          + "</listPositions>", values=values).replace("intensities", "counts")
    q = read_pattern(listed.encode(), name="listed.xrdml")
    np.testing.assert_allclose(q.two_theta, tt)
    np.testing.assert_allclose(q.intensity, y)


@pytest.fixture(scope="module")
def nacl_cif(tmp_path_factory) -> Path:
    from pymatgen.core import Lattice, Structure

    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    path = tmp_path_factory.mktemp("cif") / "NaCl.cif"
    structure.to(filename=str(path))
    return path


def test_cif_is_simulated_as_sticks(nacl_cif):
    p = read_pattern(nacl_cif)
    assert_pattern(p, "cif")
    assert p.sg_number == 225
    assert p.wavelength == pytest.approx(CU_KA)
    assert p.is_sticks and p.metadata["formula"] == "NaCl"
    # Rock salt's strongest reflection, (200), at d = 2.82 Å.
    assert p.two_theta[np.argmax(p.intensity)] == pytest.approx(31.7, abs=0.1)
    assert read_pattern(nacl_cif.read_bytes(), name="upload.cif").sg_number == 225


DIF = """
      Leiteite
Diffraction data computed using the structure from the paper listed below,
along with the cell parameters refined from the powder pattern of R040011
      Ghose S, Sen Gupta P K, Schlemper E O
      American Mineralogist 72 (1987) 629-632

      CELL PARAMETERS:   4.5443  5.0143 17.6107   90.000   90.751   90.000
      SPACE GROUP: P2_1/c
{extra}
           ATOM        X         Y         Z     OCCUPANCY  ISO(B)
            Zn     0.11300   0.35700   0.35080     1.000     0.710

            BOUNDS ON TWO THETA:    5.0  90.0
            The INTENSITY cut off value is   1.00

               2-THETA      INTENSITY    D-SPACING   H   K   L
{rows}================================================================================
       XPOW Copyright 1993 Bob Downs, Ranjini Swaminathan and Kurt Bartelmehs
"""
DIF_ROWS = """                10.04        100.00        8.8052    0   0   2
                20.14         12.50        4.4056    0   0   4
                23.90         33.10        3.7202   -1   1   1
                24.07         40.00        3.6942    1   1   1
                30.42          5.75        2.9359    0   0   6
"""


def test_read_dif(tmp_path):
    path = tmp_path / "R040011.dif"
    path.write_text(DIF.format(extra="", rows=DIF_ROWS))
    dif = read_dif(path)
    assert isinstance(dif, DifFile)
    assert dif.mineral == "Leiteite"
    assert (dif.sg_symbol, dif.sg_number) == ("P2_1/c", 14)
    assert dif.cell == pytest.approx((4.5443, 5.0143, 17.6107, 90.0, 90.751, 90.0))
    assert dif.wavelength is None
    np.testing.assert_allclose(dif.two_theta, [10.04, 20.14, 23.90, 24.07, 30.42])
    np.testing.assert_allclose(dif.d_spacing[:2], [8.8052, 4.4056])
    assert dif.hkl.shape == (5, 3) and dif.hkl[2].tolist() == [-1, 1, 1]
    p = dif.to_pattern()
    assert_pattern(p, "dif", 5)
    assert p.sg_number == 14 and p.metadata["mineral"] == "Leiteite"
    # read_pattern gives the same sticks, for .dif and for RRUFF's *_CIF.txt naming.
    for name in ("R040011.dif", "R040011_CIF.txt", "leiteite.txt"):
        q = read_pattern(path.read_bytes(), name=name)
        assert q.kind == "dif" and q.sg_number == 14
        np.testing.assert_allclose(q.two_theta, p.two_theta)


def test_read_dif_two_wavelengths_and_alternate_setting():
    rows = ("            18.32 / 18.37     1.59 /  0.79       4.8383     1   1   0\n"
            "            27.82 / 27.89    44.33 / 22.16       3.2040     0   2   0\n")
    text = DIF.format(extra="            X-RAY WAVELENGTHS:   1.540562  1.544390", rows=rows)
    text = text.replace("SPACE GROUP: P2_1/c", "ALTERNATE SETTING FOR SPACE GROUP: Pbnm")
    dif = read_dif(text.replace("\n", "\r\n").encode(), name="enargite.dif")
    assert dif.sg_number == 62 and dif.metadata["alternate_setting"]
    assert dif.wavelength == pytest.approx(1.540562)
    np.testing.assert_allclose(dif.two_theta, [18.32, 27.82])
    np.testing.assert_allclose(dif.intensity, [1.59, 44.33])


def test_bytes_with_name_match_paths(tmp_path, nacl_cif):
    tt, y = synthetic()
    files = {"a.xy": lines(tt, y), "b.csv": "angle,intensity\n" + lines(tt, y, ","),
             "c.dif": DIF.format(extra="", rows=DIF_ROWS),
             "d.xrdml": XRDML.format(positions="<startPosition>10</startPosition>"
                                               "<endPosition>60</endPosition>",
                                     values=" ".join(map(str, y)))}
    paths = [nacl_cif]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    for path in paths:
        from_path = read_pattern(path)
        from_bytes = read_pattern(path.read_bytes(), name=path.name)
        assert from_path.kind == from_bytes.kind
        np.testing.assert_array_equal(from_path.two_theta, from_bytes.two_theta)
    assert {".xy", ".csv", ".dif", ".cif", ".xrdml"} <= set(SUPPORTED_EXTENSIONS)


# ----------------------------------------------------------------------------- bad inputs

def _bad_cases(cif_text: str) -> dict[str, bytes]:
    tt, y = synthetic()
    rng = np.random.default_rng(0)
    return {
        "empty.xy": b"",
        "blank.csv": b"  \n\n\t\n",
        "garbage.xy": b"\x00\x01\x02" + rng.bytes(4096),
        "x.bin": rng.bytes(2048) + b"\x00",
        "control.txt": bytes(rng.integers(1, 32, 3000, dtype=np.uint8)),
        "nan.csv": "angle,intensity\n".encode() + b"nan,nan\n" * 50,
        "one_column.xy": "\n".join(f"{v:.2f}" for v in y).encode(),
        "words.csv": b"mineral,locality\nquartz,brazil\ncalcite,mexico\n",
        "pattern.foo": lines(tt, y).encode(),
        "truncated.cif": cif_text[: cif_text.rindex("loop_")].encode(),
        "not_a.cif": lines(tt, y).encode(),
        "xxe.xrdml": (b'<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM '
                      b'"file:///etc/passwd">]>\n<xrdMeasurements>&xxe;</xrdMeasurements>'),
        "broken.xrdml": b"<xrdMeasurements><dataPoints><positions axis='2Theta'>",
        "no_scan.xrdml": b"<xrdMeasurements><sample/></xrdMeasurements>",
        "few.xy": lines(tt[:5], y[:5]).encode(),
        "flat.xy": lines(tt, np.full_like(y, 7.0)).encode(),
        "zeros.xy": lines(tt, np.zeros_like(y)).encode(),
        "negative.xy": lines(tt - 30, y).encode(),
        "too_wide.xy": lines(tt * 4, y).encode(),
        "no_sg.dif": DIF.format(extra="", rows=DIF_ROWS).replace("SPACE GROUP: P2_1/c", "").encode(),
        "bad_sg.dif": DIF.format(extra="", rows=DIF_ROWS).replace("P2_1/c", "Q9").encode(),
        "no_peaks.dif": DIF.format(extra="", rows="").encode(),
    }


def test_bad_inputs_raise_pattern_read_error_naming_the_file(tmp_path, nacl_cif):
    for name, data in _bad_cases(nacl_cif.read_text()).items():
        path = tmp_path / name
        path.write_bytes(data)
        for source in (path, data):
            with pytest.raises(PatternReadError) as info:
                read_pattern(source, name=None if isinstance(source, Path) else name)
            message = str(info.value)
            assert message.startswith(f"{name}: "), message
            assert "Traceback" not in message


@pytest.mark.parametrize("name, data, reason", [
    ("empty.xy", b"", "file is empty"),
    ("x.bin", b"\x00\xff\xfe" * 100, "binary file, not a text pattern"),
    ("a.xy", b"1\n2\n3\n4\n", "only one column; need 2θ and intensity"),
    ("a.foo", b"1 2\n", "unknown file type '.foo'"),
    ("R040009.csv", b"angle,intensity\n", "no numeric data rows"),
    ("xxe.xrdml", b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', "XML with DTD/entities refused"),
    ("few.xy", b"10 1\n11 2\n12 3\n", "need at least 10"),
    ("flat.xy", b"".join(b"%d 5\n" % i for i in range(10, 30)), "flat pattern"),
])
def test_error_messages(name, data, reason):
    with pytest.raises(PatternReadError, match=f"^{name}: .*") as info:
        read_pattern(data, name=name)
    assert reason in str(info.value)


def test_oversize_refused(tmp_path):
    tt, y = synthetic()
    path = tmp_path / "big.xy"
    path.write_text(lines(tt, y))
    with pytest.raises(PatternReadError, match=r"^big\.xy: too large .*limit 1\.0 kB"):
        read_pattern(path, max_bytes=1024)
    with pytest.raises(PatternReadError, match=r"^upload\.xy: too large"):
        read_pattern(path.read_bytes(), name="upload.xy", max_bytes=1024)
    assert read_pattern(path, max_bytes=path.stat().st_size).two_theta.size == tt.size


def test_missing_file_and_read_many(tmp_path):
    tt, y = synthetic()
    good = tmp_path / "good.xy"
    good.write_text(lines(tt, y))
    results = read_many([good, tmp_path / "missing.xy"])
    assert isinstance(results[0], MeasuredPattern)
    assert isinstance(results[1], PatternReadError)
    assert str(results[1]).startswith("missing.xy: ")
    with pytest.raises(PatternReadError, match="^missing.dif: "):
        read_dif(tmp_path / "missing.dif")


# ----------------------------------------------------------------------------- RRUFF data

def _labels() -> list[dict[str, str]]:
    with open(SHARED / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@needs_shared
def test_rruff_dif_files_give_labelled_space_groups():
    labels = {row["structure_file"]: int(row["sg_number"]) for row in _labels()}
    files = sorted(SHARED.glob("*_CIF.txt"))
    assert files
    wrong = {}
    for path in files:
        dif = read_dif(path)
        assert dif.n_peaks > 0
        if dif.sg_number != labels[path.name]:
            wrong[path.name] = (dif.sg_symbol, dif.sg_number, labels[path.name])
    assert not wrong


@needs_shared
def test_rruff_patterns_read_and_preprocess():
    from core.preprocess import to_grid

    files = sorted(SHARED.glob("R*.csv"))
    assert files
    for path in files:
        pattern = read_pattern(path)
        assert pattern.two_theta.size >= 100, path.name
        profile = to_grid(pattern, DEFAULT_GRID).profile
        assert profile.shape == (DEFAULT_GRID.size,)
        assert np.isfinite(profile).all(), path.name
        assert profile.min() >= 0 and profile.max() == pytest.approx(1.0), path.name
