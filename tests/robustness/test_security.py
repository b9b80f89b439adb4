"""Security: uploads are data, never code or paths.

* Nothing uploaded is unpickled or executed: hostile pickles and object arrays under any
  name, and a ``.keras`` model with a ``Lambda`` layer, are refused and their payload never
  runs (each payload would create a marker file; the tests first prove that it does when
  loaded unsafely).
* XML readers refuse DTDs and entities, and never open the files they name.
* Zip members and upload names cannot write (or read) outside their place.
* The Materials Project key never reaches logs, output, saved files or the page.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import secrets
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import dataset as store
from core import registry
from core.classify import Classifier
from core.grid import DEFAULT_GRID
from core.readers import PatternReadError, read_pattern
from tests.conftest import PROJECT

EXAMPLES = PROJECT / "examples"




@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load("default")


def _no_traces(uid: str, deep: Path, *shallow: Path) -> None:
    """No file whose name holds ``uid`` anywhere under ``deep`` or directly in ``shallow``."""
    found = list(deep.rglob(f"*{uid}*"))
    for folder in shallow:
        found += list(Path(folder).glob(f"*{uid}*"))
    assert not found, found


# ----------------------------------------------------------------------------- pickles


class _OpensMarker:
    """Unpickling this object calls ``open(marker, "w")``, which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_payloads(marker: Path) -> dict[str, bytes]:
    buffer = io.BytesIO()
    np.save(buffer, np.array([_OpensMarker(marker), 1.0], dtype=object), allow_pickle=True)
    payloads = {f"pickle-{p}": pickle.dumps(_OpensMarker(marker), protocol=p)
                for p in (0, 2, pickle.HIGHEST_PROTOCOL)}
    payloads["npy-object"] = buffer.getvalue()
    return payloads


def test_the_hostile_payloads_really_run_when_unpickled(tmp_path):
    """The premise of the tests below: loading these payloads unsafely creates the marker."""
    marker = tmp_path / "ran"
    payloads = _hostile_payloads(marker)
    pickle.loads(payloads["pickle-0"]).close()
    assert marker.exists()
    marker.unlink()
    np.load(io.BytesIO(payloads["npy-object"]), allow_pickle=True)
    assert marker.exists()


NAMES = ["x.pkl", "x.pickle", "x.npy", "x.npz", "x.xy", "x.csv", "x.txt", "x.dat", "x.xye",
         "x.xrdml", "x.dif", "x.cif", "x"]


@pytest.mark.parametrize("name", NAMES)
def test_pickles_and_object_arrays_are_never_loaded(tmp_path, name):
    marker = tmp_path / "ran"
    for kind, payload in _hostile_payloads(marker).items():
        with pytest.raises(PatternReadError) as error:
            read_pattern(payload, name=name)
        assert str(error.value).startswith(name), (kind, str(error.value))
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(PatternReadError):
            read_pattern(path)
        assert not marker.exists(), f"{kind} as {name} was executed"


def test_hostile_uploads_through_the_page_code(tmp_path, classifier):
    from ui.classify_data import classify_uploads
    from ui.compare_data import UploadError, labelled_upload

    marker = tmp_path / "ran"
    payloads = _hostile_payloads(marker)
    loose = [(f"{kind}.{ext}", data) for kind, data in payloads.items()
             for ext in ("pkl", "npy", "xy", "csv")]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in loose:
            zf.writestr(name, data)
        zf.writestr("labels.csv", "file,sg_number\n" + "".join(f"{n},225\n" for n, _ in loose))
    uploads = loose + [("hostile.zip", archive.getvalue())]

    result = classify_uploads(classifier, uploads)
    assert len(result.predictions) == 2 * len(loose)
    assert all(p.error for p in result.predictions)
    with pytest.raises(UploadError):
        labelled_upload(uploads)
    assert not marker.exists()


