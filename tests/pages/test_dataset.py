"""The dataset page: browsing the bundled dataset, and building datasets from random
crystals, CIF files (uploaded and from a folder), the Materials Project and the COD (both
against real local HTTP servers that answer like the services), export and deletion."""

from __future__ import annotations

import base64
import json
import time

import numpy as np

from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT
from core import dataset as store
from core.generation import generate_synthetic
from core.structures import RandomCrystalSpec
from tests.core.test_sources import (GOOD_KEY, OTHER_KEY, FakeCOD, FakeMaterialsProject,
                                     broken_cif, closed_port, nacl, nacl_cif)

PAGE = str(PROJECT / "pages" / "dataset.py")
FIGURES = 9  # space groups, systems, peaks, lattice, volume, elements, pattern, augmentation, imbalance


def _app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by element key."""
    charts = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        charts[element.proto.id] = spec
    return charts


def _values(array) -> np.ndarray:
    """A figure's data array, as Plotly writes it: a list, or typed binary data."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array, dtype=float)


def _matching(at: AppTest) -> int:
    caption = next(c.value for c in at.caption if "patterns match" in c.value)
    return int(caption.split(" of ")[0].replace(",", ""))


def _build(at: AppTest, button: str, timeout: float = 180) -> AppTest:
    """Click a build button and rerun until the background job has finished."""
    at.number_input(key="ds_processes").set_value(1)
    at.button(key=button).click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + timeout
    while "ds_job" in at.session_state and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    assert "ds_job" not in at.session_state, "the build did not finish in time"
    return at


def _result(at: AppTest):
    label, result, error = at.session_state["ds_last_result"]
    return result, error


def test_browse_bundled_dataset():
    at = _app()
    assert at.selectbox(key="ds_name").options[0] == "default"
    assert at.selectbox(key="ds_name").value == "default"
    bundled = store.load("default")
    assert at.metric[0].value == f"{len(bundled):,}"
    charts = at.get("plotly_chart")
    assert len(charts) == FIGURES
    # Every figure has its one-line caption right after it.
    captions = [c.value for c in at.caption]
    assert sum("space group" in c.lower() for c in captions) >= 1
    assert len(captions) >= FIGURES
    specs = [json.loads(c.proto.spec) for c in charts]
    assert all(spec["data"] for spec in specs)
    bars = [t for t in specs[0]["data"] if t["type"] == "bar"]
    assert sum(sum(t["y"]) for t in bars) == len(bundled)

    # A filter narrows the table and the viewer follows.
    total = _matching(at)
    assert total == len(bundled)
    at.multiselect(key="ds_f_system").set_value(["cubic"])
    at.run()
    _ok(at)
    cubic = int((bundled.table["crystal_system"] == "cubic").sum())
    assert _matching(at) == cubic < total
    assert set(at.dataframe[0].value["crystal_system"]) == {"cubic"}
    assert len(at.selectbox(key="ds_row").options) == cubic

    at.text_input(key="ds_f_formula").set_value("O")
    at.run()
    _ok(at)
    assert _matching(at) <= cubic
    assert all("O" in f for f in at.dataframe[0].value["formula"])

    # The viewer: sticks with hkl, the rendered profile, the augmentation preview.
    pattern = json.loads(at.get("plotly_chart")[6].proto.spec)
    names = [t.get("name") for t in pattern["data"]]
    assert "sticks" in names and "rendered profile (model input)" in names
    hkl = next(t for t in pattern["data"] if t.get("name") == "hkl")
    assert hkl["customdata"][0].startswith("(")
    before = json.loads(at.get("plotly_chart")[7].proto.spec)["data"][1]["y"]
    at.button(key="ds_reseed").click().run()
    _ok(at)
    spec_after = at.get("plotly_chart")[7].proto.spec
    after = json.loads(spec_after)["data"][1]["y"]
    assert before != after
    # One effect alone: the Kα2 doublet adds a shoulder beside every peak and nothing else,
    # so the variants agree with each other (no other effect is drawn at random).
    at.selectbox(key="ds_aug_effect").set_value("Cu Kα2 doublet").run()
    _ok(at)
    preview = json.loads(at.get("plotly_chart")[7].proto.spec)["data"]
    variants = [_values(trace["y"]) - 1.1 * i for i, trace in enumerate(preview) if i]
    assert len(variants) == 3
    np.testing.assert_allclose(variants[0], variants[1], atol=1e-4)
    every_effect = _values(json.loads(spec_after)["data"][1]["y"]) - 1.1
    assert not np.allclose(variants[0], every_effect, atol=1e-3)
    assert any("Cu Kα2 doublet alone" in c.value for c in at.caption)
    at.slider(key="ds_aug_strength").set_value(0.0).run()
    _ok(at)
    assert any("Strength 0: clean peaks" in c.value for c in at.caption)

    # Options: log axis, element bar chart, bad filter input gives a clear message.
    at.toggle(key="ds_log").set_value(True)
    at.radio(key="ds_elements_view").set_value("Bar chart")
    at.run()
    _ok(at)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["yaxis"]["type"] == "log"
    at.text_input(key="ds_f_sg").set_value("999")
    at.run()
    assert not at.exception
    assert any("not a space group" in e.value for e in at.error)


