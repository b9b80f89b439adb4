"""Training: train a model in the browser, watch it learn live, and manage the saved runs.

Training runs in a background thread owned by a process-wide :class:`core.jobs.JobRegistry`;
this page only reads the job's record and redraws it every second, so clicks, page switches
and browser refreshes neither stop the run nor start a second one.
"""

import inspect
import json
from datetime import datetime, timezone
from functools import partial

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core import dataset as store
from core import registry
from core.augmentation import Augmentation
from core.jobs import Job, JobBusyError, JobRegistry
from core.models import BUILDERS
from core.rendering import DEFAULT_PADDED_LENGTH
from core.training import TrainingConfig
from ui.cards import metrics_table
from ui.figures_training import (accuracy_figure, batch_figure, learning_rate_figure,
                                 loss_figure, system_confusion_figure)

from ui.routing import ensure_app_navigation

ensure_app_navigation()

DEFAULTS = {"train_dataset": "default", "train_input_type": "grid", "train_kind": "resnet1d",
            "train_epochs": 10, "train_steps": 0, "train_batch": 128, "train_lr": 1e-3,
            "train_weighting": "sqrt", "train_augment": True, "train_strength": 1.0,
            "train_validation": 0.1, "train_test": 0.1, "train_split_seed": 0,
            "train_group": False, "train_seed": 0, "train_patience": 8,
            "train_padded_length": DEFAULT_PADDED_LENGTH, "train_hp": "{}",
            "train_schedule": "plateau", "train_init": "", "train_more": [],
            "train_lattice_weight": 0.0}
# A run that finishes in a couple of minutes on two CPU cores.
QUICK_DEMO = dict(DEFAULTS, train_epochs=4, train_steps=25, train_batch=64)
INPUT_TYPES = {"grid": "Profile on a fixed 2θ grid (recommended)",
               "padded": "Zero-padded raw peak arrays (original report)"}
WEIGHTINGS = {"sqrt": "1/√frequency", "balanced": "1/frequency", "none": "none"}
SCHEDULES = {"plateau": "halve on a plateau", "cosine": "cosine decay over the run"}
SAVED = "train_saved_settings"  # the form's last values; not a widget key


@st.cache_resource
def job_registry() -> JobRegistry:
    """The app's one job registry: survives reruns, page switches and browser refreshes."""
    return JobRegistry(max_concurrent=1)


def _suggest_name() -> str:
    kind = st.session_state.get("train_kind", DEFAULTS["train_kind"])
    return f"{kind}-{datetime.now():%Y%m%d-%H%M%S}"


def _apply(preset: dict) -> None:
    st.session_state.update(preset)
    st.session_state["train_name"] = _suggest_name()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _build_config() -> TrainingConfig:
    """The settings on the page as a TrainingConfig; ValueError names the bad field."""
    state = st.session_state
    if not state.get("train_dataset"):
        raise ValueError("Dataset: there is none; create one on the Datasets page first")
    try:
        hyperparameters = json.loads(state["train_hp"] or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"Builder hyperparameters: not valid JSON ({exc})") from exc
    if not isinstance(hyperparameters, dict):
        raise ValueError("Builder hyperparameters: write a JSON object such as "
                         '{"width": 16}')
    if state["train_validation"] + state["train_test"] >= 0.9:
        raise ValueError("Split: validation and test together must leave at least 10% "
                         "of the patterns for training")
    strength = state["train_strength"] if state["train_augment"] else 0.0
    return TrainingConfig(
        name=registry.check_name(state["train_name"].strip()), kind=state["train_kind"],
        input_type=state["train_input_type"],
        padded_length=int(state.get("train_padded_length", DEFAULT_PADDED_LENGTH)),
        epochs=int(state["train_epochs"]), steps_per_epoch=int(state["train_steps"]) or None,
        batch_size=int(state["train_batch"]), learning_rate=float(state["train_lr"]),
        class_weighting=state["train_weighting"], augmentation=Augmentation(strength=strength),
        validation=state["train_validation"], test=state["train_test"],
        group_by_formula=state["train_group"], split_seed=int(state["train_split_seed"]),
        seed=int(state["train_seed"]), early_stopping_patience=int(state["train_patience"]),
        report_every=1 if 0 < state["train_steps"] <= 50 else 5,
        lr_schedule=state.get("train_schedule", "plateau"), hyperparameters=hyperparameters,
        initial_model=state.get("train_init") or None,
        lattice_loss_weight=float(state.get("train_lattice_weight", 0.0)))


