"""Classify patterns: measured powder patterns in, ranked space groups out.

A thin view: uploads are unpacked and classified by :mod:`ui.classify_data` through
``Classifier.classify_sources`` (the CLI's code path); figures come from
:mod:`ui.figures_classify`.
"""

import hashlib

import streamlit as st

from core.classify import LOW_CONFIDENCE, NETWORK_ONLY, RAW_OUTPUT, Classifier
from core.examples import example_files, read_examples
from core.explain import peak_influence
from core.grid import CU_KA, WAVELENGTHS
from core.absences import group_evidence
from core.indexing import RERANK_M20, index_pattern
from core.paths import BUNDLED_MODEL
from core.peaks import pattern_peaks
from core.preprocess import BACKGROUND_METHODS, Preprocessing, find_peaks
from core.registry import ModelError
from core.symmetry import by_number
from ui import classify_data as data
from ui.cards import external_confidence
from ui.figures_classify import (confusion_figure, influence_figure, pattern_figure, systems_figure,
                                 top_groups_figure)
from ui.state import load_classifier, usable_models

from ui.routing import ensure_app_navigation

ensure_app_navigation()

MAX_ERRORS_SHOWN = 20
BACKGROUND_LABELS = {"none": "none", "snip": "SNIP (peak clipping)",
                     "arpls": "asymmetric least squares (arPLS)", "modpoly": "modified polynomial"}
EXAMPLE_SETS = {
    "example_rruff": ("RRUFF XY + DIF", ("rruff_xy", "dif")),
    "example_dif": ("DIF only", ("dif",)),
    "example_xy": ("Plain .xy", ("xy",)),
    "example_all": ("All examples", ("rruff_xy", "dif", "xy")),
}


def _wavelength_label(key: str) -> str:
    element, rest = key[:2], key[2:]
    line = "Kα" + rest[2:] if rest.startswith("Ka") else rest
    return f"{element} {line} ({WAVELENGTHS[key]:g} Å)"


WAVELENGTH_CHOICES = {"file": "As stated in each file (else Cu Kα)",
                      **{key: _wavelength_label(key) for key in WAVELENGTHS}, "custom": "Custom"}

st.title("Classify patterns")
st.markdown("Upload measured powder patterns and get the most probable **space groups** and "
            "**crystal systems**, ranked by a trained model.")

models = usable_models()
if not models:
    st.error("No trained model is available. Train one on the **Training** page first.")
    st.stop()
names = [m.name for m in models]

# ----------------------------------------------------------------------------- settings
with st.sidebar:
    st.header("Classification settings")
    model_name = st.selectbox(
        "Model", names, key="classify_model",
        format_func=lambda n: f"{n} (bundled)" if n == BUNDLED_MODEL else n)
try:
    loaded = load_classifier(model_name)
except ModelError as exc:
    st.error(f"Model {model_name!r} cannot be loaded: {exc}")
    st.stop()
classifier = loaded
if loaded.adjust_prior:
    with st.sidebar:
        if not st.toggle("Weight by real-world frequencies", value=True, key="classify_prior",
                         help="Re-weight the network's probabilities from the space-group "
                              "frequencies of its training data to those of real crystals. "
                              "Turn off to see the raw network output."):
            classifier = Classifier(loaded.model, loaded.metadata, adjust_prior=False)
grid = classifier.grid
defaults = classifier.default_preprocessing

with st.sidebar:
    choice = st.selectbox("X-ray wavelength", list(WAVELENGTH_CHOICES), key="classify_wavelength",
                          format_func=WAVELENGTH_CHOICES.get,
                          help="Patterns are converted to the model's wavelength "
                               f"({classifier.metadata.wavelength:g} Å) through d-spacings.")
    wavelength = None if choice == "file" else WAVELENGTHS.get(choice)
    if choice == "custom":
        wavelength = st.number_input("Wavelength (Å)", min_value=0.1, max_value=5.0,
                                     value=CU_KA, step=0.0001, format="%.5f",
                                     key="classify_custom_wavelength")
    full_range = (float(grid.start), float(grid.stop))
    crop = st.slider("2θ range (°, at the model's wavelength)", min_value=full_range[0],
                     max_value=full_range[1], value=defaults.two_theta_range or full_range,
                     step=0.5, key=f"classify_range_{model_name}")
    background = st.selectbox("Background subtraction", list(BACKGROUND_METHODS),
                              index=list(BACKGROUND_METHODS).index(defaults.background),
                              format_func=BACKGROUND_LABELS.get, key="classify_background",
                              help="Estimated with pybaselines and removed before scaling.")
    smoothing = st.number_input("Smoothing window (points, 0 = off)", min_value=0,
                                max_value=101, value=int(defaults.smoothing), step=1,
                                key="classify_smoothing",
                                help="Savitzky–Golay filter of order 2 over this many points.")
    preprocessing = Preprocessing(
        background=background, smoothing=int(smoothing),
        two_theta_range=None if tuple(crop) == full_range else tuple(crop))
    use_cell = st.toggle("Re-rank with the indexed cell", value=True, key="classify_rerank",
                         help="Index each pattern (about a second per file) and, where the "
                              f"cell is convincing (M20 >= {RERANK_M20:g}), favour the space "
                              "groups of its lattice whose systematic absences explain its "
                              "lines. Turn off for the network alone (much faster for many "
                              "files); the README gives what each scores on real patterns.")
    st.caption(f"Model grid: {grid.start:g}–{grid.stop:g}° in steps of {grid.step:g}° "
               f"({classifier.metadata.input_type} input).")

