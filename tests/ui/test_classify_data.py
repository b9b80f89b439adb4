"""Uploads -> predictions for the classify page: every format, good and bad, zips, labels,
ground truth pairing, summaries and the CLI's JSON schema."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from core.classify import Classifier
from core.evaluation import evaluate
from core.examples import read_examples
from core.explain import PeakInfluence
from core.preprocess import Preprocessing
from tests.conftest import RRUFF_DEV, needs_rruff
from ui import classify_data as data

EXAMPLES = dict(read_examples())
RESULT_COLUMNS = ["file", "space group", "symbol", "probability", "best crystal system",
                  "system probability", "top 5", "low confidence", "true space group", "correct",
                  "in top 5", "system correct", "error"]


def _profile() -> tuple[np.ndarray, np.ndarray]:
    """2θ and counts of an example measurement (0.01° steps, 5–90°)."""
    rows = [line.split(",") for line in EXAMPLES["R990001_LiFePO4_XY.txt"].decode().splitlines()
            if not line.startswith("##")]
    array = np.array(rows, dtype=float)
    return array[:, 0], array[:, 1]


def _columns(separator: str, header: str = "", every: int = 1, esd: bool = False) -> bytes:
    tt, y = _profile()
    lines = [header] if header else []
    for a, v in zip(tt[::every], y[::every]):
        lines.append(separator.join([f"{a:.2f}", f"{v:g}"] + ([f"{np.sqrt(v):.2f}"] if esd else [])))
    return ("\n".join(lines) + "\n").encode()


def _xrdml() -> bytes:
    tt, y = _profile()
    values = " ".join(f"{v:g}" for v in y[::4])
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
  <sample type="To be analyzed"><id>lfp</id><name>LiFePO4</name></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">1.5405980</kAlpha1><kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
      <ratioKAlpha2KAlpha1 unit="None">0.5000</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg"><startPosition>5.0</startPosition>
          <endPosition>{5 + 0.04 * (len(y[::4]) - 1):.2f}</endPosition></positions>
        <intensities unit="counts">{values}</intensities>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
""".encode()


def _cif() -> bytes:
    from pymatgen.core import Lattice, Structure

    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    return structure.to(fmt="cif").encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def good_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, reader kind) for every supported format."""
    return {
        "R990001_LiFePO4_XY.txt": (EXAMPLES["R990001_LiFePO4_XY.txt"], "rruff_xy"),
        "R990002_Si.dif": (EXAMPLES["R990002_Si.dif"], "dif"),
        "TiO2.xy": (EXAMPLES["TiO2.xy"], "xy"),
        "scan.xye": (_columns(" ", every=2, esd=True), "xye"),
        "scan.txt": (_columns("\t", header="# 2theta counts", every=3), "txt"),
        "scan.dat": (_columns("  ", every=5), "dat"),
        "scan.csv": (_columns(",", header="angle,intensity"), "csv"),
        "scan.xrdml": (_xrdml(), "xrdml"),
        "NaCl.cif": (_cif(), "cif"),
    }


def bad_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, words the error message must contain)."""
    rng = np.random.default_rng(0)
    return {
        "empty.xy": (b"", "empty"),
        "garbage.dat": (rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(), "binary"),
        "nan.csv": (b"angle,intensity\n" + b"nan,nan\n" * 50, "no finite"),
        "one_column.txt": (b"\n".join(str(i).encode() for i in range(50)), "one column"),
        "pattern.abc": (b"1 2\n3 4\n", "unknown file type"),
        "truncated.cif": (_cif()[:150], "truncated.cif"),
        "xxe.xrdml": (b'<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM '
                      b'"file:///etc/passwd">]>\n<xrdMeasurements>&xxe;</xrdMeasurements>', "DTD"),
        "bruker.raw": (b"RAW4.00" + bytes(200), "not supported"),
        "broken.zip": (b"PK\x03\x04 definitely not a zip", "not a readable zip"),
    }


@pytest.fixture(scope="module")
def classifier(tiny_model) -> Classifier:
    """The network alone: these tests are about uploads (the page path indexes in one below)."""
    return Classifier.load("tiny", index=False)