def _lambda_model(marker: Path):
    """A model whose Lambda layer creates ``marker`` whenever it is traced or run."""
    import keras

    inputs = keras.Input((DEFAULT_GRID.size,))
    hidden = keras.layers.Lambda(lambda t, m: (open(m, "w").close(), t)[1],
                                 arguments={"m": str(marker)})(inputs)
    outputs = keras.layers.Dense(230, activation="softmax")(hidden)
    return keras.Model(inputs, outputs)


def test_a_keras_model_with_a_lambda_layer_is_refused(own_store, tmp_path):
    import keras

    marker = tmp_path / "lambda_ran"
    folder = registry.save_model(_lambda_model(marker),
                                 registry.ModelMetadata(name="lambda_model", kind="baseline_ann"))
    marker.unlink()  # building the model ran the layer once

    with pytest.raises(registry.ModelError, match="lambda_model: cannot be loaded safely"):
        registry.load_model("lambda_model")
    with pytest.raises(registry.ModelError):
        Classifier.load("lambda_model")
    at = AppTest.from_file(str(PROJECT / "pages" / "classify.py"), default_timeout=300)
    at.session_state["classify_model"] = "lambda_model"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("lambda_model" in e.value and "cannot be loaded" in e.value for e in at.error)
    assert not marker.exists(), "the Lambda layer's code ran"

    # The premise: the same file loaded without safe mode does run the code.
    keras.saving.load_model(folder / registry.MODEL_FILE, compile=False, safe_mode=False)
    assert marker.exists()


# ----------------------------------------------------------------------------- XML


XRDML_BODY = """<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5">
  <sample><id>{sample}</id></sample>
  <xrdMeasurement><scan><dataPoints>
    <positions axis="2Theta" unit="deg"><startPosition>10</startPosition><endPosition>60</endPosition></positions>
    <intensities unit="counts">{values}</intensities>
  </dataPoints></scan></xrdMeasurement>
</xrdMeasurements>
"""
NUMBERS = " ".join(str(10 + (i % 7) * 13) for i in range(40))


def _xml_attacks(target: Path, secret: Path) -> dict[str, bytes]:
    external = (f'<?xml version="1.0"?>\n<!DOCTYPE xrdMeasurements [\n'
                f'  <!ENTITY e SYSTEM "file://{target}">\n  <!ENTITY s SYSTEM "file://{secret}">\n]>\n'
                + XRDML_BODY.format(sample="&s;", values=f"{NUMBERS} &e;"))
    parameter = (f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY % p SYSTEM "file://{target}"> %p;]>\n'
                 + XRDML_BODY.format(sample="x", values=NUMBERS))
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">\n' for i in range(9))
    billion = (f'<?xml version="1.0"?>\n<!DOCTYPE x [\n{laughs}]>\n'
               + XRDML_BODY.format(sample="&l8;", values=NUMBERS))
    lower = external.replace("<!DOCTYPE", "<!doctype").replace("<!ENTITY", "<!  ENTITY")
    return {
        "external entity": external.encode(),
        "parameter entity": parameter.encode(),
        "billion laughs": billion.encode(),
        "lower case": lower.encode(),
        "utf-16": external.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
    }