# ----------------------------------------------------------------------------- inputs
limit_mb = st.get_option("server.maxUploadSize")
uploaded = st.file_uploader(
    "Pattern files, or a zip of them", accept_multiple_files=True, key="classify_upload",
    help="Drag and drop one or many files. A zip may hold a labels.csv (columns file, sg_number) "
         "with the true space groups.")
st.caption(f"Up to {limit_mb} MB per file; a zip may hold up to {data.MAX_ZIP_MEMBERS} files "
           f"and {data.MAX_ZIP_TOTAL_BYTES // 2**20} MB unpacked. Supported: {data.FORMATS_TEXT} "
           "Ground truth, when known, comes from a DIF with the same RRUFF id (R000000) as a "
           "profile, a labels.csv in the zip, or the DIF/CIF itself.")

st.write("**No files at hand? Try an example** (simulated by this project from pymatgen's "
         "bundled LiFePO4, Si and TiO2 structures):")


def load_examples(formats: tuple[str, ...]) -> None:
    st.session_state["classify_examples"] = [f.name for f in example_files() if f.format in formats]


for column, (key, (label, formats)) in zip(st.columns(len(EXAMPLE_SETS)), EXAMPLE_SETS.items()):
    column.button(label, key=key, width="stretch", on_click=load_examples, args=(formats,))
chosen_examples = st.session_state.get("classify_examples", [])
if chosen_examples:
    left, right = st.columns([4, 1])
    left.caption("Example files loaded: " + ", ".join(chosen_examples))
    right.button("Clear examples", key="example_clear", on_click=load_examples, args=((),))

files = [(f.name, f.getvalue()) for f in uploaded or []]
files += read_examples(chosen_examples) if chosen_examples else []
if not files:
    st.info("Upload pattern files above, or click an example button.")
    st.stop()


# ----------------------------------------------------------------------------- classify
def classify(files, wavelength, preprocessing, use_cell) -> data.UploadResult:
    """Classify, reusing the last result while the files and settings are unchanged."""
    digest = hashlib.sha256(repr((model_name, id(loaded), classifier.adjust_prior, wavelength,
                                  preprocessing.to_dict(), use_cell)).encode())
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    cached = st.session_state.get("classify_result")
    if cached and cached[0] == digest.hexdigest():
        return cached[1]
    spinner = f"Classifying {len(files)} file{'s' * (len(files) != 1)}…"
    if use_cell:
        spinner = (f"Classifying and indexing {len(files)} file{'s' * (len(files) != 1)} (about "
                   "a second each; switch off re-ranking in the sidebar for the network "
                   "alone)…")
    with st.spinner(spinner):
        result = data.classify_uploads(classifier, files, 5, wavelength, preprocessing, use_cell)
    st.session_state["classify_result"] = (digest.hexdigest(), result)
    return result


try:
    result = classify(files, wavelength, preprocessing, use_cell)
except Exception as exc:  # the app stays up whatever the model or a file does
    st.error(f"Classification failed: {exc.__class__.__name__}: {exc}")
    st.stop()

good = [i for i, p in enumerate(result.predictions) if not p.error]
st.header("Results")
st.write(f"**{len(good)}** of {len(result.predictions)} file(s) classified with model "
         f"**{model_name}**.")
for prediction in result.errors[:MAX_ERRORS_SHOWN]:
    st.error(prediction.error)
if len(result.errors) > MAX_ERRORS_SHOWN:
    st.error(f"… and {len(result.errors) - MAX_ERRORS_SHOWN} more files could not be "
             "classified (see the status column of the table).")
