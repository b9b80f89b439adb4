"""Datasets: browse what a model learns from, and build bigger or different datasets.

Builds run in a background thread held in this browser session; a fragment redraws their
progress every second and offers to stop them. Figures and their data live in
``ui/figures_dataset.py``, the online sources and CIF import in the ``core/sources/`` package.
"""

import os

import numpy as np
import pandas as pd
import streamlit as st

from core import dataset as store
from core import sources
from core.generation import datasets_with_seeds
from core.grid import DEFAULT_GRID
from core.rendering import DEFAULT_PADDED_LENGTH, render
from core.structures import (ANIONS, CATIONS, POSITION_PLANS, SITE_PLANS, RandomCrystalSpec,
                             space_groups_of_systems)
from core.symmetry import CRYSTAL_SYSTEMS
from ui import figures_dataset as fig
from ui.state import load_dataset

from ui.routing import ensure_app_navigation

ensure_app_navigation()

JOB, RESULT, FLASH, SELECT_NEXT = "ds_job", "ds_last_result", "ds_flash", "ds_select_next"
NOTE = "ds_job_note"  # a warning given when the job started, shown with its result
MAX_TABLE_ROWS = 5000
ALL_EFFECTS = "all of them, as in training"


@st.cache_data(max_entries=8, show_spinner="Summarising the dataset…")
def _summary(name: str, mtime: float) -> tuple[dict, dict]:
    dataset = load_dataset(name)
    return store.summarise(dataset), fig.summarise_table(dataset.table)


def _mtime(name: str) -> float:
    try:
        return store.dataset_path(name).stat().st_mtime
    except OSError:
        return 0.0


def _chart(figure, caption: str, key: str, where=st) -> None:
    where.plotly_chart(figure, width="stretch", key=key)
    where.caption(caption)


def _overview(name: str, facts: dict, summary: dict, table: pd.DataFrame) -> None:
    cols = st.columns(4)
    cols[0].metric("Patterns", f"{facts['patterns']:,}")
    cols[1].metric("Space groups present", f"{facts['space_groups']} / 230")
    cols[2].metric("Wavelength (Å)", ", ".join(f"{w:g}" for w in facts["wavelengths"]) or "–")
    low, high = facts["two_theta_range"]
    cols[3].metric("2θ range of the peaks", f"{low:.1f}–{high:.1f}°")
    st.write("**Sources:** " + ", ".join(f"{k} ({v:,})" for k, v in facts["sources"].items()))
    st.caption(f"Created {facts['created'] or 'at an unknown time'}; made with:")
    st.code(facts["command"] or "(no command recorded)", language="bash")

    log = st.toggle("Logarithmic count axis", key="ds_log")
    _chart(fig.space_group_figure(summary["class_counts"], log=log),
           "Patterns per space group (hover for the symbol): a model sees rare groups too "
           "seldom to learn them, so gaps here become errors later.", "fig_sg")
    left, right = st.columns(2)
    _chart(fig.crystal_system_figure(summary["systems"]),
           "Share of each crystal system: the coarse label a model gets right first.",
           "fig_systems", left)
    _chart(fig.pattern_size_figure(summary["peaks"], summary["visible_peaks"]),
           f"Peaks per pattern, the length of the report's irregular arrays: patterns beyond "
           f"the {DEFAULT_PADDED_LENGTH}-peak cut-off are dropped by the padded input.",
           "fig_peaks", right)
    left, right = st.columns(2)
    _chart(fig.lattice_figure(table), "Cell lengths and angles: a model only learns the peak "
           "positions such cells produce.", "fig_lattice", left)
    _chart(fig.volume_figure(summary["volumes"]),
           "Cell volume (log scale): big cells give many, crowded peaks.", "fig_volume", right)
    view = st.radio("Elements as", ["Periodic table", "Bar chart"], horizontal=True,
                    key="ds_elements_view")
    figure = (fig.periodic_table_figure(summary["elements"]) if view == "Periodic table"
              else fig.element_bar_figure(summary["elements"]))
    _chart(figure, "How many patterns contain each element: chemistry far from this will look "
                   "unfamiliar to the model.", "fig_elements")