def test_every_format_good_and_bad(classifier):
    good, bad = good_files(), bad_files()
    files = [(n, b) for n, (b, _) in good.items()] + [(n, b) for n, (b, _) in bad.items()]
    result = data.classify_uploads(classifier, files)
    assert [p.file for p in result.predictions] == [n for n, _ in files]
    for prediction in result.predictions:
        if prediction.file in good:
            assert prediction.error is None, prediction.error
            assert prediction.pattern.kind == good[prediction.file][1]
            assert len(prediction.space_groups) == 5
            assert prediction.probabilities.sum() == pytest.approx(1, abs=1e-4)
        else:
            words = bad[prediction.file][1]
            assert prediction.error.startswith(prediction.file), prediction.error
            assert words.lower() in prediction.error.lower(), prediction.error
            assert not prediction.space_groups
    truths = dict(zip((p.file for p in result.predictions), result.truths))
    assert truths["R990002_Si.dif"] == 227 and truths["NaCl.cif"] == 225
    assert truths["TiO2.xy"] is None
    assert result.label_sources["NaCl.cif"] == "the file itself"


def test_predictions_equal_classify_sources(classifier):
    """The page's path adds nothing to the classifier's: same numbers, same probabilities."""
    files = [(n, b) for n, (b, _) in good_files().items()]
    settings = dict(wavelength=0.71073, preprocessing=Preprocessing(background="snip", smoothing=5))
    page = data.classify_uploads(classifier, files, **settings).predictions
    direct = classifier.classify_sources(files, 5, **settings)
    indexing = Classifier(classifier.model, classifier.metadata, classifier.adjust_prior)
    some = files[:4]
    page += data.classify_uploads(indexing, some, **settings).predictions
    direct += indexing.classify_sources(some, 5, **settings)
    assert sum(p.indexed for p in page) == len(some)
    for a, b in zip(page, direct):
        assert a.to_json() == b.to_json()
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def test_dif_next_to_a_profile_is_its_ground_truth(classifier):
    files = [("R990001_LiFePO4_XY.txt", EXAMPLES["R990001_LiFePO4_XY.txt"]),
             ("R990001_LiFePO4.dif", EXAMPLES["R990001_LiFePO4.dif"]),
             ("R990002_Si.dif", EXAMPLES["R990002_Si.dif"]),
             ("R990003_raw.csv", _columns(",", header="angle,intensity")),
             ("R990003_TiO2_CIF.txt", EXAMPLES["R990003_TiO2.dif"])]
    result = data.classify_uploads(classifier, files)
    assert [p.file for p in result.predictions] == ["R990001_LiFePO4_XY.txt", "R990002_Si.dif",
                                                    "R990003_raw.csv"]
    assert result.truths == [62, 227, 12]
    assert sorted(result.label_files) == ["R990001_LiFePO4.dif", "R990003_TiO2_CIF.txt"]
    assert result.label_sources["R990003_raw.csv"] == "R990003_TiO2_CIF.txt"
    table = data.results_table(result)
    assert list(table["true space group"]) == [62, 227, 12]
    assert list(table.columns) == RESULT_COLUMNS  # the CSV download's schema
    assert table["correct"].tolist() == [t == p.space_groups[0][0]
                                         for t, p in zip(result.truths, result.predictions)]


def test_broken_partner_dif_is_reported_and_profile_still_classified(classifier):
    files = [("R123456.csv", _columns(",", header="angle,intensity")),
             ("R123456.dif", b"Quartz\nCELL PARAMETERS: 1 2 3 90 90 90\nSPACE GROUP: Xx9\n2-THETA\n")]
    result = data.classify_uploads(classifier, files)
    by_file = {p.file: p for p in result.predictions}
    assert by_file["R123456.csv"].error is None
    assert "cannot be used as ground truth" in by_file["R123456.dif"].error
    assert result.truths[0] is None


