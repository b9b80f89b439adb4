"""The classify page: examples in one click, uploads of every format (good and bad), settings,
ground truth and summaries; its predictions must equal the CLI's for the same files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT
from core.evaluation import evaluate
from core.examples import read_examples
from core.symmetry import by_number
from ui import classify_data as data

PAGE = str(PROJECT / "pages" / "classify.py")
EXAMPLES = dict(read_examples())


def _profile_rows(every: int) -> list[tuple[float, float]]:
    text = EXAMPLES["R990003_TiO2_XY.txt"].decode()
    rows = [tuple(map(float, line.split(","))) for line in text.splitlines()
            if not line.startswith("##")]
    return rows[::every]


def _cif() -> bytes:
    from pymatgen.core import Lattice, Structure

    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    return structure.to(fmt="cif").encode()


def _xrdml() -> bytes:
    rows = _profile_rows(4)
    values = " ".join(f"{y:g}" for _, y in rows)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<xrdMeasurements xmlns='
            f'"http://www.xrdml.com/XRDMeasurement/1.5"><xrdMeasurement><usedWavelength>'
            f'<kAlpha1 unit="Angstrom">1.5405980</kAlpha1></usedWavelength><scan><dataPoints>'
            f'<positions axis="2Theta" unit="deg"><startPosition>{rows[0][0]}</startPosition>'
            f'<endPosition>{rows[-1][0]}</endPosition></positions>'
            f'<intensities unit="counts">{values}</intensities></dataPoints></scan>'
            f'</xrdMeasurement></xrdMeasurements>\n').encode()


GOOD = {
    "R990001_LiFePO4_XY.txt": EXAMPLES["R990001_LiFePO4_XY.txt"],
    "R990002_Si.dif": EXAMPLES["R990002_Si.dif"],
    "Si.xy": EXAMPLES["Si.xy"],
    "tio2.xye": "".join(f"{a:.2f} {y:g} {np.sqrt(y):.2f}\n" for a, y in _profile_rows(2)).encode(),
    "tio2.txt": ("# 2theta counts\n" + "".join(f"{a:.2f}\t{y:g}\n" for a, y in _profile_rows(3))).encode(),
    "tio2.dat": "".join(f"{a:.2f}  {y:g}\n" for a, y in _profile_rows(5)).encode(),
    "tio2.csv": ("angle,intensity\n" + "".join(f"{a:.2f},{y:g}\n" for a, y in _profile_rows(1))).encode(),
    "tio2.xrdml": _xrdml(),
    "NaCl.cif": _cif(),
}
BAD = {
    "empty.xy": (b"", "file is empty"),
    "garbage.dat": (np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes(), "binary"),
    "nan.csv": (b"angle,intensity\n" + b"nan,nan\n" * 40, "no finite"),
    "one_column.txt": ("\n".join(str(i) for i in range(40)).encode(), "one column"),
    "notes.docx": (b"1 2\n3 4\n", "unknown file type"),
    "truncated.cif": (_cif()[:150], "truncated.cif"),
    "xxe.xrdml": (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b SYSTEM "file:///etc/passwd">]>'
                  b"<xrdMeasurements>&b;</xrdMeasurements>", "DTD"),
    "scan.raw": (b"RAW4.00" + bytes(100), "not supported"),
}


def _app(index: bool | None = False) -> AppTest:
    """The page with the tiny model; the network alone unless ``index`` (indexing takes
    seconds a file; None keeps the page's default, which indexes)."""
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["classify_model"] = "tiny"
    if index is not None:
        at.session_state["classify_rerank"] = index
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, files: dict[str, bytes]) -> AppTest:
    at.file_uploader(key="classify_upload").set_value(
        [(name, content, "application/octet-stream") for name, content in files.items()])
    at.run()
    assert not at.exception, at.exception
    return at


def _result(at: AppTest) -> data.UploadResult:
    return at.session_state["classify_result"][1]