def _filtered(table: pd.DataFrame) -> pd.DataFrame:
    cols = st.columns(4)
    systems = cols[0].multiselect("Crystal system", CRYSTAL_SYSTEMS, key="ds_f_system")
    groups_text = cols[1].text_input("Space groups", key="ds_f_sg",
                                     placeholder="e.g. 14, 62-74, Fm-3m")
    text = cols[2].text_input("Formula or elements", key="ds_f_formula",
                              placeholder="e.g. Fe O, or SiO2")
    chosen = cols[3].multiselect("Source", sorted(table["source"].unique()), key="ds_f_source")
    try:
        groups = sources.parse_space_groups(groups_text)
    except sources.SourceError as exc:
        st.error(f"Space-group filter: {exc}")
        groups = []
    return fig.filter_table(table, systems, groups, text, chosen)


def _viewer(dataset: store.Dataset, rows: pd.DataFrame) -> None:
    options = list(rows.index[:MAX_TABLE_ROWS])
    label = st.selectbox("Pattern to view", options, key="ds_row", format_func=lambda i: (
        f"{rows.at[i, 'id']} — {rows.at[i, 'formula']} (space group {rows.at[i, 'sg_number']})"))
    if label is None or label not in dataset.table.index:
        return
    peaks = store.peaklist_of_row(dataset.table.loc[label])
    profile = render(peaks.two_theta[None], peaks.intensity[None], DEFAULT_GRID)[0]
    _chart(fig.pattern_figure(peaks.two_theta, peaks.intensity, peaks.hkl, DEFAULT_GRID.angles,
                              profile, f"{peaks.formula}, space group {peaks.sg_number}"),
           "Simulated sticks (hover for hkl) and the profile a grid model receives, rendered on "
           f"the default grid ({DEFAULT_GRID.start:g}–{DEFAULT_GRID.stop:g}°, step "
           f"{DEFAULT_GRID.step:g}°).", "fig_pattern")

    from core.augmentation import EFFECTS, Augmentation, augment_profiles, only
    from core.training import stick_batch  # imports Keras: only once the rest is drawn

    left, middle, right = st.columns([2, 2, 1])
    strength = left.slider("Augmentation strength", 0.0, 2.0, 1.0, 0.25, key="ds_aug_strength")
    effect = middle.selectbox("Effects shown", [ALL_EFFECTS, *EFFECTS], key="ds_aug_effect",
                              help="One measurement effect alone, on every variant, at the "
                                   "training size; what each costs the bundled model is in "
                                   "benchmarks/results.md (Robustness).")
    if right.button("Reseed", key="ds_reseed"):
        st.session_state["ds_aug_seed"] = st.session_state.get("ds_aug_seed", 0) + 1
    rng = np.random.default_rng(st.session_state.get("ds_aug_seed", 0))
    position = dataset.table.index.get_loc(label)
    # Three variants of this pattern; a few others in the batch supply impurity peaks.
    partners = rng.choice(len(dataset.table), size=min(5, len(dataset.table)), replace=False)
    sticks = stick_batch(dataset, np.concatenate([[position] * 3, partners]))
    ranges = Augmentation(strength=strength)
    if effect != ALL_EFFECTS and strength > 0:
        ranges = only(effect, ranges)
    augmented = augment_profiles(sticks, DEFAULT_GRID, ranges, rng)[:3]
    if strength == 0:
        caption = "Strength 0: clean peaks of fixed width, without any perturbation."
    elif effect == ALL_EFFECTS:
        caption = ("The same pattern as training shows it: strained cell, shifted and textured "
                   "peaks, Kα2, impurity, broadening, background and noise, drawn afresh on "
                   "every batch.")
    else:
        caption = f"The same pattern with {effect} alone."
    _chart(fig.augmentation_figure(DEFAULT_GRID.angles, profile, augmented), caption,
           "fig_augmentation")


def _imbalance(dataset: store.Dataset, counts: np.ndarray) -> None:
    from core.training import class_weights

    minimum = st.number_input("Call a class rare below this many patterns", 1, 10000, 5,
                              key="ds_min_count")
    facts = fig.imbalance(counts, int(minimum))
    cols = st.columns(3)
    cols[0].metric("Space groups without patterns", len(facts["empty"]))
    cols[1].metric(f"With fewer than {minimum}", len(facts["rare"]))
    cols[2].metric("Imbalance ratio (largest / smallest)", f"{facts['ratio']:.1f}")
    with st.expander("Which groups"):
        st.write("**Empty:** " + (", ".join(map(str, facts["empty"])) or "none"))
        st.write(f"**Fewer than {minimum}:** " + (", ".join(map(str, facts["rare"])) or "none"))
    weights = {mode: class_weights(dataset.labels, mode) for mode in ("none", "sqrt", "balanced")}
    _chart(fig.imbalance_figure(counts, weights),
           "Total weight of each class in the loss: 'balanced' (1/frequency) flattens it, "
           "'sqrt' halves the gap, 'none' lets big classes dominate.", "fig_imbalance")