def test_bundled_dataset_is_protected():
    at = _app()
    assert at.checkbox(key="del_ok").disabled
    assert at.button(key="del_go").disabled
    assert any("protected" in c.value for c in at.caption)
    assert "default" not in at.radio(key="syn_target").options or \
        at.radio(key="syn_target").disabled


def _build_synthetic(groups: str, per_group: int, max_atoms: int, name: str,
                     sites: str | None = None, positions: str | None = None, seed: int = 0):
    """The page after generating random crystals of the listed ``groups`` into ``name``."""
    at = _app()
    at.radio(key="syn_mode").set_value("List")
    at.run()
    at.text_input(key="syn_list").set_value(groups)
    at.number_input(key="syn_per_group").set_value(per_group)
    at.number_input(key="syn_max_atoms").set_value(max_atoms)
    if sites:
        at.radio(key="syn_sites").set_value(sites)
    if positions:
        at.radio(key="syn_positions").set_value(positions)
    at.number_input(key="syn_seed").set_value(seed)
    at.text_input(key="syn_name").set_value(name)
    _build(at, "syn_go")
    _ok(at)
    return at


def test_build_small_synthetic_dataset():
    at = _build_synthetic("225, 221", per_group=1, max_atoms=16, name="page_synthetic")
    result, error = _result(at)
    assert error is None and result.saved
    assert "page_synthetic" in store.list_datasets()
    table = store.load("page_synthetic").table
    assert len(table) == result.added and 1 <= len(table) <= 2
    assert set(table["requested_sg"]) <= {221, 225}
    assert any("page_synthetic" in s.value for s in at.success)
    # The page switches to the new dataset, and it can now be appended to.
    assert at.selectbox(key="ds_name").value == "page_synthetic"
    assert "an existing dataset" in at.radio(key="syn_target").options
    assert not at.radio(key="syn_target").disabled


def test_synthetic_crystals_can_take_cod_site_counts():
    _build_synthetic("14", per_group=8, max_atoms=160, name="page_cod_sites", sites="cod")
    dataset = store.load("page_cod_sites")
    assert "sites cod" in dataset.meta["command"]
    assert len(dataset.table) >= 6
    # The "few" plan gives at most 9 sites: 36 atoms in P2_1/c (general position 4).
    assert dataset.table["n_sites"].max() > 36


def test_synthetic_crystals_can_take_their_own_systems_cod_site_counts():
    at = _app()
    assert at.radio(key="syn_sites").options == [
        "Few (1–2 per species)", "Like COD (larger cells)", "Like COD, per crystal system",
        "Sites and atoms like COD"]
    _build_synthetic("2", per_group=6, max_atoms=160, name="page_system_sites", sites="cod-system")
    dataset = store.load("page_system_sites")
    assert "sites cod-system" in dataset.meta["command"]
    assert len(dataset.table) >= 4 and (dataset.table["sg_number"] == 2).all()
    # COD's triclinic structures: a median of 22 independent sites, 44 atoms in P-1.
    assert dataset.table["n_sites"].median() >= 20


def test_synthetic_crystals_can_take_cods_site_symmetries():
    at = _app()
    assert at.radio(key="syn_positions").options == [
        "Prefer the general position", "Like COD, per crystal system"]
    _build_synthetic("2", per_group=6, max_atoms=160, name="page_positions", sites="cod-system",
                     positions="cod-system")
    dataset = store.load("page_positions")
    assert "positions cod-system" in dataset.meta["command"]
    # The page's crystals are those core makes with that plan (fast engine, seed 0).
    made = {}
    for plan in ("cod-system", "prefer-general"):
        spec = RandomCrystalSpec(max_atoms=160, sites="cod-system", positions=plan)
        made[plan] = generate_synthetic([2] * 6, seed=0, spec=spec, processes=1,
                                        engine="fast").rows
    assert dataset.table["n_sites"].tolist() == made["cod-system"]["n_sites"].tolist()
    assert dataset.table["n_sites"].tolist() != made["prefer-general"]["n_sites"].tolist()