def test_zip_with_labels_unsafe_names_and_limits(classifier, monkeypatch):
    files = good_files()
    archive = _zip({
        "set/labels.csv": b"file,sg_number\nscan.csv,62\nsub/scan.dat,62\n",
        "set/scan.csv": files["scan.csv"][0],
        "set/sub/scan.dat": files["scan.dat"][0],
        "../escape.xy": files["TiO2.xy"][0],
        "/abs.xy": files["TiO2.xy"][0],
        "__MACOSX/._scan.csv": b"\x00\x05",
        "set/.hidden": b"x",
        "set/empty.xy": b"",
    })
    result = data.classify_uploads(classifier, [("upload.zip", archive)])
    by_file = {p.file: (p, t) for p, t in zip(result.predictions, result.truths)}
    assert set(by_file) == {"upload.zip/set/scan.csv", "upload.zip/set/sub/scan.dat",
                            "upload.zip/../escape.xy", "upload.zip//abs.xy", "upload.zip/set/empty.xy"}
    assert by_file["upload.zip/set/scan.csv"][1] == 62
    assert by_file["upload.zip/set/sub/scan.dat"][1] == 62
    assert "unsafe path" in by_file["upload.zip/../escape.xy"][0].error
    assert "unsafe path" in by_file["upload.zip//abs.xy"][0].error
    assert "empty" in by_file["upload.zip/set/empty.xy"][0].error
    assert result.label_files == ["upload.zip/set/labels.csv"]

    monkeypatch.setattr(data, "MAX_ZIP_MEMBERS", 3)
    result = data.classify_uploads(classifier, [("many.zip", archive)])
    assert len(result.predictions) == 1 and "at most 3" in result.predictions[0].error


def test_zip_member_over_the_size_cap_is_refused_without_unpacking(monkeypatch):
    monkeypatch.setattr(data, "DEFAULT_MAX_BYTES", 1000)
    archive = _zip({"big.xy": b"1 2\n" * 1000, "small.xy": b"1 2\n"})
    batch = data.expand_uploads([("bomb.zip", archive)])
    messages = dict(batch.entries)
    assert "per file" in messages["bomb.zip/big.xy"]
    assert messages["bomb.zip/small.xy"] == b"1 2\n"
    monkeypatch.setattr(data, "MAX_ZIP_TOTAL_BYTES", 2)
    batch = data.expand_uploads([("bomb.zip", archive)])
    assert any("remaining files were skipped" in m for _, m in batch.entries if isinstance(m, str))


@pytest.mark.parametrize("labels, message", [
    (b"name,group\nx.xy,1\n", "needs columns"),
    (b"file,sg_number\nx.xy,abc\n", "not a number"),
    (b"file,sg_number\nx.xy,231\n", "not in 1"),
])
def test_bad_labels_file_is_named(labels, message):
    batch = data.expand_uploads([("set.zip", _zip({"labels.csv": labels, "x.xy": b"1 2\n"}))])
    problems = [m for _, m in batch.entries if isinstance(m, str)]
    assert len(problems) == 1 and problems[0].startswith("set.zip/labels.csv") and message in problems[0]
    assert not batch.labels


def test_summary_confusion_and_json(classifier):
    files = [(n, b) for n, (b, _) in good_files().items()]
    labels = "file,sg_number\n" + "".join(f"{n},{14 + i}\n" for i, (n, _) in enumerate(files))
    result = data.classify_uploads(classifier, files + [("labels.csv", labels.encode())])
    truths, probabilities = data.labelled(result)
    assert truths.tolist() == [14 + i for i in range(len(files))]
    metrics = data.summary(result)
    direct = evaluate(truths, probabilities)
    assert metrics == direct
    systems, names = data.confusion(result)
    assert systems.shape == (7, 7) and systems.sum() == len(files) and len(names) == 7
    groups, group_labels = data.space_group_confusion(result)
    assert groups.sum() == len(files) and len(group_labels) == groups.shape[0]
    assert group_labels[0].startswith("1") or group_labels[0][0].isdigit()

    lines = data.json_lines(result.predictions).splitlines()
    assert len(lines) == len(files)
    first = json.loads(lines[0])
    assert set(first) == {"file", "space_group", "crystal_system", "error"}
    assert [g["number"] for g in first["space_group"]] == \
        [n for n, _, _ in result.predictions[0].space_groups]
    assert json.loads(data.json_list(result.predictions)) == [json.loads(line) for line in lines]

    top = data.top_table(result.predictions[0])
    assert list(top.columns) == ["rank", "number", "symbol", "crystal system", "probability"]
    assert len(top) == 5 and top["probability"].is_monotonic_decreasing