def browse(name: str) -> None:
    try:
        dataset = load_dataset(name)
        facts, summary = _summary(name, _mtime(name))
    except store.DatasetError as exc:
        st.error(f"Cannot read dataset '{name}': {exc}")
        return
    _overview(name, facts, summary, dataset.table)
    st.subheader("Patterns")
    rows = _filtered(dataset.table)
    st.caption(f"{len(rows):,} of {len(dataset):,} patterns match"
               + (f"; the first {MAX_TABLE_ROWS:,} are listed" if len(rows) > MAX_TABLE_ROWS else ""))
    st.dataframe(fig.table_view(rows.head(MAX_TABLE_ROWS)), width="stretch", hide_index=True,
                 height=260)
    if len(rows):
        _viewer(dataset, rows)
    else:
        st.info("No pattern matches the filters.")
    st.subheader("Class imbalance")
    _imbalance(dataset, summary["class_counts"])


def _job_panel() -> None:
    job = st.session_state.get(JOB)
    if job is None:
        return
    if job.running:
        eta = f", about {job.eta:.0f} s left" if job.eta is not None else ""
        st.progress(job.done / job.total if job.total else 0.0,
                    text=f"{job.label}: {job.stage} — {job.done}/{job.total or '?'}{eta}")
        left, right = st.columns(2)
        if left.button("Stop and keep finished patterns", key="job_keep"):
            job.stop(keep_partial=True)
        if right.button("Cancel (discard)", key="job_cancel"):
            job.stop(keep_partial=False)
        return
    del st.session_state[JOB]
    st.session_state[RESULT] = (job.label, job.result, job.error)
    if job.error is None and job.result.saved:
        st.session_state[SELECT_NEXT] = job.result.dataset
    st.rerun()


def _show_result() -> None:
    if RESULT not in st.session_state:
        return
    label, result, error = st.session_state[RESULT]
    if note := st.session_state.get(NOTE):
        st.warning(note)
    if error is not None:
        detail = str(error) if isinstance(error, sources.SourceError) else \
            f"{error.__class__.__name__}: {error}"
        st.error(f"{label} failed: {detail}")
        return
    stopped = " (stopped early)" if result.cancelled else ""
    if result.saved:
        st.success(f"{label}{stopped}: {result.added} new patterns in dataset "
                   f"'{result.dataset}' from {result.requested} requested.")
    else:
        st.warning(f"{label} cancelled: nothing was written.")
    if result.mismatched:
        st.caption(f"{result.mismatched} crystals were detected in another space group than "
                   "requested (labels follow the detected group).")
    if result.failures:
        st.warning(f"{len(result.failures)} skipped:")
        st.dataframe(pd.DataFrame(result.failures, columns=["item", "reason"]),
                     width="stretch", hide_index=True)


def _target(prefix: str) -> tuple[str, str]:
    mine = [n for n in store.list_datasets() if n != "default"]
    mode = st.radio("Store in", ["a new dataset", "an existing dataset"], horizontal=True,
                    key=f"{prefix}_target", disabled=not mine)
    if mode == "an existing dataset" and mine:
        return st.selectbox("Dataset to append to", mine, key=f"{prefix}_append"), "append"
    return st.text_input("New dataset name", key=f"{prefix}_name",
                         placeholder="e.g. cubic-oxides").strip(), "new"


def _launch(label: str, name: str, mode: str, work, note: str | None = None) -> None:
    """Check the target and the scheduler, then run ``work(job)`` in the background;
    ``note`` is shown with the result."""
    running = st.session_state.get(JOB)
    if running is not None and running.running:
        st.warning(f"'{running.label}' is still running: wait for it or stop it first.")
        return
    scheduler = st.session_state.get("ds_scheduler", "").strip() or None
    try:
        sources.check_target(name, mode)
        sources.check_scheduler(scheduler or "")
    except sources.SourceError as exc:
        st.error(str(exc))
        return
    settings = dict(processes=int(st.session_state.get("ds_processes", 1)), scheduler=scheduler)
    st.session_state.pop(RESULT, None)
    st.session_state[NOTE] = note
    st.session_state[JOB] = sources.BackgroundJob(label, lambda job: work(job, settings)).start()
    st.rerun()