def _start() -> None:
    """Train button callback: start the job, or say why not."""
    try:
        config = _build_config()
        state = st.session_state
        job_registry().start([state["train_dataset"], *state.get("train_more", [])], config)
    except JobBusyError as exc:
        st.session_state["train_feedback"] = ("warning", str(exc))
    except (ValueError, registry.ModelError) as exc:
        st.session_state["train_feedback"] = ("error", f"Cannot start training: {exc}")
    else:
        st.session_state["train_feedback"] = ("success", f"Started run '{config.name}'.")
        st.session_state["train_name"] = _suggest_name()


def _progress(job: Job) -> None:
    event = job.latest()
    if event is None:
        st.progress(0.0, text="Loading the dataset, rendering validation profiles and "
                               "building the model…")
        return
    batches, epochs = max(event["batches"], 1), max(event["epochs"], 1)
    epoch_index = event["epoch"] - 1 if event["type"] == "epoch" else event["epoch"]
    done = min((epoch_index * batches + event["batch"]) / (epochs * batches), 1.0)
    line = (f"Epoch {epoch_index + 1} of {epochs} · batch {event['batch']} of {batches} · "
            f"{_duration(job.elapsed())} elapsed · ETA {_duration(event['eta'])} · "
            f"learning rate {event['lr']:.1e}")
    st.progress(done, text=line)
    if done >= 1.0:
        st.caption("Evaluating on the test split and saving the run…")


@st.fragment(run_every=1.0)
def _live(name: str) -> None:
    """Redraws the running job from its record; triggers a full rerun when it ends."""
    job = job_registry().get(name)
    if job is None:
        return
    if not job.active:
        st.rerun()
    st.subheader(f"Training '{job.name}' on '{job.dataset_name}'")
    _progress(job)
    if job.stop_requested:
        st.info("Stopping after the current batch; the best weights so far will be saved.")
    else:
        st.button("Stop", key="train_stop", on_click=job.request_stop, type="primary",
                  help="End training after the current batch and keep the best weights.")
    _curves(job.epoch_history(), job.batch_history(), job.config.lr_schedule)


def _curves(history: pd.DataFrame, batches: pd.DataFrame | None = None,
            schedule: str = "plateau") -> None:
    left, right = st.columns(2)
    left.plotly_chart(loss_figure(history), width="stretch")
    left.caption("Cross-entropy per epoch on the augmented training batches and the fixed "
                 "validation profiles.")
    right.plotly_chart(accuracy_figure(history), width="stretch")
    right.caption("Top-1 (solid) and top-5 (dashed) space-group accuracy per epoch.")
    if batches is not None:
        left.plotly_chart(batch_figure(batches), width="stretch")
        left.caption("Running training loss reported within each epoch, with an "
                     "exponential moving average.")
    right.plotly_chart(learning_rate_figure(batches, history), width="stretch")
    right.caption("Learning rate: " + ("a short warm-up, then cosine decay over the run."
                                       if schedule == "cosine" else
                                       "ReduceLROnPlateau halves it when validation loss stalls."))