def test_few_labelled_files_give_no_confusion(classifier):
    result = data.classify_uploads(classifier, [("R990002_Si.dif", EXAMPLES["R990002_Si.dif"])])
    assert data.summary(result).n == 1
    assert data.confusion(result) is None and data.space_group_confusion(result) is None
    unlabelled = data.classify_uploads(classifier, [("TiO2.xy", EXAMPLES["TiO2.xy"])])
    assert data.summary(unlabelled) is None


def test_hundred_rruff_sized_files_are_all_classified_in_order(classifier):
    """100 uploads of 8,501 points each through the page's code path (their speed is a
    target of benchmarks/speed.py, upload_100_files)."""
    rng = np.random.default_rng(1)
    tt, y = _profile()
    files = []
    for i in range(100):
        counts = rng.poisson(y * rng.uniform(0.5, 2.0))
        text = "angle,intensity\n" + "".join(f"{a:.2f},{c}\n" for a, c in zip(tt, counts))
        files.append((f"R{100000 + i}.csv", text.encode()))
    result = data.classify_uploads(classifier, files)
    table = data.results_table(result)
    assert len(table) == 100 and not result.errors
    assert table["file"].tolist() == [name for name, _ in files]
    assert table["space group"].notna().all()


@needs_rruff
def test_real_rruff_pairs_in_a_zip(classifier):
    from core.readers import read_dif

    stems = sorted(p.name.removesuffix("_CIF.txt") for p in RRUFF_DEV.glob("R*_CIF.txt"))[:4]
    members = {}
    for stem in stems:
        members[f"rruff/{stem}.csv"] = (RRUFF_DEV / f"{stem}.csv").read_bytes()
        members[f"rruff/{stem}_CIF.txt"] = (RRUFF_DEV / f"{stem}_CIF.txt").read_bytes()
    result = data.classify_uploads(classifier, [("rruff.zip", _zip(members))])
    assert [p.file for p in result.predictions] == [f"rruff.zip/rruff/{s}.csv" for s in stems]
    assert not result.errors
    assert result.truths == [read_dif(RRUFF_DEV / f"{s}_CIF.txt").sg_number for s in stems]
    assert len(result.label_files) == len(stems)


def test_display_table_puts_a_short_status_after_the_file(classifier):
    files = [("TiO2.xy", EXAMPLES["TiO2.xy"]), ("empty.xy", b""),
             ("broken.zip", b"not a zip at all")]
    result = data.classify_uploads(classifier, files)
    table = data.results_table(result)
    assert list(table.columns) == RESULT_COLUMNS  # the CSV keeps its error column, last
    view = data.display_table(table)
    assert list(view.columns) == ["file", "status"] + RESULT_COLUMNS[1:-1]
    assert view["file"].tolist() == table["file"].tolist()
    status = dict(zip(view["file"], view["status"]))
    assert status["TiO2.xy"] == "ok"
    assert status["empty.xy"].startswith("error: ") and "empty.xy" not in status["empty.xy"]
    assert "zip" in status["broken.zip"] and status["broken.zip"].startswith("error: ")
    errors = dict(zip(table["file"], table["error"]))
    assert errors["empty.xy"].endswith(status["empty.xy"][len("error: "):])


def test_trust_note_quotes_the_side_of_the_line_a_prediction_is_on():
    rruff = {"threshold": 0.25, "share": 0.3, "accuracy_above": 0.6, "accuracy_below": 0.07}
    cod = {"threshold": 0.25, "share": 0.5, "accuracy_above": 0.9, "accuracy_below": 0.2}
    both = {"COD cod_cifs": cod, "RRUFF rruff_dev": rruff}
    assert data.trust_note(both, low_confidence=False) == (
        "How far to trust it: on RRUFF rruff_dev, this model's predictions with a top "
        "probability at or above 25% (30% of the set) had the right space group first 60% of "
        "the time.")
    flagged = data.trust_note(both, low_confidence=True)
    assert "below 25% (70% of the set)" in flagged and "first 7% of the time" in flagged
    assert "on COD cod_cifs" in data.trust_note({"COD cod_cifs": cod}, low_confidence=False)


def test_trust_note_is_silent_without_a_usable_record():
    assert data.trust_note({}, low_confidence=True) is None
    everything_confident = {"threshold": 0.25, "share": 1.0, "accuracy_above": 0.5,
                            "accuracy_below": float("nan")}
    assert data.trust_note({"RRUFF": everything_confident}, low_confidence=True) is None
    assert data.trust_note({"RRUFF": {"share": 0.5}}, low_confidence=False) is None


