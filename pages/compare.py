"""Compare models: metrics beside baselines, confusion matrices, per-class results and
training curves of several saved models on one labelled evaluation set."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import pandas as pd
import streamlit as st

from core import dataset as store
from core import evalsets, registry
from core.classify import LOW_CONFIDENCE, Classifier
from core.evaluation import (CONFIDENCE_LEVELS, confidence_curve, per_class_report,
                             per_system_accuracy, reliability, space_group_confusion,
                             system_confusion, top_k)
from core.intervals import INTERVAL_METRICS, RESAMPLES
from core.paths import PROJECT_ROOT
from ui import figures_compare as figs
from ui import state
from ui.cards import DIF_NOTE
from ui.compare_data import (MAX_UPLOAD_BYTES, SAMPLES, TEXT_COLUMNS, UploadError,
                             confidence_table, difference_table, interval_table, labelled_upload,
                             metrics_frame, style_metrics)
from ui.routing import ensure_app_navigation
from ui.tables import right_aligned_columns

ensure_app_navigation()

SHARED = PROJECT_ROOT.parent / "shared" / "data"
TEST_SPLIT = "Test split of a dataset"
UPLOAD = "Uploaded patterns (zip or files)"
RRUFF = "RRUFF, 222 real patterns"
RRUFF_DIF = "The same RRUFF minerals, from their DIF peak lists"
COD = "COD, 704 real structures, simulated"
MAX_SETS, MAX_EVALUATIONS = 6, 48


@st.cache_resource
def _cache() -> dict:
    """Evaluation sets, evaluations and their interval tables shared by all sessions, most
    recently used last."""
    return {"sets": OrderedDict(), "evaluations": OrderedDict(), "intervals": OrderedDict()}


def _remember(table: OrderedDict, key: tuple, value, limit: int):
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
    return value


def _mtime(path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _fail(message: str):
    st.error(message)
    st.stop()


def _test_split_set(models: list[registry.ModelMetadata]) -> tuple[tuple, evalsets.LabelledSet]:
    """The dataset's test rows that none of ``models`` trained on."""
    names = store.list_datasets()
    if not names:
        _fail("No dataset is available; build one on the Datasets page.")
    name = st.selectbox("Dataset", names, key="compare_dataset")
    trained = tuple(m.name for m in models if m.trained_on(name))
    key = ("test split", name, _mtime(store.dataset_path(name)), trained)
    sets = _cache()["sets"]
    if key not in sets:
        try:
            labelled = evalsets.held_out_test_set(state.load_dataset(name), models)
        except (store.DatasetError, ValueError, OSError) as exc:
            _fail(f"Dataset {name!r} cannot be split for testing: {exc}")
        if len(labelled) == 0:
            _fail(f"Dataset {name!r} has no test patterns that all the chosen models held out"
                  + (f" ({', '.join(trained)} trained on it with different splits)."
                     if len(trained) > 1 else "; it is too small to have a test split."))
        _remember(sets, key, labelled, MAX_SETS)
    if trained:
        st.caption(f"Patterns of {name!r} held out of training by {', '.join(trained)}: each "
                   "run's own test split" + (", rows common to all of them." if len(trained) > 1 else "."))
    return key, sets[key]


def _uploaded_set() -> tuple[tuple, evalsets.LabelledSet]:
    files = st.file_uploader(
        "A zip (or the files) of measured patterns with a labels.csv (pattern_file, "
        "sg_number), or RRUFF pattern + DIF pairs", accept_multiple_files=True,
        key="compare_upload")
    if not files:
        st.info(f"Upload a zip or pattern files to evaluate on (at most "
                f"{MAX_UPLOAD_BYTES // 2**20} MB in all).")
        st.stop()
    uploads = [(f.name, f.getvalue()) for f in files]
    digest = hashlib.sha256()
    for name, data in uploads:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    key = ("upload", digest.hexdigest())
    sets = _cache()["sets"]
    if key not in sets:
        label = uploads[0][0] if len(uploads) == 1 else f"{len(uploads)} uploaded files"
        try:
            with st.spinner("Reading the uploaded patterns…"):
                _remember(sets, key, labelled_upload(uploads, name=label), MAX_SETS)
        except UploadError as exc:
            _fail(f"The upload cannot be used: {exc}")
    return key, sets[key]


