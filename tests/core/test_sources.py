"""Dataset sources: the Materials Project through the real mp-api client and the COD through
``requests``, both against real local HTTP servers that answer like the services; CIF
uploads, zip archives and folders; storing, background jobs and export.

:class:`FakeMaterialsProject` and :class:`FakeCOD` are also used by the dataset page tests.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from core import dataset as store
from core.sources import (
    BackgroundJob,
    MPQuery,
    SourceError,
    check_target,
    cifs_in_zip,
    cod_fetch,
    cod_ids,
    cod_search,
    export_csv,
    export_parquet,
    mp_api_key,
    mp_search,
    parse_elements,
    parse_cod_ids,
    parse_space_groups,
    read_cif_directory,
    read_cif_files,
    simulate_and_store,
    spaced_symbol,
    store_rows,
    synthesize_and_store,
)
from core.structures import RandomCrystalSpec, StructureBatch

GOOD_KEY = "k" * 32
OTHER_KEY = "x" * 32


def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl() -> Structure:
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.12), ["Cs", "Cl"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def nacl_cif() -> bytes:
    return nacl().to(fmt="cif").encode()


def broken_cif() -> bytes:
    """The first half of a good CIF: cut inside the atom-site loop."""
    text = nacl_cif()
    return text[: text.index(b"_atom_site_occupancy") + 30]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeServer:
    """A real HTTP server on 127.0.0.1 (free port) in a thread; ``route(path, query,
    headers)`` returns ``(status, body bytes or JSON-able, extra headers)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append((url.path, query, headers))
                status, body, extra = server.route(url.path, query, headers)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, bytes)
                                 else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def route(self, path, query, headers):
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


class FakeMaterialsProject(FakeServer):
    """Answers what mp-api 0.46 asks: ``GET /heartbeat`` (twice on start, without the key)
    and ``GET /materials/summary/?...&_fields=...`` with the ``x-api-key`` header.

    ``mode``: ``ok``, ``reject`` (401 to any key but :data:`GOOD_KEY`), ``forbidden`` (403)
    or ``ratelimit`` (429 to every summary request).
    """

    def __init__(self, mode: str = "ok", key: str = GOOD_KEY) -> None:
        super().__init__()
        self.mode, self.key = mode, key
        self.docs = [
            {"material_id": "mp-22862", "structure": nacl().as_dict(), "formula_pretty": "NaCl",
             "symmetry": {"number": 225, "symbol": "Fm-3m", "crystal_system": "Cubic"}},
            {"material_id": "mp-22865", "structure": cscl().as_dict(), "formula_pretty": "CsCl",
             "symmetry": {"number": 221, "symbol": "Pm-3m", "crystal_system": "Cubic"}},
        ]

    def route(self, path, query, headers):
        if path.rstrip("/") == "/heartbeat":
            return 200, {"db_version": "2025_09_25", "version": "0.87.3",
                         "access_controlled_batch_ids": []}, None
        if path.rstrip("/") != "/materials/summary":
            return 404, {"detail": "Not Found"}, None
        if self.mode == "ratelimit":
            return 429, {"detail": "Rate limit exceeded"}, {"Retry-After": "0"}
        if self.mode == "forbidden":
            return 403, {"detail": "Forbidden"}, None
        if headers.get("x-api-key") != self.key:
            return 401, {"detail": "Invalid API key"}, None
        limit = int(query.get("_limit", 1000))
        docs = self.docs[:limit]
        return 200, {"data": docs, "meta": {"total_doc": len(docs), "max_limit": 1000}}, None

    @property
    def summary_queries(self) -> list[dict]:
        return [q for p, q, _ in self.requests if p.startswith("/materials/summary")]


class FakeCOD(FakeServer):
    """Answers ``GET /cod/result?format=json&el1=..`` with a JSON list of entries and
    ``GET /cod/<id>.cif`` with a CIF: 1000001 NaCl, 1000002 a truncated CIF, others 404."""

    ENTRIES = [{"file": "1000001", "sg": "F m -3 m", "formula": "- Cl Na -"},
               {"file": "1000002", "sg": "F m -3 m", "formula": "- Cl Na -"},
               {"file": "1000003", "sg": "P 21/c", "formula": "- Cl Na O4 -"}]

    def route(self, path, query, headers):
        if path == "/cod/result":
            if query.get("format") != "json":
                return 200, b"<html>search page</html>", None
            return 200, self.ENTRIES, None
        if path == "/cod/1000001.cif":
            return 200, nacl_cif(), None
        if path == "/cod/1000002.cif":
            return 200, broken_cif(), None
        return 404, b"not found", None


# --------------------------------------------------------------------------- parsing helpers