if result.label_files:
    st.caption("Used as ground truth only (not classified): " + ", ".join(result.label_files))

# ----------------------------------------------------------------------------- summary
metrics = data.summary(result)
if metrics is not None:
    st.subheader("Accuracy over this upload")
    columns = st.columns(4)
    columns[0].metric("Files with ground truth", metrics.n)
    columns[1].metric("Space group top-1", f"{metrics.top1:.0%}")
    columns[2].metric("Space group top-5", f"{metrics.top5:.0%}")
    columns[3].metric("Crystal system", f"{metrics.system_accuracy:.0%}")
    systems = data.confusion(result)
    groups = data.space_group_confusion(result)
    if systems is not None and groups is not None:
        tab_systems, tab_groups = st.tabs(["Crystal-system confusion", "Space-group confusion"])
        with tab_systems:
            st.plotly_chart(confusion_figure(*systems), width="stretch", key="confusion_systems")
            st.caption("Files by true (rows) and predicted (columns) crystal system.")
        with tab_groups:
            st.plotly_chart(confusion_figure(*groups), width="stretch", key="confusion_groups")
            st.caption("Files by true and top-1 predicted space group, for the groups that occur.")

# ----------------------------------------------------------------------------- table
st.subheader("All files")
table = data.results_table(result)
st.dataframe(data.display_table(table), width="stretch", hide_index=True, key="classify_table")
st.caption("Status (ok, or why the file could not be classified), top-1 space group per file, "
           "and the best crystal system (its space groups' probabilities summed, so it can "
           "differ from the top group's), with the ground truth where known. The CSV has an "
           "error column instead of status; the JSON files use the schema of "
           "`python -m core classify --json`.")
downloads = st.columns(3)
downloads[0].download_button("Download CSV", table.to_csv(index=False), "predictions.csv",
                             "text/csv", key="download_csv")
downloads[1].download_button("Download JSON lines", data.json_lines(result.predictions),
                             "predictions.jsonl", "application/x-ndjson", key="download_jsonl")
downloads[2].download_button("Download JSON", data.json_list(result.predictions),
                             "predictions.json", "application/json", key="download_json")

# ----------------------------------------------------------------------------- one file
if not good:
    st.stop()
st.subheader("Details")
index = st.selectbox("File", good, key="classify_detail",
                     format_func=lambda i: result.predictions[i].file)
prediction, truth = result.predictions[index], result.truths[index]
pattern, prepared = prediction.pattern, prediction.preprocessed
source = "set above" if wavelength else "from the file" if pattern.wavelength else "Cu Kα assumed"
st.caption(f"Read as **{pattern.kind}**, {pattern.two_theta.size} "
           f"{'peaks' if pattern.is_sticks else 'points'}; wavelength "
           f"{wavelength or pattern.wavelength or CU_KA:g} Å ({source}); 2θ covered on the "
           f"model grid: {prepared.coverage[0]:g}–{prepared.coverage[1]:g}°.")
if prediction.indexed:
    found = prediction.cell
    st.caption("Re-ranked with the indexed cell: " + (
        "no cell was found, so the network's ranking stands." if found is None else
        f"best cell {found.bravais_lattice}, M20 = {found.m20:.1f}, " + (
            "so groups of that lattice whose absences explain its lines are favoured."
            if found.m20 >= RERANK_M20 else
            f"below {RERANK_M20:g}, so the network's ranking stands.")))
top_number, top_symbol, top_probability = prediction.space_groups[0]
if prediction.low_confidence:
    st.warning(f"Low confidence: the best space group, {top_number} {top_symbol}, has only "
               f"{top_probability:.1%} probability (below {LOW_CONFIDENCE:.0%}). Treat the "
               "ranking as a shortlist, not an answer.")
# As benchmarks/accuracy.py files it: indexed, network only, or raw output (not indexed).
prior = classifier.adjust_prior or not loaded.adjust_prior
suffix = {(True, True): "", (True, False): NETWORK_ONLY, (False, False): RAW_OUTPUT}.get(
    (prior, use_cell))  # raw output with indexing is not benchmarked
trust = None if suffix is None else data.trust_note(
    external_confidence(classifier.metadata.name + suffix), prediction.low_confidence)
if trust:
    st.caption(trust)
if truth is not None:
    rank = data.truth_rank(prediction, truth)
    truth_text = f"{truth} {by_number(truth).symbol} ({by_number(truth).crystal_system})"
    where = result.label_sources.get(prediction.file, "the upload")
    if rank == 1:
        st.success(f"Correct: the true space group {truth_text} (from {where}) is ranked first.")
    elif rank:
        st.warning(f"Wrong at top-1: the true space group {truth_text} (from {where}) is "
                   f"ranked {rank}.")
    else:
        st.error(f"Wrong: the true space group {truth_text} (from {where}) is not in the top "
                 f"{len(prediction.space_groups)}.")