def _synthetic_tab() -> None:
    how = st.radio("Space groups", ["All 230", "By crystal system", "List"], horizontal=True,
                   key="syn_mode")
    try:
        if how == "All 230":
            groups = list(range(1, 231))
        elif how == "By crystal system":
            groups = space_groups_of_systems(
                st.multiselect("Crystal systems", CRYSTAL_SYSTEMS, ["cubic"], key="syn_systems"))
        else:
            groups = sources.parse_space_groups(st.text_input(
                "Space groups", "225, 221", key="syn_list", help="numbers, ranges or symbols"))
    except sources.SourceError as exc:
        st.error(str(exc))
        groups = []
    cols = st.columns(3)
    per_group = cols[0].number_input("Patterns per space group", 1, 2000, 2, key="syn_per_group")
    max_atoms = cols[1].number_input("Most atoms per cell", 4, 200, 72, key="syn_max_atoms")
    seed = cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="syn_seed")
    cations = st.multiselect("Cations and other species", [e for e, w in CATIONS.items() if w > 0],
                             [e for e, w in CATIONS.items() if w > 0], key="syn_cations")
    anions = st.multiselect("Anions", list(ANIONS), list(ANIONS), key="syn_anions")
    engine = st.radio(
        "Crystal generator", ["fast", "pyxtal"], horizontal=True, key="syn_engine",
        format_func={"fast": "Fast (15–25× quicker)", "pyxtal": "pyxtal"}.get,
        help="Both place atoms on Wyckoff positions and label each crystal with spglib. The fast "
             "generator computes patterns itself (identical to pymatgen's XRDCalculator) and "
             "redraws a crystal found in another space group; pyxtal keeps it, relabelled.")
    sites = st.radio(
        "Sites per crystal", SITE_PLANS, horizontal=True, key="syn_sites",
        format_func={"few": "Few (1–2 per species)", "cod": "Like COD (larger cells)",
                     "cod-system": "Like COD, per crystal system",
                     "cod-cells": "Sites and atoms like COD"}.get,
        help="How many symmetry-independent sites a crystal gets: one or two per species "
             "(median 4); drawn from the counts in real COD structures (median 5, a long "
             "tail of large cells); drawn from the COD counts of the crystal's own system "
             "(median 22 for triclinic structures, 11 monoclinic, 2 cubic); or, with the "
             "number of atoms in the cell too, from one COD structure of the same system (so "
             "that a cubic cell holds about 24 atoms, as in COD, not 70). For the COD plans "
             "raise 'Most atoms per cell' to about 160 to let the cells grow.")
    positions = st.radio(
        "Wyckoff positions", POSITION_PLANS, horizontal=True, key="syn_positions",
        format_func={"prefer-general": "Prefer the general position",
                     "cod-system": "Like COD, per crystal system"}.get,
        help="Which Wyckoff position each site takes: the general position three times as "
             "likely as each special one; or as often as real COD structures of the same "
             "crystal system use each site symmetry (99 % of triclinic sites are general, "
             "16 % of cubic ones).")
    pseudo = st.slider(
        "Near-grid crystals (pseudo-symmetry)", 0.0, 1.0, 0.0, 0.05, key="syn_pseudo",
        disabled=engine != "fast",
        help="Share of crystals whose atoms sit near the points of a 2.2–3.5 Å grid, so that "
             "they are slight distortions of a more symmetric arrangement, as real crystals "
             "often are: at a 0.5 Å tolerance spglib finds more symmetry in 13 % of COD "
             "structures, 5 % of uniformly placed random crystals and 14 % of near-grid ones "
             "(scripts/pseudo_symmetry.py). Fast generator only.")
    pseudo = float(pseudo) if engine == "fast" else 0.0
    total = len(groups) * int(per_group)
    st.caption(f"{total:,} random crystals ({len(groups)} space groups × {per_group}), "
               "simulated with Cu Kα; species are drawn with their natural frequencies.")
    name, mode = _target("syn")
    if st.button("Generate", key="syn_go", type="primary"):
        if not groups or not cations or not anions:
            st.error("Choose at least one space group, one cation and one anion.")
            return
        spec = RandomCrystalSpec(max_atoms=int(max_atoms), sites=sites, positions=positions,
                                 pseudo_symmetry=pseudo,
                                 cations={e: CATIONS[e] for e in cations},
                                 anions={e: ANIONS[e] for e in anions})
        request = [n for n in groups for _ in range(int(per_group))]
        note = None
        if users := datasets_with_seeds([int(seed)], engine):
            note = (f"Seed {seed} had already made crystals in {', '.join(users)}: with the same "
                    "settings they come out again, and datasets that share crystals are not "
                    "trained together. Another seed gives new crystals.")
        command = (f"dataset page: synthetic ({engine}), {len(groups)} space groups x {per_group}, "
                   f"seed {seed}, max atoms {max_atoms}, sites {sites}, positions {positions}, "
                   f"pseudo-symmetry {pseudo:g}, "
                   f"elements {' '.join(cations + anions)}")
        _launch("Synthetic generation", name, mode, lambda job, s: sources.synthesize_and_store(
            request, name, mode, seed=int(seed), spec=spec, command=command, job=job,
            engine=engine, **s), note=note)