def test_parse_space_groups():
    assert parse_space_groups("14, 62-64; P2_1/c\nFm-3m") == [14, 62, 63, 64, 225]
    assert parse_space_groups("230-228") == [228, 229, 230]
    assert parse_space_groups("") == []
    for bad in ("231", "0-3", "Xyz", "12-300"):
        with pytest.raises(SourceError, match="not a space group"):
            parse_space_groups(bad)


def test_spaced_symbols_as_the_cod_writes_them():
    assert spaced_symbol(225) == "F m -3 m"
    assert spaced_symbol(14) == "P 21/c"
    assert spaced_symbol(136) == "P 42/m n m"
    assert spaced_symbol(2) == "P -1"


def test_parse_cod_ids():
    ids, invalid = parse_cod_ids("1000001, 1000002.cif\n1000001 abc 12")
    assert ids == ["1000001", "1000002"]
    assert invalid == ["abc", "12"]
    assert cod_ids("1000001 9008460") == ["1000001", "9008460"]
    with pytest.raises(SourceError, match="not ids: abc"):
        cod_ids("1000001 abc")
    with pytest.raises(SourceError, match="7 digits"):
        cod_ids("  ")


def test_parse_elements():
    assert parse_elements("fe, O; si o") == ["Fe", "O", "Si"]
    assert parse_elements("") == []
    with pytest.raises(SourceError, match="not element symbols: Xx, Foo"):
        parse_elements("Fe Xx foo")


# --------------------------------------------------------------------------- Materials Project


def test_mp_search_through_the_real_client():
    with FakeMaterialsProject() as server:
        query = MPQuery(elements=("Na", "Cl"), spacegroup_number=225, num_sites=(1, 20),
                        is_stable=True, limit=5)
        batch = mp_search(query, GOOD_KEY, endpoint=server.url)
        sent = server.summary_queries[-1]
        headers = [h for p, _, h in server.requests if p.startswith("/materials/summary")][-1]
    assert batch.names == ["mp-22862", "mp-22865"]
    assert all(isinstance(s, Structure) for s in batch.structures)
    assert batch.structures[0].composition.reduced_formula == "NaCl"
    assert sent["elements"] == "Na,Cl"
    assert sent["spacegroup_number"] == "225"
    assert (sent["nsites_min"], sent["nsites_max"]) == ("1", "20")
    assert sent["is_stable"] == "True"
    assert sent["_limit"] == "5"
    assert set(sent["_fields"].split(",")) == {"material_id", "structure", "symmetry",
                                             "formula_pretty"}
    assert headers["x-api-key"] == GOOD_KEY


def test_mp_limit_and_chemsys():
    with FakeMaterialsProject() as server:
        batch = mp_search(MPQuery(chemsys="Cl-Na", limit=1), GOOD_KEY, endpoint=server.url)
        sent = server.summary_queries[-1]
    assert batch.names == ["mp-22862"]
    assert sent["chemsys"] == "Cl-Na" and sent["_limit"] == "1"


@pytest.mark.parametrize("mode, code", [("reject", 401), ("forbidden", 403)])
def test_mp_rejected_key(mode, code):
    with FakeMaterialsProject(mode=mode) as server:
        with pytest.raises(SourceError) as info:
            mp_search(MPQuery(elements=("Na",)), OTHER_KEY, endpoint=server.url)
    message = str(info.value)
    assert "rejected the API key" in message and str(code) in message
    assert OTHER_KEY not in message


def test_mp_rate_limit():
    with FakeMaterialsProject(mode="ratelimit") as server:
        with pytest.raises(SourceError, match="rate-limiting"):
            mp_search(MPQuery(elements=("Na",)), GOOD_KEY, endpoint=server.url)
        assert len(server.summary_queries) >= 2  # the client retried before giving up


def test_mp_no_network():
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(SourceError, match="Cannot reach the Materials Project"):
        mp_search(MPQuery(elements=("Na",)), GOOD_KEY, endpoint=endpoint, timeout=5)


def test_mp_key_problems_are_caught_before_any_request():
    with pytest.raises(SourceError, match="No Materials Project API key"):
        mp_search(MPQuery(elements=("Na",)), None)
    with pytest.raises(SourceError, match="32 characters; this one has 5"):
        mp_search(MPQuery(elements=("Na",)), "short")
    with pytest.raises(SourceError, match="at least one criterion"):
        mp_search(MPQuery(), GOOD_KEY)