def test_synthetic_crystals_can_take_cods_cell_sizes():
    _build_synthetic("225", per_group=6, max_atoms=160, name="page_cells", sites="cod-cells",
                     positions="cod-system")
    dataset = store.load("page_cells")
    assert "sites cod-cells" in dataset.meta["command"]
    # The page's crystals are those core makes with that plan (fast engine, seed 0).
    spec = RandomCrystalSpec(max_atoms=160, sites="cod-cells", positions="cod-system")
    made = generate_synthetic([225] * 6, seed=0, spec=spec, processes=1, engine="fast").rows
    assert dataset.table["n_sites"].tolist() == made["n_sites"].tolist()
    spec = RandomCrystalSpec(max_atoms=160, sites="cod-system", positions="cod-system")
    other = generate_synthetic([225] * 6, seed=0, spec=spec, processes=1, engine="fast").rows
    assert dataset.table["n_sites"].tolist() != other["n_sites"].tolist()


def test_synthetic_crystals_can_sit_near_a_grid():
    at = _app()
    assert at.slider(key="syn_pseudo").value == 0.0
    at.radio(key="syn_engine").set_value("pyxtal")
    at.run()
    assert at.slider(key="syn_pseudo").disabled  # pyxtal places atoms itself
    at.radio(key="syn_engine").set_value("fast")
    at.radio(key="syn_mode").set_value("List")
    at.run()
    at.text_input(key="syn_list").set_value("14")
    at.number_input(key="syn_per_group").set_value(6)
    at.number_input(key="syn_max_atoms").set_value(160)
    at.radio(key="syn_sites").set_value("cod-cells")
    at.slider(key="syn_pseudo").set_value(1.0)
    at.text_input(key="syn_name").set_value("page_near_grid")
    _build(at, "syn_go")
    _ok(at)
    dataset = store.load("page_near_grid")
    assert "pseudo-symmetry 1" in dataset.meta["command"]
    # The page's crystals are those core makes with that share (fast engine, seed 0).
    made = {}
    for share in (1.0, 0.0):
        spec = RandomCrystalSpec(max_atoms=160, sites="cod-cells", pseudo_symmetry=share)
        made[share] = generate_synthetic([14] * 6, seed=0, spec=spec, processes=1,
                                         engine="fast").rows
    assert dataset.table["formula"].tolist() == made[1.0]["formula"].tolist()
    assert dataset.table["formula"].tolist() != made[0.0]["formula"].tolist()


def test_synthetic_name_clash_and_bad_input():
    store.create("taken", store.load("default").table.head(3), command="test")
    at = _app()
    at.radio(key="syn_mode").set_value("List")
    at.run()
    at.text_input(key="syn_list").set_value("225")
    at.text_input(key="syn_name").set_value("taken")
    at.button(key="syn_go").click().run()
    assert not at.exception
    assert any("already exists" in e.value for e in at.error)
    at.text_input(key="syn_list").set_value("Q99")
    at.run()
    assert any("not a space group" in e.value for e in at.error)


def test_import_one_good_and_one_broken_cif_by_upload(tmp_path):
    at = _app()
    at.file_uploader(key="cif_files").set_value([
        ("NaCl.cif", nacl_cif(), "chemical/x-cif"),
        ("broken.cif", broken_cif(), "chemical/x-cif")])
    at.text_input(key="cif_name").set_value("page_upload")
    _build(at, "cif_go")
    _ok(at)
    result, error = _result(at)
    assert error is None
    assert list(store.load("page_upload").table["id"]) == ["NaCl.cif"]
    assert [name for name, _ in result.failures] == ["broken.cif"]
    skipped = at.dataframe[-1].value
    assert list(skipped["item"]) == ["broken.cif"] and "broken.cif" in skipped["reason"][0]


def test_import_cifs_from_a_folder(tmp_path):
    nacl().to(filename=str(tmp_path / "NaCl.cif"))
    (tmp_path / "broken.cif").write_bytes(broken_cif())
    at = _app()
    at.text_input(key="cif_folder").set_value(str(tmp_path))
    at.text_input(key="cif_name").set_value("page_folder")
    _build(at, "cif_go")
    result, error = _result(at)
    assert error is None and result.added == 1
    table = store.load("page_folder").table
    assert list(table["id"]) == ["NaCl.cif"] and list(table["sg_number"]) == [225]
    assert any("1 skipped" in w.value for w in at.warning)

    at.text_input(key="cif_folder").set_value(str(tmp_path / "missing"))
    at.text_input(key="cif_name").set_value("page_folder_2")
    _build(at, "cif_go")
    result, error = _result(at)
    assert error is not None
    assert any("does not exist" in e.value for e in at.error)