def _shared_set(kind: str) -> tuple[tuple, evalsets.LabelledSet]:
    key = (kind,)
    sets = _cache()["sets"]
    if key not in sets:
        try:
            if kind == RRUFF:
                with st.spinner("Reading 222 RRUFF patterns…"):
                    labelled = evalsets.labelled_folder(SHARED / "rruff_dev", name=RRUFF)
            elif kind == RRUFF_DIF:
                with st.spinner("Reading 222 DIF peak lists…"):
                    labelled = evalsets.labelled_folder(SHARED / "rruff_dev", name=RRUFF_DIF,
                                                        column="structure_file")
            else:
                bar = st.progress(0.0, text="Simulating the COD structures (about a minute, once)…")
                labelled = evalsets.simulated_cif_folder(
                    SHARED / "cod_cifs", name=COD,
                    progress=lambda done, total: bar.progress(
                        done / max(total, 1), text=f"Simulating COD structures: {done}/{total}"))
                bar.empty()
        except Exception as exc:  # unreadable shared data must not crash the page
            _fail(f"The evaluation set {kind!r} cannot be read: {exc}")
        if len(labelled) == 0:
            _fail(f"The evaluation set {kind!r} holds no labelled pattern.")
        _remember(sets, key, labelled, MAX_SETS)
    return key, sets[key]


def _evaluation_key(name: str, set_key: tuple) -> tuple:
    return name, _mtime(registry.model_path(name) / registry.MODEL_FILE), set_key