def _read_in_thread(payload: bytes, name: str, fifo: Path):
    """read_pattern in a thread: if it opened the FIFO it would block, which is detected
    (and then released by opening the FIFO's other end)."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = read_pattern(payload, name=name)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(10)
        pytest.fail(f"{name}: the reader opened the file named by the XML entity")
    return outcome


@pytest.mark.parametrize("name", ["scan.xrdml", "scan"])
def test_xml_with_a_dtd_or_entities_is_refused_without_reading_files(tmp_path, name):
    fifo = tmp_path / "blocks_when_opened"
    os.mkfifo(fifo)
    token = f"SECRET-{uuid.uuid4().hex}"
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{token}\n")
    for attack, payload in _xml_attacks(fifo, secret).items():
        start = time.perf_counter()
        outcome = _read_in_thread(payload, name, fifo)
        assert time.perf_counter() - start < 20, attack
        error = outcome.get("error")
        assert isinstance(error, PatternReadError), (attack, outcome)
        assert str(error).startswith(name) and "DTD" in str(error), (attack, str(error))
        assert token not in str(error)


def test_xinclude_is_not_followed(tmp_path):
    token = f"SECRET-{uuid.uuid4().hex}"
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{token} {NUMBERS}\n")
    include = (f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{secret}" '
               'parse="text"/>')
    payload = XRDML_BODY.format(sample="x", values=include).encode()
    with pytest.raises(PatternReadError) as error:
        read_pattern(payload, name="include.xrdml")
    assert token not in str(error.value)


# ----------------------------------------------------------------------------- zips and names


def _nacl_cif() -> bytes:
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif").encode()


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """Work from a deep folder with a private temporary folder, so that any '..' lands in
    tmp_path where it can be seen."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