def _result(job: Job) -> None:
    """What a finished job produced: its status, error or evaluation."""
    took = _duration(job.elapsed())
    if job.status == "failed":
        st.error(f"Run '{job.name}' failed after {took}: {job.error}")
        with st.expander("Traceback"):
            st.code(job.details or job.error, language=None)
        return
    if job.status == "stopped":
        st.info(f"Run '{job.name}' was stopped after {took}; the best weights so far were "
                "saved with status 'stopped'.")
    else:
        st.success(f"Run '{job.name}' finished in {took}.")
    evaluation = job.evaluation or {}
    table = metrics_table(evaluation.get("metrics", {}))
    if table.empty:
        st.info("The dataset's test split is empty, so this run has no test metrics.")
    else:
        st.caption(f"Percent, on the {evaluation.get('set', 'test split')} "
                   f"({evaluation['metrics']['n']} patterns), beside two baselines.")
        st.dataframe(table, width="stretch")
    if evaluation.get("system_confusion"):
        st.plotly_chart(system_confusion_figure(evaluation["system_confusion"]), width="stretch")
        st.caption("Rows: true crystal system; colour: share of the row; numbers: patterns.")
    history = job.history if job.history is not None else job.epoch_history()
    _curves(history, job.batch_history(), job.config.lr_schedule)
    try:
        st.page_link("pages/compare.py", label="Compare this run with other models", icon=":material/compare_arrows:")
    except StreamlitAPIException:  # the page runs on its own, outside the app's navigation
        st.caption("Compare this run with other models on the **Compare models** page.")


def _restore_settings() -> None:
    """Give each settings widget its value before it is drawn: the one last used, or the default.

    Streamlit forgets a widget's key while another page is shown; the copy under SAVED is not
    a widget key, so it survives. A key that still exists is left alone: writing it on every
    run would send the stored value back to the browser, and a run that started before the
    user's latest keystroke would then overwrite what they just typed.
    """
    saved = st.session_state.get(SAVED, {})
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = saved.get(key, value)
    if not st.session_state.get("train_name"):
        st.session_state["train_name"] = saved.get("train_name") or _suggest_name()


def _save_settings() -> None:
    st.session_state[SAVED] = {key: st.session_state[key] for key in [*DEFAULTS, "train_name"]
                               if key in st.session_state}