def _interval_tables(evaluations: list[evalsets.ModelEvaluation], set_key: tuple,
                     metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each model's ``metric`` with its bootstrap interval, and the paired differences of
    every pair; cached, as the pairs grow with the square of the number of models."""
    key = (tuple(_evaluation_key(e.model, set_key) for e in evaluations), metric)
    tables = _cache()["intervals"]
    if key not in tables:
        with st.spinner("Resampling the patterns…"):
            _remember(tables, key, (interval_table(evaluations, metric),
                                    difference_table(evaluations, metric)), MAX_EVALUATIONS)
    return tables[key]


def _evaluations(names: list[str], set_key: tuple,
                 labelled: evalsets.LabelledSet) -> list[evalsets.ModelEvaluation]:
    """Each model evaluated on the set, from the cache when the model file is unchanged."""
    cache = _cache()["evaluations"]
    keys = [_evaluation_key(name, set_key) for name in names]
    missing = [key for key in keys if key not in cache]
    bar = st.progress(0.0) if missing else None
    for done, key in enumerate(missing):
        name = key[0]
        bar.progress(done / len(missing),
                     text=f"Evaluating {name} on {labelled.name} ({len(labelled)} patterns)…")
        try:
            loaded = state.load_classifier(name)
            network = Classifier(loaded.model, loaded.metadata, loaded.adjust_prior, index=False)
            evaluation = evalsets.evaluate_model(network, labelled)
        except registry.ModelError as exc:
            st.error(f"Model {name!r} cannot be loaded: {exc}")
            continue
        except Exception as exc:  # a model that does not fit the set is reported, not raised
            st.error(f"Model {name!r} cannot be evaluated on {labelled.name}: {exc}")
            continue
        _remember(cache, key, evaluation, MAX_EVALUATIONS)
    if bar is not None:
        bar.empty()
    return [cache[key] for key in keys if key in cache]


def _figure(figure, key: str, caption: str) -> None:
    st.plotly_chart(figure, width="stretch", key=key)
    st.caption(caption)
    st.download_button("Download figure (HTML)", key=f"{key}_html", mime="text/html",
                       data=lambda: figure.to_html(include_plotlyjs="cdn"),
                       file_name=f"{key.removeprefix('compare_')}.html")


st.title("Compare models")
st.caption("Evaluate saved models on the same labelled patterns and compare them with each "
           "other and with naive baselines. The networks are compared on their own: the "
           "Classify page also indexes each pattern and re-weights by its cell, which takes "
           "about a second a pattern (the README gives both sets of numbers).")

usable = {meta.name: meta for meta in state.usable_models()}
names = list(usable)
if not names:
    _fail("No usable model found: the bundled model is missing and no training run finished.")
chosen = st.multiselect("Models", names, default=names[:2], key="compare_models",
                        help="Finished training runs and the bundled model.")
if not chosen:
    st.info("Pick the models to compare.")
    st.stop()
if len(chosen) == 1:
    st.info("Pick a second model to compare side by side.")

options = [TEST_SPLIT, UPLOAD] + [kind for kind, folder in (
    (RRUFF, "rruff_dev"), (RRUFF_DIF, "rruff_dev"), (COD, "cod_cifs")) if (SHARED / folder).is_dir()]
kind = st.radio("Evaluation set", options, key="compare_set", horizontal=True)
if kind == RRUFF_DIF:
    st.caption(DIF_NOTE)
if kind == TEST_SPLIT:
    set_key, labelled = _test_split_set([usable[name] for name in chosen])
elif kind == UPLOAD:
    set_key, labelled = _uploaded_set()
else:
    set_key, labelled = _shared_set(kind)

evaluations = _evaluations(chosen, set_key, labelled)
if not evaluations:
    st.stop()
models = [e.model for e in evaluations]
on_set = f"on {labelled.name}"

st.header("Metrics")
frame = metrics_frame(evaluations)
st.dataframe(style_metrics(frame, models), width="stretch",
             column_config=right_aligned_columns(TEXT_COLUMNS))
st.caption(f"Percentages {on_set}; best model value of each column highlighted. Baselines "
           "always predict the most common true class, or guess with the set's class "
           "frequencies (expected values); “—” where a baseline has no simple value.")
if frame.loc[models, SAMPLES].nunique() > 1:
    st.warning("The models could use different numbers of patterns (some patterns did not "
               "fit a model's 2θ range); baselines use the first model's patterns.")
st.download_button("Download metrics (CSV)", frame.to_csv().encode(), mime="text/csv",
                   file_name="metrics.csv", key="compare_metrics_csv")
if labelled.skipped:
    with st.expander(f"{len(labelled.skipped)} files of the set were skipped"):
        st.dataframe(pd.DataFrame(labelled.skipped, columns=["file", "reason"]),
                     width="stretch", hide_index=True)
st.caption("Figures download as interactive HTML (plotly.js from its CDN); PNG export would "
           "need kaleido and a Chrome browser, which the app does not install.")

st.header("How sure are these numbers?")
interval_metric = st.selectbox("Metric", list(INTERVAL_METRICS), key="compare_interval_metric",
                               format_func=INTERVAL_METRICS.get)
spread, pairs = _interval_tables(evaluations, set_key, interval_metric)
st.dataframe(spread, width="stretch", column_config=right_aligned_columns(spread.columns))
st.caption(f"Each model's {INTERVAL_METRICS[interval_metric]} {on_set}, with its 95 % bootstrap "
           "interval: the range the value would likely take on another set of patterns like "
           f"this one ({RESAMPLES:,} resamples of the patterns). Small sets give wide intervals.")
if len(evaluations) > 1:
    if pairs.empty:
        st.info("No two models were scored on the same patterns, so they cannot be paired.")
    else:
        st.dataframe(pairs, width="stretch", hide_index=True,
                     column_config=right_aligned_columns(pairs.columns[2:5]))
        st.caption("Each pair of models: the first's value minus the second's, in points, with "
                   "a paired 95 % interval (the same patterns resampled for both, which is "
                   "narrower than the intervals above suggest). Where the interval contains 0, "
                   "this set cannot tell the two models apart.")

st.header("Per crystal system")
_figure(figs.per_system_accuracy_figure(
    {e.model: per_system_accuracy(e.labels, e.probabilities) for e in evaluations}),
    "compare_systems", f"Crystal-system accuracy within each true crystal system {on_set}; "
    "gaps are systems absent from the set.")

st.header("Confidence")
level = st.radio("Top choice of", list(CONFIDENCE_LEVELS), horizontal=True,
                 key="compare_confidence_level", format_func=lambda v: v.replace("_", " "))
left, right = st.columns(2)
with left:
    _figure(figs.confidence_curve_figure(
        {e.model: confidence_curve(e.labels, e.probabilities, level) for e in evaluations},
        LOW_CONFIDENCE if level == "space_group" else None),
        "compare_confidence", f"Accuracy of each model's most confident predictions {on_set}: "
        "keep the patterns whose top probability is highest, and read how often the top "
        "choice is right against the share kept." + (
            f" Diamonds: the Classify page's line, top probability {LOW_CONFIDENCE:.0%}."
            if level == "space_group" else ""))
with right:
    _figure(figs.reliability_figure(
        {e.model: reliability(e.labels, e.probabilities, level=level) for e in evaluations}),
        "compare_reliability", "Calibration: how often the top choice is right, against its "
        "probability, in bins of 10 %. Points below the diagonal are over-confident.")
flags = confidence_table(evaluations, LOW_CONFIDENCE)
st.dataframe(flags, width="stretch", column_config=right_aligned_columns(flags.columns))
st.caption(f"Per model {on_set}: the share of patterns the Classify page flags as low "
           f"confidence (top space-group probability below {LOW_CONFIDENCE:.0%}), space-group "
           "accuracy with and without the flag, and the expected calibration error (the "
           "mean gap between probability and accuracy, 0 when calibrated).")

st.header("Confusion matrices")
detail = st.selectbox("Model", models, key="compare_detail_model")
evaluation = evaluations[models.index(detail)]
title = f"{detail} {on_set}"
left, right = st.columns(2)
systems = system_confusion(evaluation.labels, evaluation.probabilities)
with left:
    _figure(figs.system_confusion_figure(systems, False, f"{title}: counts"), "compare_cs_counts",
            "Crystal-system confusion: rows are true systems, columns predicted ones.")
with right:
    _figure(figs.system_confusion_figure(systems, True, f"{title}: row-normalised"),
            "compare_cs_normalised", "The same matrix as fractions of each true system "
            "(the diagonal is each system's recall).")
present = st.checkbox("Show only the space groups present (true or predicted)", value=True,
                      key="compare_present_only")
_figure(figs.space_group_confusion_figure(
    space_group_confusion(evaluation.labels, evaluation.probabilities), present, title),
    "compare_sg_confusion", "Space-group confusion, row-normalised with a logarithmic colour "
    "scale; drag to zoom, hover for symbols and counts.")
_figure(figs.prediction_scatter_figure(evaluation.labels, top_k(evaluation.probabilities, 1)[:, 0],
                                       title), "compare_scatter",
        "Predicted against true space-group number; points on the dashed diagonal are correct, "
        "larger markers hold more patterns.")

st.header("Per space group")
report = per_class_report(evaluation.labels, evaluation.probabilities)
st.dataframe(report, width="stretch", hide_index=True, column_config={
    column: st.column_config.NumberColumn(format="percent")
    for column in ("precision", "recall", "f1")})
st.caption(f"{title}: precision, recall and F1 of each space group, worst first; click a "
           "column header to sort.")
st.download_button("Download per-class table (CSV)", report.to_csv(index=False).encode(),
                   mime="text/csv", file_name=f"per_class_{detail}.csv", key="compare_per_class_csv")

st.header("Training curves")
metric = st.selectbox("Metric", list(figs.HISTORY_METRICS), index=1, key="compare_history_metric",
                      format_func=figs.HISTORY_METRICS.get)
histories = {}
for name in models:
    try:
        histories[name] = registry.load_history(name)
    except (OSError, ValueError, registry.ModelError) as exc:
        st.warning(f"Model {name!r}: the training history cannot be read ({exc}).")
_figure(figs.training_curves_figure(histories, metric), "compare_history",
        "Training (solid) and validation (dashed) curves per epoch of the chosen models.")