def _traversal_zip(uid: str) -> tuple[bytes, list[str]]:
    cif, xy = _nacl_cif(), (EXAMPLES / "Si.xy").read_bytes()
    members = {
        f"../evil_{uid}.cif": cif, f"/abs_{uid}.cif": cif, f"sub/../../evil2_{uid}.xy": xy,
        f"..\\evil3_{uid}.cif": cif, f"C:/evil4_{uid}.xy": xy, f"../../../../evil5_{uid}.xy": xy,
        "good.cif": cif, "good.xy": xy,
        "labels.csv": f"file,sg_number\ngood.xy,227\n../evil_{uid}.xy,225\n/abs_{uid}.xy,225\n".encode(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    data = buffer.getvalue()
    assert [i.filename for i in zipfile.ZipFile(io.BytesIO(data)).infolist()] == list(members)
    return data, [n for n in members if uid in n]


def test_zip_members_cannot_escape(sandbox, classifier):
    from core.sources import cifs_in_zip, read_cif_files
    from ui.classify_data import classify_uploads, expand_uploads
    from ui.compare_data import collect_uploads, labelled_upload

    uid = uuid.uuid4().hex
    data, unsafe = _traversal_zip(uid)

    files, skipped = cifs_in_zip(data, "up.zip")
    assert [name for name, _ in files] == ["up.zip/good.cif"]
    reported = " ".join(name for name, _ in skipped)
    assert all(member in reported for member in unsafe if member.endswith(".cif"))
    batch = read_cif_files([("up.zip", data)])
    assert batch.names == ["up.zip/good.cif"]

    expanded = expand_uploads([("up.zip", data)])
    readable = [name for name, content in expanded.entries if isinstance(content, bytes)]
    assert sorted(readable) == ["up.zip/good.cif", "up.zip/good.xy"]
    refused = {name: content for name, content in expanded.entries if isinstance(content, str)}
    assert all(any(member in name for name in refused) for member in unsafe)
    assert all("unsafe" in message for message in refused.values())
    result = classify_uploads(classifier, [("up.zip", data)])
    assert sum(p.error is None for p in result.predictions) == 2

    kept, dropped = collect_uploads([("up.zip", data)])
    assert sorted(name for name, _ in kept) == ["good.cif", "good.xy", "labels.csv"]
    assert {name for name, _ in dropped} >= set(unsafe)
    labelled = labelled_upload([("up.zip", data)])
    assert len(labelled) == 1 and list(labelled.labels) == [227]

    _no_traces(uid, sandbox, sandbox.parent, Path("/"), Path("/tmp"), PROJECT, PROJECT.parent)
    assert list((sandbox / "tmp").iterdir()) == []  # the temporary folder was cleaned up


def test_upload_names_are_never_used_as_paths(sandbox, classifier):
    from ui.classify_data import classify_uploads
    from ui.compare_data import collect_uploads

    uid = uuid.uuid4().hex
    si = (EXAMPLES / "Si.xy").read_bytes()
    decoy = sandbox / "decoy.xy"  # an existing, different pattern named by an upload
    decoy.write_bytes((EXAMPLES / "TiO2.xy").read_bytes())
    names = [f"../../x_{uid}.xy", f"a/b_{uid}.xy", f"/tmp/abs_{uid}.xy", f"..\\..\\w_{uid}.xy",
             f"C:\\Windows\\c_{uid}.xy", str(decoy), f"{sandbox}/../n_{uid}.xy"]
    before = sorted(p for p in sandbox.rglob("*"))
    expected = read_pattern(si, name="Si.xy")

    predictions = classifier.classify_sources([(name, si) for name in names])
    page = classify_uploads(classifier, [(name, si) for name in names]).predictions
    for prediction in predictions + page:
        assert prediction.error is None, prediction.error
        np.testing.assert_array_equal(prediction.pattern.two_theta, expected.two_theta)
        np.testing.assert_array_equal(prediction.pattern.intensity, expected.intensity)
    assert [p.file for p in predictions] == names

    kept, dropped = collect_uploads([(name, si) for name in names])
    assert all("/" not in name and "\\" not in name and ".." not in name for name, _ in kept)

    assert sorted(p for p in sandbox.rglob("*")) == before
    _no_traces(uid, sandbox, sandbox.parent, Path("/"), Path("/tmp"), PROJECT, PROJECT.parent)
    assert decoy.read_bytes() == (EXAMPLES / "TiO2.xy").read_bytes()


# ----------------------------------------------------------------------------- the MP key


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _run_until_idle(at: AppTest, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while "ds_job" in at.session_state and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert "ds_job" not in at.session_state, "the import did not finish in time"


def test_the_materials_project_key_never_leaks(own_store, bundled_dataset, monkeypatch,
                                               caplog, capfd):
    from tests.core.test_sources import FakeMaterialsProject

    good, wrong = secrets.token_hex(16), secrets.token_hex(16)
    keys = (good, wrong)
    monkeypatch.delenv("MP_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    store.create("tiny_ds", bundled_dataset.table.head(5), command="robustness test")
    with FakeMaterialsProject(key=good) as server:
        monkeypatch.setenv("MP_API_ENDPOINT", server.url)
        at = AppTest.from_file(str(PROJECT / "pages" / "dataset.py"), default_timeout=300)
        at.session_state["ds_name"] = "tiny_ds"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at.number_input(key="ds_processes").set_value(1)
        at.text_input(key="mp_elements").set_value("Na, Cl")
        at.text_input(key="mp_name").set_value("mp_key_check")

        at.text_input(key="mp_key").set_value(wrong)
        at.button(key="mp_go").click().run()
        _run_until_idle(at)
        assert any("rejected the API key" in e.value for e in at.error)

        at.text_input(key="mp_key").set_value(good)
        at.button(key="mp_go").click().run()
        _run_until_idle(at)
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        sent = [h.get("x-api-key") for p, _, h in server.requests if p.startswith("/materials")]
        assert good in sent and wrong in sent  # the keys did reach the (fake) service
    assert len(store.load("mp_key_check")) == 2

    checked = 0
    for node in _walk(at.main):
        proto = getattr(node, "proto", None)
        if proto is None or getattr(node, "key", None) == "mp_key":
            continue
        checked += 1
        blob = proto.SerializeToString()
        assert not any(k.encode() in blob for k in keys), node
    assert checked > 50
    for name, value in at.session_state.to_dict().items():
        if name != "mp_key":
            assert not any(k in repr(value) for k in keys), name

    for folder in (own_store, PROJECT / "datasets", PROJECT / "models"):
        for path in folder.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert not any(k.encode() in content for k in keys), path
    logged = caplog.text + " ".join(repr(r.args) + r.getMessage() for r in caplog.records)
    assert not any(k in logged for k in keys)
    out, err = capfd.readouterr()
    assert not any(k in out + err for k in keys)