def test_materials_project_good_and_bad_key(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with FakeMaterialsProject() as server:
        monkeypatch.setenv("MP_API_ENDPOINT", server.url)
        at = _app()
        at.text_input(key="mp_key").set_value(OTHER_KEY)
        at.text_input(key="mp_elements").set_value("Na, Cl")
        at.text_input(key="mp_name").set_value("page_mp")
        _build(at, "mp_go")
        assert not at.exception
        assert any("rejected the API key" in e.value for e in at.error)
        assert not any(OTHER_KEY in e.value for e in at.error)
        assert "page_mp" not in store.list_datasets()

        at.text_input(key="mp_key").set_value(GOOD_KEY)
        _build(at, "mp_go")
        _ok(at)
        result, error = _result(at)
        assert error is None and result.added == 2
        assert server.summary_queries[-1]["elements"] == "Na,Cl"
    table = store.load("page_mp").table
    assert list(table["id"]) == ["mp-22862", "mp-22865"]
    assert set(table["source"]) == {"materials_project"}


def test_materials_project_without_key_or_network(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.setenv("MP_API_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    at = _app()
    at.text_input(key="mp_elements").set_value("Na")
    at.text_input(key="mp_name").set_value("page_mp_none")
    _build(at, "mp_go")
    assert any("No Materials Project API key" in e.value for e in at.error)
    at.text_input(key="mp_key").set_value(GOOD_KEY)
    _build(at, "mp_go")
    assert any("Cannot reach the Materials Project" in e.value for e in at.error)


def test_cod_by_ids(monkeypatch):
    with FakeCOD() as server:
        monkeypatch.setenv("COD_BASE_URL", server.url + "/cod")
        at = _app()
        at.text_area(key="cod_ids").set_value("1000001, 1000002")
        at.text_input(key="cod_name").set_value("page_cod")
        _build(at, "cod_go")
        _ok(at)
    result, error = _result(at)
    assert error is None and result.added == 1
    assert list(store.load("page_cod").table["id"]) == ["cod-1000001"]
    assert [name for name, _ in result.failures] == ["cod-1000002"]


def test_unreachable_dask_scheduler_is_reported():
    at = _app()
    at.text_input(key="ds_scheduler").set_value(f"tcp://127.0.0.1:{closed_port()}")
    at.text_input(key="syn_name").set_value("page_dask")
    at.button(key="syn_go").click().run()
    assert not at.exception
    assert any("no Dask scheduler answers" in e.value for e in at.error)
    assert "ds_job" not in at.session_state


def test_export_and_delete():
    store.create("to_delete", store.load("default").table.head(4), command="test")
    at = _app()
    at.selectbox(key="ds_name").set_value("to_delete")
    at.run()
    _ok(at)
    assert len(at.get("download_button")) == 2
    assert at.button(key="del_go").disabled
    at.checkbox(key="del_ok").check().run()
    assert not at.button(key="del_go").disabled
    at.button(key="del_go").click().run()
    _ok(at)
    assert "to_delete" not in store.list_datasets()
    assert any("Deleted dataset 'to_delete'" in s.value for s in at.success)
    assert at.selectbox(key="ds_name").value == "default"


def test_a_running_build_can_be_cancelled():
    at = _app()
    at.radio(key="syn_mode").set_value("By crystal system")
    at.run()
    at.multiselect(key="syn_systems").set_value(["cubic"])
    at.number_input(key="syn_per_group").set_value(10)       # 360 crystals: minutes of work
    at.radio(key="syn_engine").set_value("pyxtal")            # (the slower generator)
    at.number_input(key="ds_processes").set_value(1)
    at.text_input(key="syn_name").set_value("page_cancelled")
    at.button(key="syn_go").click().run()
    assert not at.exception, at.exception
    assert "ds_job" in at.session_state
    assert at.get("progress"), "a running build shows a progress bar"
    assert at.button(key="job_keep") and at.button(key="job_cancel")
    at.button(key="job_cancel").click().run()
    deadline = time.monotonic() + 60
    while "ds_job" in at.session_state and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    result, error = _result(at)
    assert error is None and result.cancelled and not result.saved
    assert result.added == 0 < result.requested == 360
    assert any("cancelled: nothing was written" in w.value for w in at.warning)
    assert "page_cancelled" not in store.list_datasets()


def test_a_seed_that_already_made_crystals_is_pointed_out():
    at = _build_synthetic("2", per_group=2, max_atoms=24, name="page_seed_first", seed=919)
    assert not any("Seed 919" in w.value for w in at.warning)
    at = _build_synthetic("2", per_group=2, max_atoms=24, name="page_seed_again", seed=919)
    assert any("Seed 919 had already made crystals in page_seed_first" in w.value
               for w in at.warning)
    assert "page_seed_again" in store.list_datasets()  # a warning, not a refusal