def _secrets() -> dict | None:
    try:
        return {"MP_API_KEY": st.secrets.get("MP_API_KEY")}
    except Exception:  # no secrets file, or an unreadable one
        return None


def _materials_project_tab() -> None:
    typed = st.text_input("Materials Project API key", type="password", key="mp_key",
                          help="Kept only in this browser session; never written to disk.")
    key = sources.mp_api_key(typed, _secrets())
    st.caption("Key: " + ("typed above" if typed.strip() else "found in MP_API_KEY or secrets"
                          if key else "none yet. " + sources.MP_KEY_HELP))
    cols = st.columns(3)
    elements = cols[0].text_input("Contains elements", key="mp_elements", placeholder="e.g. Fe, O")
    chemsys = cols[1].text_input("Exact chemical system", key="mp_chemsys", placeholder="e.g. Fe-O")
    group = cols[2].text_input("Space group", key="mp_sg", placeholder="e.g. 225 or Fm-3m")
    cols = st.columns(3)
    sites = cols[0].slider("Sites in the cell", 1, 200, (1, 200), key="mp_sites")
    stability = cols[1].selectbox("Stability", ["any", "stable only", "unstable only"], key="mp_stable")
    limit = cols[2].number_input("Most materials", 1, 5000, 50, key="mp_limit")
    name, mode = _target("mp")
    if st.button("Fetch and simulate", key="mp_go", type="primary"):
        try:
            groups = sources.parse_space_groups(group)
            query = sources.MPQuery(
                elements=tuple(sources.parse_elements(elements)), chemsys=chemsys.strip(),
                spacegroup_number=groups[0] if groups else None,
                num_sites=None if tuple(sites) == (1, 200) else tuple(sites),
                is_stable={"any": None, "stable only": True, "unstable only": False}[stability],
                limit=int(limit))
        except sources.SourceError as exc:
            st.error(str(exc))
            return
        endpoint = os.environ.get("MP_API_ENDPOINT") or None

        def work(job, settings):
            job.stage = "querying the Materials Project"
            batch = sources.mp_search(query, key, endpoint=endpoint)
            return sources.simulate_and_store(batch, "materials_project", name, mode,
                                              command=f"dataset page: Materials Project {query}",
                                              job=job, **settings)

        _launch("Materials Project import", name, mode, work)


def _cif_tab() -> None:
    uploads = st.file_uploader("CIF files or zip archives of CIFs", type=["cif", "zip"],
                               accept_multiple_files=True, key="cif_files")
    folder = st.text_input("…or a folder of CIFs on the machine running the app", key="cif_folder")
    name, mode = _target("cif")
    if st.button("Import", key="cif_go", type="primary"):
        files = [(f.name, f.getvalue()) for f in uploads or []]
        if not files and not folder.strip():
            st.error("Upload CIF or zip files, or give a folder.")
            return

        def work(job, settings):
            job.stage = "reading CIFs"
            batch = sources.read_cif_files(files, folder=folder)
            return sources.simulate_and_store(batch, "cif", name, mode, job=job,
                                              command="dataset page: CIF import", **settings)

        _launch("CIF import", name, mode, work)