def _settings() -> None:
    _restore_settings()
    presets = st.columns(2)
    presets[0].button("Quick demo settings", key="train_quick_demo", on_click=_apply,
                      args=(QUICK_DEMO,), help="4 epochs of 25 batches: a couple of minutes.")
    presets[1].button("Full training settings", key="train_full", on_click=_apply,
                      args=(DEFAULTS,), help="10 full passes over the training split.")
    datasets = store.list_datasets()
    if st.session_state["train_dataset"] not in datasets:
        st.session_state["train_dataset"] = datasets[0] if datasets else None
    data, model = st.columns(2)
    data.selectbox("Dataset", datasets, key="train_dataset")
    others = [name for name in datasets if name != st.session_state["train_dataset"]]
    st.session_state["train_more"] = [n for n in st.session_state.get("train_more", []) if n in others]
    data.multiselect("Also train on", others, key="train_more",
                     help="Train on these datasets too. Each keeps its own validation and test "
                          "split, so patterns held out of a dataset stay held out.")
    data.radio("Input representation", list(INPUT_TYPES), format_func=INPUT_TYPES.get,
               key="train_input_type")
    if st.session_state["train_input_type"] == "padded":
        data.number_input("Peaks per pattern", 16, 2048, step=16, key="train_padded_length")
    model.selectbox("Model", list(BUILDERS), format_func=lambda k: BUILDERS[k].label,
                    key="train_kind")
    model.caption(BUILDERS[st.session_state["train_kind"]].description)
    model.text_input("Run name", key="train_name", max_chars=64,
                     help="Letters, digits, '_', '-', '.'; also the model folder's name.")
    a, b, c, d = st.columns(4)
    a.number_input("Epochs", 1, 500, key="train_epochs")
    b.number_input("Batches per epoch", 0, 100000, key="train_steps",
                   help="0 = one full pass over the training split.")
    c.number_input("Batch size", 8, 1024, step=8, key="train_batch")
    d.number_input("Learning rate", 1e-6, 1.0, step=1e-4, format="%.1e", key="train_lr")
    a.selectbox("Class weighting", list(WEIGHTINGS), format_func=WEIGHTINGS.get,
                key="train_weighting")
    b.toggle("Augmentation", key="train_augment",
             help="Strain, peak shifts, texture, Kα2, impurities, broadening, background, noise.")
    c.slider("Augmentation strength", 0.1, 2.0, step=0.1, key="train_strength",
             disabled=not st.session_state["train_augment"])
    with st.expander("Split and advanced settings"):
        a, b, c, d = st.columns(4)
        a.number_input("Validation fraction", 0.0, 0.5, step=0.05, key="train_validation")
        b.number_input("Test fraction", 0.0, 0.5, step=0.05, key="train_test")
        c.number_input("Split seed", 0, 10**6, key="train_split_seed")
        d.number_input("Training seed", 0, 10**6, key="train_seed")
        a.checkbox("Group split by formula", key="train_group",
                   help="No composition seen in training appears in validation or test.")
        b.number_input("Early-stopping patience (epochs)", 1, 100, key="train_patience")
        c.selectbox("Learning-rate schedule", list(SCHEDULES), format_func=SCHEDULES.get,
                    key="train_schedule",
                    help="Cosine decay suits long runs of a fixed length; the plateau rule "
                         "halves the rate when the validation loss stalls.")
        d.number_input("Lattice loss weight", 0.0, 5.0, step=0.1, key="train_lattice_weight",
                       help="Above 0, the loss also counts the crystal system and Bravais "
                            "lattice read off the space-group output, so a wrong space group "
                            "of the right lattice is partly credited. 0 = plain cross-entropy.")
        builder = BUILDERS[st.session_state["train_kind"]].builder
        names = [p for p in inspect.signature(builder).parameters
                 if p not in ("input_length", "n_classes", "grid")]
        st.text_area("Builder hyperparameters (JSON)", key="train_hp", height=80,
                     help=f"Passed to the model builder; accepted keys: {', '.join(names)}.")
        starts = [""] + [m.name for m in registry.list_models()
                         if m.kind == st.session_state["train_kind"]
                         and m.input_type == st.session_state["train_input_type"]
                         and m.status in ("done", "stopped")]
        if st.session_state.get("train_init") not in starts:
            st.session_state["train_init"] = ""
        st.selectbox("Start from", starts, key="train_init",
                     format_func=lambda name: name or "a new network",
                     help="Continue training a saved model of this kind (same grid): its "
                          "architecture replaces the hyperparameters above, except "
                          '"dropout" (a new rate) and, for the residual CNN, "extra_blocks" '
                          '(more blocks at the end) and "ratio_lags" (a branch that reads '
                          "d-spacing ratios), added so that they start as the identity.")
    st.button("Train", key="train_start", type="primary", on_click=_start)
    _save_settings()
    kind, message = st.session_state.pop("train_feedback", (None, None))
    if kind:
        getattr(st, kind)(message)


def _rename(old: str) -> None:
    new = st.session_state.get("runs_new_name", "").strip()
    try:
        registry.rename_model(old, new)
    except registry.ModelError as exc:
        st.session_state["runs_feedback"] = ("error", f"Cannot rename '{old}': {exc}")
        return
    job_registry().forget(old)
    st.session_state["runs_selected"] = new
    st.session_state["runs_feedback"] = ("success", f"Renamed '{old}' to '{new}'.")


def _delete(name: str) -> None:
    try:
        registry.delete_model(name)
    except registry.ModelError as exc:
        st.session_state["runs_feedback"] = ("error", f"Cannot delete '{name}': {exc}")
        return
    job_registry().forget(name)
    st.session_state["runs_confirm_delete"] = False
    st.session_state["runs_feedback"] = ("success", f"Deleted run '{name}'.")