def test_mp_api_key_precedence(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    assert mp_api_key(None, None) is None
    assert mp_api_key("", {"MP_API_KEY": "from-secrets"}) == "from-secrets"
    monkeypatch.setenv("MP_API_KEY", "from-env")
    assert mp_api_key(None, {"MP_API_KEY": "from-secrets"}) == "from-env"
    assert mp_api_key("  typed ", {"MP_API_KEY": "from-secrets"}) == "typed"


def test_mp_structures_are_stored_with_material_ids():
    with FakeMaterialsProject() as server:
        batch = mp_search(MPQuery(elements=("Cl",)), GOOD_KEY, endpoint=server.url)
    result = simulate_and_store(batch, "materials_project", "mp_test", "new", processes=1)
    assert result.added == 2 and result.saved
    table = store.load("mp_test").table
    assert list(table["id"]) == ["mp-22862", "mp-22865"]
    assert list(table["sg_number"]) == [225, 221]
    assert set(table["source"]) == {"materials_project"}


# --------------------------------------------------------------------------- COD


def test_cod_search_and_fetch():
    with FakeCOD() as server:
        base = server.url + "/cod"
        ids = cod_search(["Na", "Cl"], space_group=225, base_url=base)
        sent = [q for p, q, _ in server.requests if p == "/cod/result"][-1]
        progress = []
        batch = cod_fetch(ids + ["1234567"], base_url=base,
                          progress=lambda d, t: progress.append((d, t)))
    assert sent == {"format": "json", "el1": "Na", "el2": "Cl", "spacegroup": "F m -3 m"}
    assert ids == ["1000001", "1000002"]  # the P 21/c entry is filtered out
    assert batch.names == ["cod-1000001"]
    reasons = dict(batch.failures)
    assert "invalid CIF" in reasons["cod-1000002"] or "no complete structure" in reasons["cod-1000002"]
    assert "HTTP 404" in reasons["cod-1234567"]
    assert progress[-1] == (3, 3)


def test_cod_search_limit_and_validation():
    with FakeCOD() as server:
        assert cod_search(["Cl"], limit=2, base_url=server.url + "/cod") == ["1000001", "1000002"]
    with pytest.raises(SourceError, match="at least one element"):
        cod_search([])
    with pytest.raises(SourceError, match="at most 8"):
        cod_search(["H", "He", "Li", "Be", "B", "C", "N", "O", "F"])


def test_cod_no_network():
    base = f"http://127.0.0.1:{closed_port()}/cod"
    with pytest.raises(SourceError, match="Cannot reach"):
        cod_search(["Na"], base_url=base, timeout=5)
    with pytest.raises(SourceError, match="Cannot reach"):
        cod_fetch(["1000001"], base_url=base, timeout=5)


# --------------------------------------------------------------------------- CIF files


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_is_read_in_memory_and_unsafe_members_are_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_zip({
        "good/NaCl.cif": nacl_cif(), "broken.cif": broken_cif(), "../evil.cif": nacl_cif(),
        "/etc/abs.cif": nacl_cif(), "C:/win.cif": nacl_cif(), "folder/": b"",
        "notes.txt": b"hello", "__MACOSX/._NaCl.cif": b"junk", ".hidden.cif": b"x",
    })
    files, skipped = cifs_in_zip(data, "set.zip")
    assert [name for name, _ in files] == ["set.zip/good/NaCl.cif", "set.zip/broken.cif"]
    reasons = dict(skipped)
    assert "unsafe path" in reasons["set.zip/../evil.cif"]
    assert "unsafe path" in reasons["set.zip/C:/win.cif"]
    assert any(name.endswith("abs.cif") and "unsafe" in reason for name, reason in skipped)
    assert reasons["set.zip/notes.txt"] == "not a .cif file"
    assert list(tmp_path.iterdir()) == []             # nothing was written to disk
    assert not (tmp_path.parent / "evil.cif").exists()


def test_zip_limits():
    data = make_zip({f"{i}.cif": b"x" * 1000 for i in range(5)})
    with pytest.raises(SourceError, match="more than 0 MB"):
        cifs_in_zip(data, "big.zip", max_bytes=3000)
    with pytest.raises(SourceError, match="5 members, more than the 3 allowed"):
        cifs_in_zip(data, "many.zip", max_members=3)
    with pytest.raises(SourceError, match="not a valid zip"):
        cifs_in_zip(b"PK not really", "fake.zip")


def test_read_cif_files_mixes_cifs_and_archives():
    files = [("NaCl.cif", nacl_cif()), ("broken.cif", broken_cif()),
             ("more.zip", make_zip({"CsCl.cif": cscl().to(fmt="cif").encode()})),
             ("bad.zip", b"nonsense"), ("pattern.xy", b"1 2\n")]
    batch = read_cif_files(files)
    assert batch.names == ["NaCl.cif", "more.zip/CsCl.cif"]
    reasons = dict(batch.failures)
    assert set(reasons) == {"broken.cif", "bad.zip", "pattern.xy"}
    assert reasons["broken.cif"].startswith("broken.cif:")
    assert "not a valid zip" in reasons["bad.zip"]
    assert "not a .cif or .zip" in reasons["pattern.xy"]


def test_read_cif_directory(tmp_path):
    nacl().to(filename=str(tmp_path / "NaCl.cif"))
    (tmp_path / "broken.CIF").write_bytes(broken_cif())
    (tmp_path / "readme.txt").write_text("not a cif")
    batch = read_cif_directory(tmp_path)
    assert batch.names == ["NaCl.cif"]
    assert [name for name, _ in batch.failures] == ["broken.CIF"]
    both = read_cif_files([("upload.cif", nacl_cif())], folder=str(tmp_path))
    assert both.names == ["NaCl.cif", "upload.cif"]
    with pytest.raises(SourceError, match="does not exist"):
        read_cif_directory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no .cif"):
        read_cif_directory(tmp_path / "empty")


# --------------------------------------------------------------------------- storing and jobs


def test_check_target():
    with pytest.raises(SourceError, match="read-only"):
        check_target("default", "append")
    with pytest.raises(SourceError, match="dataset name"):
        check_target("../escape", "new")
    with pytest.raises(SourceError, match="does not exist"):
        check_target("never_made", "append")
    check_target("never_made", "new")


def test_store_rows_new_then_append_keeps_ids_unique():
    batch = StructureBatch([nacl(), cscl()], ["a", "b"])
    result = simulate_and_store(batch, "cif", "store_test", "new", processes=1)
    assert result.added == 2
    with pytest.raises(SourceError, match="already exists"):
        check_target("store_test", "new")
    rows = store.load("store_test").table
    assert store_rows("store_test", rows.iloc[:1], "append") == 0     # same id again
    renamed = rows.iloc[:1].assign(id="c")
    assert store_rows("store_test", renamed, "append") == 1
    assert list(store.load("store_test").table["id"]) == ["a", "b", "c"]
    with pytest.raises(SourceError, match="nothing to store"):
        store_rows("store_test", rows.iloc[:0], "append")


def test_simulate_and_store_reports_read_failures_and_refuses_empty_batches():
    batch = StructureBatch([nacl()], ["NaCl.cif"], [("broken.cif", "broken.cif: invalid CIF")])
    result = simulate_and_store(batch, "cif", "with_failures", "new", processes=1)
    assert result.added == 1 and result.failures == [("broken.cif", "broken.cif: invalid CIF")]
    with pytest.raises(SourceError, match="no structure to simulate.*broken.cif"):
        simulate_and_store(StructureBatch([], [], [("broken.cif", "invalid")]), "cif",
                           "never_made", "new")


def test_background_job_runs_a_synthetic_build():
    spec = RandomCrystalSpec(max_atoms=16)
    job = BackgroundJob("synthetic", lambda j: synthesize_and_store(
        [2, 225], "job_test", "new", seed=1, spec=spec, processes=1, job=j)).start()
    assert job.wait(120)
    assert job.error is None, job.error
    result = job.result
    assert result.saved and result.added + len(result.failures) == 2
    assert (job.done, job.total) == (2, 2)
    assert job.eta == 0
    assert set(store.load("job_test").table["requested_sg"]) <= {2, 225}


def test_background_job_stop_without_keeping_writes_nothing():
    def work(job):
        job.stop(keep_partial=False)          # as if Cancel was pressed before the first crystal
        return synthesize_and_store([2, 2, 2], "cancelled_job", "new", processes=1, job=job)

    job = BackgroundJob("synthetic", work).start()
    assert job.wait(60)
    assert job.result.cancelled and not job.result.saved
    assert "cancelled_job" not in store.list_datasets()


def test_background_job_keeps_errors():
    def work(job):
        raise SourceError("boom")

    job = BackgroundJob("x", work).start()
    assert job.wait(10) and isinstance(job.error, SourceError) and not job.running


# --------------------------------------------------------------------------- export


def test_export_csv_and_parquet():
    batch = StructureBatch([nacl()], ["NaCl.cif"])
    simulate_and_store(batch, "cif", "export_test", "new", processes=1)
    dataset = store.load("export_test")
    table = pd.read_csv(io.BytesIO(export_csv(dataset)))
    row = dataset.table.iloc[0]
    assert list(table["id"]) == ["NaCl.cif"] and table["sg_number"][0] == 225
    assert np.allclose([float(v) for v in table["two_theta"][0].split()], row["two_theta"], atol=1e-4)
    assert [int(v) for v in table["h"][0].split()] == list(row["h"])
    assert export_parquet("export_test") == store.dataset_path("export_test").read_bytes()