def _cli(folder: Path, names: list[str], *options: str, index: bool = False) -> dict[str, dict]:
    run = subprocess.run(
        [sys.executable, "-m", "core", "classify", "--json", "--model", "tiny", *options,
         *(() if index else ("--no-index",)),
         *(str(folder / n) for n in names)],
        cwd=PROJECT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr
    objects = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(objects) == len(names), run.stdout + run.stderr
    return {Path(o["file"]).name: o for o in objects}


def _assert_same(page: data.UploadResult, cli: dict[str, dict]) -> None:
    assert {p.file for p in page.predictions} == set(cli)
    for prediction in page.predictions:
        expected = cli[prediction.file]
        if expected["error"]:
            assert prediction.error, prediction.file
            continue
        assert prediction.error is None, prediction.error
        assert [n for n, _, _ in prediction.space_groups] == \
            [g["number"] for g in expected["space_group"]], prediction.file
        np.testing.assert_allclose([p for _, _, p in prediction.space_groups],
                                   [g["probability"] for g in expected["space_group"]], atol=1e-5)
        np.testing.assert_allclose([p for _, p in prediction.crystal_systems],
                                   [s["probability"] for s in expected["crystal_system"]], atol=1e-5)


def test_examples_give_a_result_in_one_click(tiny_model):
    at = _app()
    assert any("example" in info.value for info in at.info)
    assert at.selectbox(key="classify_model").value == "tiny"

    at.button(key="example_rruff").click().run()
    assert not at.exception, at.exception
    assert all(e.value.startswith("Wrong") for e in at.error), [e.value for e in at.error]
    result = _result(at)
    assert [p.file for p in result.predictions] == ["R990001_LiFePO4_XY.txt", "R990002_Si_XY.txt",
                                                    "R990003_TiO2_XY.txt"]
    assert result.truths == [62, 227, 12]
    assert at.metric[0].value == "3"
    verdicts = [m.value for m in (*at.success, *at.warning, *at.error)]
    assert any("R990001_LiFePO4.dif" in v and "62 Pnma" in v for v in verdicts), verdicts
    # Details of one file only: groups, systems, pattern, peak influence.
    assert len(at.get("plotly_chart")) == 4
    assert at.dataframe[0].value["file"].tolist() == [p.file for p in result.predictions]

    at.button(key="example_dif").click().run()
    result = _result(at)
    assert all(p.pattern.kind == "dif" for p in result.predictions)
    assert result.truths == [62, 227, 12]
    assert set(result.label_sources.values()) == {"the file itself"}

    at.button(key="example_xy").click().run()
    assert not at.exception and not at.metric
    assert all(t is None for t in _result(at).truths)

    at.button(key="example_all").click().run()
    assert len(_result(at).predictions) == 6 and at.metric[0].value == "3"
    # Another file's details.
    at.selectbox(key="classify_detail").set_value(3).run()
    assert not at.exception
    assert _result(at).predictions[3].file == "Si.xy"
    assert any("Read as **xy**, 8501 points; wavelength 1.54184 Å (Cu Kα assumed)" in c.value
               for c in at.caption), [c.value for c in at.caption]

    at.button(key="example_clear").click().run()
    assert not at.exception and any("example" in info.value for info in at.info)


def test_upload_every_format_good_and_bad_equals_the_cli(tiny_model, tmp_path):
    files = {**GOOD, **{name: content for name, (content, _) in BAD.items()}}
    at = _upload(_app(), files)
    shown = [e.value for e in at.error]
    for name, (_, words) in BAD.items():
        assert any(e.startswith(name) and words.lower() in e.lower() for e in shown), (name, shown)
    table = at.dataframe[0].value
    assert table["file"].tolist() == list(files)
    assert list(table.columns[:2]) == ["file", "status"] and "error" not in table
    good_rows = table[table["file"].isin(GOOD)]
    assert (good_rows["status"] == "ok").all() and good_rows["space group"].notna().all()
    bad_rows = table[table["file"].isin(BAD)]
    for name, status in zip(bad_rows["file"], bad_rows["status"]):
        # The status repeats the file's error message (shown above), less the file name.
        message = next(e for e in shown if e.startswith(name))
        assert status.startswith("error: ") and message.endswith(status[len("error: "):]), status
        assert len(status) > len("error: ") + 3, status
    assert any("Low confidence" in w.value for w in at.warning)

    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    result = _result(at)
    _assert_same(result, _cli(tmp_path, list(files)))
    lines = data.json_lines(result.predictions).splitlines()
    assert [json.loads(line)["file"] for line in lines] == list(files)

    # Every good file's details render, sticks and profiles alike.
    good = [i for i, p in enumerate(result.predictions) if not p.error]
    assert at.selectbox(key="classify_detail").options == [p.file for p in result.predictions
                                                           if not p.error]
    for index in good:
        at.selectbox(key="classify_detail").set_value(index).run()
        assert not at.exception, index
        assert len(at.get("plotly_chart")) == 4  # groups, systems, pattern, peak influence


def test_settings_reach_the_classifier_as_on_the_cli(tiny_model, tmp_path):
    files = {n: GOOD[n] for n in ("R990001_LiFePO4_XY.txt", "tio2.csv", "Si.xy", "R990002_Si.dif")}
    at = _upload(_app(), files)
    default = [p.probabilities.copy() for p in _result(at).predictions]
    at.selectbox(key="classify_wavelength").set_value("MoKa")
    at.selectbox(key="classify_background").set_value("snip")
    at.number_input(key="classify_smoothing").set_value(7)
    at.run()
    assert not at.exception
    result = _result(at)
    # Mo Kα moves the profiles to low angles: Si.xy then barely covers the grid, so at least
    # one prediction changes.
    assert any(not np.allclose(a, p.probabilities) for a, p in
               zip(default, result.predictions) if p.probabilities is not None)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    _assert_same(result, _cli(tmp_path, list(files), "--wavelength", "0.71073",
                              "--background", "snip", "--smoothing", "7"))

    at.selectbox(key="classify_wavelength").set_value("file")
    at.selectbox(key="classify_background").set_value("none")
    at.number_input(key="classify_smoothing").set_value(0)
    at.slider(key="classify_range_tiny").set_value((10.0, 60.0)).run()
    assert not at.exception
    assert any("10–60°" in c.value for c in at.caption)


def test_raw_output_toggle_matches_the_cli(tiny_model, tmp_path):
    files = {n: GOOD[n] for n in ("tio2.csv", "Si.xy")}
    at = _upload(_app(), files)
    weighted = [p.probabilities.copy() for p in _result(at).predictions]
    assert at.toggle(key="classify_prior").value is True
    at.toggle(key="classify_prior").set_value(False).run()
    assert not at.exception
    raw = _result(at)
    assert all(not np.allclose(a, p.probabilities) for a, p in zip(weighted, raw.predictions))
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    _assert_same(raw, _cli(tmp_path, list(files), "--raw-output"))


def test_the_detail_shows_which_peaks_decided_it(tiny_model):
    from core.classify import Classifier
    from core.explain import peak_influence

    at = _app()
    at.button(key="example_rruff").click().run()
    assert not at.exception, at.exception
    prediction = _result(at).predictions[0]
    groups = [n for n, _, _ in prediction.space_groups]
    chooser = at.selectbox(key="classify_explain_group")
    assert chooser.options == [f"{n} {by_number(n).symbol}" for n in groups]
    classifier = Classifier.load("tiny")
    for group in (groups[0], groups[1]):
        chooser.set_value(group).run()
        assert not at.exception, at.exception
        direct = peak_influence(classifier, prediction.preprocessed.profile, group)
        table = at.dataframe[-1].value  # the last table of the page
        assert len(table) == min(10, len(direct))
        np.testing.assert_allclose(table["2θ (°)"], [round(i.two_theta, 2) for i in direct[:10]])
        np.testing.assert_allclose(table["support (points)"],
                                   [round(100 * i.change, 2) for i in direct[:10]], atol=0.011)
        assert any(f"Green peaks support {group} {by_number(group).symbol}" in c.value
                   for c in at.caption)


def test_the_detail_says_how_far_to_trust_a_prediction(tiny_model, tmp_path, monkeypatch):
    from ui import cards

    record = {"threshold": 0.25, "share": 0.3, "accuracy_above": 0.6, "accuracy_below": 0.07}
    network = {**record, "share": 0.4, "accuracy_above": 0.45, "accuracy_below": 0.09}
    raw = {**record, "share": 0.2, "accuracy_above": 0.5, "accuracy_below": 0.11}
    results = tmp_path / "accuracy.json"
    rruff = "RRUFF rruff_dev (222 real patterns)"
    results.write_text(json.dumps({"results": [
        {"model": "tiny", "set": rruff, "confidence": record},
        {"model": "tiny (network only)", "set": rruff, "confidence": network},
        {"model": "tiny (raw output)", "set": rruff, "confidence": raw}]}))
    monkeypatch.setattr(cards, "ACCURACY_RESULTS", results)
    at = _upload(_app(index=None), {"Si.xy": GOOD["Si.xy"]})  # indexed, as by default
    switches = iter([lambda: at.toggle(key="classify_rerank").set_value(False).run(),
                     lambda: at.toggle(key="classify_prior").set_value(False).run()])
    for expected in (record, network, raw):  # each setting quotes its own record
        flagged = _result(at).predictions[0].low_confidence
        side, kept, right = (("below", 1 - expected["share"], expected["accuracy_below"]) if flagged
                             else ("at or above", expected["share"], expected["accuracy_above"]))
        notes = [c.value for c in at.caption if c.value.startswith("How far to trust it")]
        assert notes == [f"How far to trust it: on RRUFF rruff_dev (222 real patterns), this model's "
                         f"predictions with a top probability {side} 25% ({kept:.0%} of the set) "
                         f"had the right space group first {right:.0%} of the time."], notes
        next(switches, lambda: None)()
        assert not at.exception


def test_custom_wavelength(tiny_model):
    at = _upload(_app(), {"tio2.csv": GOOD["tio2.csv"]})
    at.selectbox(key="classify_wavelength").set_value("custom").run()
    at.number_input(key="classify_custom_wavelength").set_value(1.7).run()
    assert not at.exception
    assert any("wavelength 1.7 Å (set above)" in c.value for c in at.caption)


def test_zip_with_labels_shows_accuracy_and_confusion(tiny_model):
    names = ["tio2.xye", "tio2.txt", "tio2.dat", "tio2.csv", "tio2.xrdml", "Si.xy"]
    labels = "file,sg_number\n" + "".join(f"{n},{12 if n != 'Si.xy' else 227}\n" for n in names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("labels.csv", labels)
        for name in names:
            archive.writestr(f"patterns/{name}" if name == "Si.xy" else name, GOOD[name])
        archive.writestr("../outside.xy", GOOD["Si.xy"])
    labels = labels.replace("Si.xy", "patterns/Si.xy")
    at = _upload(_app(), {"set.zip": buffer.getvalue()})
    result = _result(at)
    assert any("set.zip/../outside.xy" in e.value and "unsafe" in e.value for e in at.error)
    assert sum(t is not None for t in result.truths) == 6
    truths, probabilities = data.labelled(result)
    direct = evaluate(truths, probabilities)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Files with ground truth"] == "6"
    assert metrics["Space group top-1"] == f"{direct.top1:.0%}"
    assert metrics["Space group top-5"] == f"{direct.top5:.0%}"
    assert metrics["Crystal system"] == f"{direct.system_accuracy:.0%}"
    assert [t.label for t in at.tabs] == ["Crystal-system confusion", "Space-group confusion"]
    assert len(at.get("plotly_chart")) == 6
    assert any("labels.csv" in c.value for c in at.caption)


def test_a_hundred_uploads_show_one_table_and_one_file_in_detail(tiny_model):
    rng = np.random.default_rng(2)
    rows = _profile_rows(1)
    files = {}
    for i in range(100):
        counts = rng.poisson([y * rng.uniform(0.5, 2.0) for _, y in rows])
        files[f"R{200000 + i}.csv"] = ("angle,intensity\n" + "".join(
            f"{a:.2f},{c}\n" for (a, _), c in zip(rows, counts))).encode()
    at = _upload(_app(), files)
    assert len(at.dataframe[0].value) == 100 and not at.error
    assert len(at.get("plotly_chart")) == 4, "figures are drawn for the selected file only"
    classified = _result(at)
    at.selectbox(key="classify_detail").set_value(50).run()
    assert not at.exception
    assert _result(at) is classified, "changing the shown file must not classify again"


def test_the_detail_indexes_the_pattern_on_request(tiny_model):
    from core.indexing import index_pattern
    from core.peaks import pattern_peaks

    at = _upload(_app(), {"R990002_Si.dif": GOOD["R990002_Si.dif"]})
    assert not [t for t in at.dataframe if "M20" in t.value.columns]  # only on request
    at.button(key="classify_index").click().run()
    assert not at.exception, at.exception
    prediction = _result(at).predictions[0]
    expected = index_pattern(pattern_peaks(prediction.pattern), prediction.pattern.wavelength)
    table = next(t.value for t in at.dataframe if "M20" in t.value.columns)
    assert list(table["crystal family"]) == [s.system for s in expected]
    assert table["crystal family"][0] == "cubic" and table["lattice"][0] == "cF (F)"
    assert table["a (Å)"][0] == pytest.approx(5.431, abs=0.005)  # silicon
    assert any(m.value.startswith("Best cell: cubic, lattice cF") for m in at.markdown)
    lines = next(t.value for t in at.dataframe if "hkl" in t.value.columns)
    assert lines["hkl"][0] == "1 1 1"
    # silicon's absences: Fd-3m among the groups of lattice cF with the most absences
    absences = next(m.value for m in at.markdown if m.value.startswith("Systematic absences:"))
    assert "Fd-3m" in absences.split("belong to")[1]
    groups = next(t.value for t in at.dataframe if "lines it forbids" in t.value.columns)
    cubic_f = {196, 202, 203, 209, 210, 216, 219, 225, 226, 227, 228}
    assert len(groups) == 8 and set(groups["number"]) <= cubic_f


def test_rerank_toggle_matches_the_cli_with_and_without_index(tiny_model, tmp_path):
    files = {n: GOOD[n] for n in ("tio2.csv", "R990001_LiFePO4_XY.txt", "NaCl.cif")}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    at = _upload(_app(index=None), files)
    assert at.toggle(key="classify_rerank").value is True  # indexed by default
    reranked = _result(at)
    assert all(p.indexed for p in reranked.predictions)
    assert reranked.predictions[2].cell.bravais_lattice == "cF"  # NaCl
    cli = _cli(tmp_path, list(files), index=True)
    _assert_same(reranked, cli)
    assert [cli[p.file]["cell"] for p in reranked.predictions] == [p.to_json()["cell"] for p in reranked.predictions]
    assert any(c.value.startswith("Re-ranked with the indexed cell") for c in at.caption)
    at.toggle(key="classify_rerank").set_value(False).run()
    assert not at.exception, at.exception
    network = _result(at)
    assert not any(p.indexed for p in network.predictions)
    _assert_same(network, _cli(tmp_path, list(files)))