RUNS_COLUMNS = ["name", "model", "dataset", "epochs", "top-1 %", "top-5 %", "crystal system %",
                "date", "status", "error"]


def _model_label(kind: str) -> str:
    return getattr(BUILDERS.get(kind), "label", kind)


def _runs_table(models: list[registry.ModelMetadata], running: Job | None) -> pd.DataFrame:
    """Saved runs (and the running job first) with the same columns in the same order."""
    rows = []
    if running is not None:
        started = running.started or running.created
        rows.append({"name": running.name, "model": _model_label(running.config.kind),
                     "dataset": running.dataset_name, "epochs": running.config.epochs,
                     "date": datetime.fromtimestamp(started, timezone.utc).isoformat()[:16],
                     "status": running.status, "error": ""})
    for meta in models:
        metrics, hp = meta.metrics or {}, meta.hyperparameters or {}
        percent = {label: round(100 * metrics[key], 1) if key in metrics else None
                   for key, label in (("top1", "top-1 %"), ("top5", "top-5 %"),
                                      ("system_accuracy", "crystal system %"))}
        rows.append({"name": meta.name, "model": _model_label(meta.kind),
                     "dataset": (meta.dataset or {}).get("name", "unknown"),
                     "epochs": hp.get("epochs"), **percent, "date": meta.created[:16],
                     "status": meta.status, "error": meta.error or ""})
    return pd.DataFrame(rows, columns=RUNS_COLUMNS)


def _runs() -> None:
    models = registry.list_models()
    table = _runs_table(models, job_registry().current())
    st.dataframe(table, width="stretch", hide_index=True, key="runs_table")
    st.caption("Every saved run (newest first after the bundled model); metrics in percent "
               "on each run's own test split.")
    kind, message = st.session_state.pop("runs_feedback", (None, None))
    if kind:
        getattr(st, kind)(message)
    names = [m.name for m in models]
    if not names:
        return
    if st.session_state.get("runs_selected") not in names:
        st.session_state["runs_selected"] = names[0]
    name = st.selectbox("Run", names, key="runs_selected")
    protected = registry.is_protected(name)
    rename, delete, download = st.columns(3)
    rename.text_input("New name", key="runs_new_name", disabled=protected)
    rename.button("Rename", key="runs_rename", on_click=_rename, args=(name,),
                  disabled=protected)
    delete.checkbox(f"Yes, delete '{name}'", key="runs_confirm_delete", disabled=protected)
    delete.button("Delete", key="runs_delete", on_click=_delete, args=(name,),
                  disabled=protected or not st.session_state.get("runs_confirm_delete"))
    if protected:
        delete.caption("The bundled model is protected: it cannot be renamed or deleted.")
    download.download_button("Download as zip", data=partial(registry.zip_model, name),
                             file_name=f"{name}.zip", mime="application/zip",
                             key="runs_download", on_click="ignore")


st.title("Training")
st.caption("Train a model on a dataset, watch the curves live, then compare it with others.")
jobs = job_registry()
latest = jobs.latest()
if latest is not None and latest.active:
    _live(latest.name)
elif latest is not None:
    st.header(f"Latest run: {latest.name}")
    _result(latest)

st.header("New run")
if latest is not None and latest.active:
    st.info(f"Run '{latest.name}' is training; only one run at a time. Stop it or wait for "
            "it to finish before starting another.")
_settings()

st.header("Saved runs")
_runs()
with st.expander("Training jobs since the app started"):
    job_rows = [{"name": j.name, "dataset": j.dataset_name, "status": j.status,
                 "elapsed": _duration(j.elapsed()), "error": j.error or ""} for j in jobs.jobs()]
    st.dataframe(pd.DataFrame(job_rows, columns=["name", "dataset", "status", "elapsed",
                                                 "error"]),
                 width="stretch", hide_index=True, key="train_jobs_table")