left, right = st.columns(2)
with left:
    st.plotly_chart(top_groups_figure(prediction, truth), width="stretch", key="detail_groups")
    st.caption("The five most probable space groups (number and Hermann–Mauguin symbol)"
               + ("; the true one in green." if truth is not None else "."))
with right:
    st.plotly_chart(systems_figure(prediction, truth), width="stretch", key="detail_systems")
    st.caption("Crystal-system probability: the sum over its space groups.")
st.dataframe(data.top_table(prediction), width="stretch", hide_index=True, key="detail_table")
peaks = find_peaks(prepared.profile, grid)
st.plotly_chart(pattern_figure(prediction, grid, peaks), width="stretch", key="detail_pattern")
st.caption(f"Top: the pattern as measured (after wavelength conversion, cropping and smoothing) "
           f"with the estimated background. Bottom: the model's input on its grid, with the "
           f"{len(peaks)} peaks found marked.")

# ----------------------------------------------------------------------------- cell
st.markdown("#### Index this pattern")
st.caption("Looks for a unit cell, cubic to triclinic, that explains the positions of the "
           "first 20 peaks, as an indexing program would: the crystallographer's own check on "
           "the network's crystal system. It takes a second or a few. On real RRUFF patterns, a "
           "best cell with a figure of merit M20 of 20 or more had the right crystal family "
           "89 % of the time; lower values deserve doubt.")
measured_wavelength = wavelength or pattern.wavelength or CU_KA
cell_key = (prediction.file, hashlib.sha256(pattern.two_theta.tobytes()).hexdigest(),
            measured_wavelength)
if st.button("Find the unit cell", key="classify_index"):
    with st.spinner("Indexing…"):
        st.session_state["classify_cells"] = (
            cell_key, index_pattern(pattern_peaks(pattern), measured_wavelength))
cells = st.session_state.get("classify_cells")
if cells and cells[0] == cell_key:
    solutions = cells[1]
    st.write(data.indexing_verdict(solutions, prediction))
    if solutions:
        st.dataframe(data.cells_table(solutions), width="stretch", hide_index=True,
                     key="classify_cells_table")
        lattice = solutions[0].bravais_lattice
        evidence = group_evidence(solutions[0], measured_wavelength)
        st.write(data.absences_verdict(evidence, solutions[0]))
        st.markdown(f"Space groups of lattice **{lattice}** that the network finds most probable:")
        st.dataframe(data.groups_of_lattice(prediction, solutions[0], 8, evidence),
                     width="stretch", hide_index=True, key="classify_lattice_groups")
        with st.expander(f"Lines indexed by the best cell ({lattice})"):
            st.dataframe(data.indexed_lines_table(solutions[0]), width="stretch",
                         hide_index=True, key="classify_lines_table")
        st.caption("Cells are ranked by M20 (de Wolff), favouring higher symmetry and "
                   "penalising unindexed lines; the lattice symbol is the Bravais lattice "
                   "(S: one face centred). Triclinic cells are searched only when no cell "
                   "of higher symmetry indexes every line convincingly.")

# ----------------------------------------------------------------------------- why
st.markdown("#### Which peaks decided it?")
if classifier.metadata.input_type != "grid":
    st.caption("Peak influence needs a model that reads profiles; this one reads peak lists.")
    st.stop()
explained = st.selectbox("Space group to explain", [n for n, _, _ in prediction.space_groups],
                         key="classify_explain_group",
                         format_func=lambda n: f"{n} {by_number(n).symbol}")
try:
    influences = peak_influence(classifier, prepared.profile, explained)
except ValueError as exc:
    st.caption(f"Peak influence is not available for this file: {exc}")
    st.stop()
if not influences:
    st.caption("No peak stands out of this pattern's model input, so there is nothing to weigh.")
    st.stop()
label = f"{explained} {by_number(explained).symbol}"
st.plotly_chart(influence_figure(prepared.profile, grid, influences, label), width="stretch",
                key="detail_influence")
st.caption("Each peak of the model input is taken out in turn (bridged by a straight line "
           f"from foot to foot) and the model asked again. Green peaks support {label}: "
           "without them its probability falls; red ones speak against it. Overlapping "
           "peaks are taken out together, so the effects do not add up.")
st.dataframe(data.influence_table(influences), width="stretch", hide_index=True,
             key="detail_influence_table")