def test_influence_table_lists_the_strongest_peaks_in_points():
    influences = [PeakInfluence(30.0 + i, 3.0 - 0.01 * i, 1.0, 29.9 + i, 30.1 + i, 0.2, 0.3 - 0.02 * i)
                  for i in range(12)]
    table = data.influence_table(influences)
    assert len(table) == 10
    assert list(table.columns) == ["2θ (°)", "d (Å)", "height", "probability without it",
                                   "support (points)"]
    assert table["support (points)"].iloc[0] == 30.0 and table["2θ (°)"].iloc[9] == 39.0


def test_indexing_tables_and_verdict():
    from pymatgen.core import Lattice, Structure

    from core.classify import Prediction
    from core.indexing import index_pattern
    from core.simulation import simulate

    rutile = simulate(Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959),
                                                ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]))
    lines = np.append(rutile.two_theta[rutile.intensity >= 1], 21.37)  # one foreign line
    solutions = index_pattern(lines)
    table = data.cells_table(solutions)
    assert list(table.columns) == ["crystal family", "lattice", "a (Å)", "b (Å)", "c (Å)", "α (°)",
                                   "β (°)", "γ (°)", "V (Å³)", "M20", "unindexed lines",
                                   "zero shift (°)"]
    assert (table["crystal family"][0], table["lattice"][0]) == ("tetragonal", "tP (P)")
    assert table["c (Å)"][0] == pytest.approx(2.959, abs=0.002)
    rows = data.indexed_lines_table(solutions[0])
    assert len(rows) == len(solutions[0].lines)
    assert list(rows["hkl"][:2]) == ["not indexed", "1 1 0"]  # 21.37° comes first
    assert (rows["hkl"] == "not indexed").sum() == 1
    tetragonal = Prediction("rutile.xy", crystal_systems=[("tetragonal", 0.8), ("cubic", 0.2)])
    cubic = Prediction("rutile.xy", crystal_systems=[("cubic", 0.6), ("tetragonal", 0.4)])
    assert data.indexing_verdict(solutions, tetragonal).startswith(
        f"Best cell: tetragonal, lattice tP, M20 = {solutions[0].m20:.1f} with 1 of")
    assert data.indexing_verdict(solutions, tetragonal).endswith("tetragonal (80%), agrees.")
    assert data.indexing_verdict(solutions, cubic).endswith("cubic (60%), does not agree.")
    assert data.indexing_verdict([], cubic).startswith("No cell, cubic to triclinic,")
    probabilities = np.full(230, 0.001)
    probabilities[[135, 126, 224]] = [0.3, 0.2, 0.4]  # P4_2/mnm, P4/mbm, Fm-3m (not tP)
    ranked = data.groups_of_lattice(Prediction("r.xy", probabilities=probabilities), solutions[0], 3)
    assert list(ranked["number"]) == [136, 127, 75]
    assert list(ranked["symbol"][:2]) == ["P4_2/mnm", "P4/mbm"]
    share = 0.3 / (0.5 + 0.001 * 47)  # 49 groups have lattice tP
    assert ranked["share of the lattice"][0] == pytest.approx(share, abs=1e-4)
    from core.absences import group_evidence

    evidence = group_evidence(solutions[0])
    ranked = data.groups_of_lattice(Prediction("r.xy", probabilities=probabilities), solutions[0], 3,
                                    evidence)
    assert list(ranked.columns[-2:]) == ["lines it forbids", "reflections allowed"]
    assert ranked["lines it forbids"][0] == 0  # P4_2/mnm explains every rutile line
    assert ranked["reflections allowed"][0] == evidence[136].allowed
    # P4/mbm forbids rutile's 101 and 111 lines (b glide: 0kl with k odd is absent).
    assert ranked["lines it forbids"][1] == evidence[127].forbidden > 0
    verdict = data.absences_verdict(evidence, solutions[0])
    assert verdict.startswith("Systematic absences: ") and "of the 49 groups of lattice tP" in verdict
    assert "P4_2/mnm" in verdict.split("belong to")[1]
    assert data.absences_verdict({127: evidence[127]}, solutions[0]).startswith(
        "Every space group of lattice tP forbids")