def _cod_tab() -> None:
    how = st.radio("Find entries", ["By COD ids", "Search"], horizontal=True, key="cod_mode")
    if how == "By COD ids":
        ids_text = st.text_area("COD ids", key="cod_ids", placeholder="1000041, 9008460")
    else:
        cols = st.columns(3)
        elements = cols[0].text_input("Elements (all present)", key="cod_elements")
        group = cols[1].text_input("Space group", key="cod_sg", placeholder="e.g. 225")
        limit = cols[2].number_input("Most entries", 1, 2000, 20, key="cod_limit")
    name, mode = _target("cod")
    if st.button("Fetch from the COD and simulate", key="cod_go", type="primary"):
        base = os.environ.get("COD_BASE_URL") or None
        try:
            if how == "By COD ids":
                ids = sources.cod_ids(ids_text)
                find = lambda: ids  # noqa: E731
            else:
                symbols, groups = sources.parse_elements(elements), sources.parse_space_groups(group)
                find = lambda: sources.cod_search(  # noqa: E731
                    symbols, groups[0] if groups else None, int(limit), base_url=base)
        except sources.SourceError as exc:
            st.error(str(exc))
            return

        def work(job, settings):
            job.stage = "asking the COD"
            found = find()
            job.stage = f"downloading {len(found)} CIFs"
            batch = sources.cod_fetch(found, base_url=base, progress=job.progress, cancel=job.cancel)
            return sources.simulate_and_store(batch, "cod", name, mode, job=job,
                                              command="dataset page: COD " + " ".join(found),
                                              **settings)

        _launch("COD import", name, mode, work)


def _manage_tab(name: str | None) -> None:
    if name is None:
        st.info("No dataset selected.")
        return
    left, right = st.columns(2)
    left.download_button("Download Parquet", lambda: sources.export_parquet(name),
                         file_name=f"{name}.parquet", key="exp_parquet")
    right.download_button("Download CSV (peak lists and labels)",
                          lambda: sources.export_csv(load_dataset(name)),
                          file_name=f"{name}.csv", mime="text/csv", key="exp_csv")
    st.caption("CSV: one row per pattern; 2θ, intensity, d, h, k, l as space-separated numbers.")
    protected = store.dataset_path(name) == store.bundled_dataset_path()
    sure = st.checkbox(f"I understand that '{name}' will be deleted for good", key="del_ok",
                       disabled=protected)
    if st.button("Delete dataset", key="del_go", disabled=protected or not sure):
        try:
            store.delete(name)
        except store.DatasetError as exc:
            st.error(str(exc))
            return
        st.session_state[FLASH] = f"Deleted dataset '{name}'."
        st.session_state.pop("ds_name", None)
        st.rerun()
    if protected:
        st.caption("The bundled dataset is protected: it cannot be deleted or appended to.")


# --------------------------------------------------------------------------- page

st.title("Datasets")
st.caption("What the models learn from: simulated powder patterns, one per crystal.")
if FLASH in st.session_state:
    st.success(st.session_state.pop(FLASH))
names = store.list_datasets()
if SELECT_NEXT in st.session_state and st.session_state[SELECT_NEXT] in names:
    st.session_state["ds_name"] = st.session_state.pop(SELECT_NEXT)
selected = st.selectbox("Dataset", names, key="ds_name") if names else None
if selected is None:
    st.warning("The store holds no dataset yet: build one below.")
else:
    browse(selected)

st.header("Build or grow a dataset")
running = st.session_state.get(JOB)
st.fragment(_job_panel, run_every=1.0 if running is not None else None)()
_show_result()
with st.expander("Where to compute"):
    st.number_input("Worker processes on this machine", 1, os.cpu_count() or 1,
                    min(2, os.cpu_count() or 1), key="ds_processes")
    st.text_input("Dask scheduler (optional)", key="ds_scheduler",
                  placeholder="tcp://10.0.0.5:8786, or 'local'",
                  help="Empty: worker processes here. 'local': a Dask cluster on this machine. "
                       "An address: an existing Dask cluster (start it with `dask scheduler` "
                       "and `dask worker`).")
tabs = st.tabs(["Synthetic", "Materials Project", "CIF files", "COD online", "Export / delete"])
with tabs[0]:
    _synthetic_tab()
with tabs[1]:
    _materials_project_tab()
with tabs[2]:
    _cif_tab()
with tabs[3]:
    _cod_tab()
with tabs[4]:
    _manage_tab(selected)
