"""Training page: start tiny runs, watch them, stop them, manage the saved runs.

AppTest runs the page in this process, so the page's cached job registry is shared between
tests: each test clears the resource cache, uses its own run names and waits (bounded) for
its job to end before returning.
"""

from __future__ import annotations

import re
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import registry
from core.jobs import QUEUED, RUNNING, running_jobs
from core.models import BUILDERS
from core.training import TrainingConfig, train
from tests.conftest import PROJECT, rows_outside

PAGE = str(PROJECT / "pages" / "training.py")
TINY_HP = '{"width": 8, "dense_units": 32}'
WAIT = 180  # seconds; generous because the machine is shared
PROGRESS = re.compile(r"Epoch (\d+) of (\d+) · batch (\d+) of (\d+)")


@pytest.fixture(autouse=True)
def fresh_job_registry():
    st.cache_resource.clear()
    yield
    for job in running_jobs():  # a failed test must not leave training running
        job.request_stop()
        job.wait(WAIT)
    st.cache_resource.clear()


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def configure(at: AppTest, name: str, epochs: int = 2, hp: str = TINY_HP) -> AppTest:
    at.selectbox(key="train_dataset").select("small")
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_steps").set_value(2)
    at.number_input(key="train_batch").set_value(16)
    at.text_area(key="train_hp").input(hp)
    at.text_input(key="train_name").input(name)
    return at.run()


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def progress(at: AppTest) -> tuple[int, int] | None:
    """(epoch, batch) of the progress bar's text, or None when there is none."""
    for bar in at.get("progress"):
        match = PROGRESS.search(bar.proto.text)
        if match:
            return int(match[1]), int(match[3])
    return None


def poll(at: AppTest, condition, timeout: float = WAIT) -> bool:
    """Rerun the page until ``condition(at)`` holds (at most ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if condition(at):
            return True
        time.sleep(0.3)
    return False


def has(elements, fragment: str) -> bool:
    return any(fragment in text for text in texts(elements))


def jobs_table(at: AppTest):
    return next(frame.value for frame in at.dataframe
                if list(frame.value.columns) == ["name", "dataset", "status", "elapsed", "error"])


RUNS_COLUMNS = ["name", "model", "dataset", "epochs", "top-1 %", "top-5 %", "crystal system %",
                "date", "status", "error"]


def runs_table(at: AppTest):
    return next(frame.value for frame in at.dataframe if "top-1 %" in frame.value.columns)


def saved(name: str) -> registry.ModelMetadata | None:
    return {meta.name: meta for meta in registry.list_models()}.get(name)


def stop_and_wait(at: AppTest, name: str) -> None:
    at.button(key="train_stop").click().run()
    assert poll(at, lambda a: has(a.info, f"Run '{name}' was stopped")), "the run did not stop"


def test_defaults_are_a_sensible_demo(small_dataset):
    at = open_page()
    assert at.selectbox(key="train_dataset").value == "default"
    assert at.selectbox(key="train_kind").value == "resnet1d"
    assert at.radio(key="train_input_type").value == "grid"
    assert at.number_input(key="train_epochs").value == 10
    assert at.number_input(key="train_batch").value == 128
    assert at.number_input(key="train_lr").value == pytest.approx(1e-3)
    assert at.selectbox(key="train_weighting").value == "sqrt"
    assert at.selectbox(key="train_schedule").value == "plateau"
    assert at.number_input(key="train_lattice_weight").value == 0.0
    assert at.slider(key="train_strength").value == 1.0
    at.button(key="train_quick_demo").click().run()
    assert at.number_input(key="train_steps").value == 25
    assert at.number_input(key="train_epochs").value == 4
    at.radio(key="train_input_type").set_value("padded").run()
    assert at.number_input(key="train_padded_length").value == 256


def test_settings_survive_a_visit_to_another_page_without_being_pushed_back(small_dataset):
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/training.py").run()
    at.number_input(key="train_epochs").set_value(42).run()
    at.number_input(key="train_patience").set_value(77).run()
    at.text_input(key="train_name").input("kept-name").run()
    assert not at.exception
    # A rerun must not send stored values back to the browser: one that started before the
    # user's latest keystroke would overwrite it (the settings of a started run were lost so).
    for key in ("train_epochs", "train_patience", "train_batch"):
        assert not at.number_input(key=key).proto.set_value, key
    assert not at.text_input(key="train_name").proto.set_value
    at.switch_page("pages/home.py").run()
    assert "train_epochs" not in at.session_state  # Streamlit dropped the widget's key
    at.switch_page("pages/training.py").run()
    assert not at.exception
    assert at.number_input(key="train_epochs").value == 42
    assert at.number_input(key="train_patience").value == 77
    assert at.text_input(key="train_name").value == "kept-name"


def test_tiny_run_trains_shows_its_evaluation_and_is_saved(small_dataset):
    at = configure(open_page(), "page-done")
    at.selectbox(key="train_schedule").select("cosine").run()
    at.number_input(key="train_lattice_weight").set_value(0.5).run()
    at.button(key="train_start").click().run()
    assert has(at.success, "Started run 'page-done'")
    assert poll(at, lambda a: has(a.success, "Run 'page-done' finished")), "run did not finish"
    assert not at.error
    metrics = next(frame.value for frame in at.dataframe if "majority class" in frame.value)
    assert "Space group top-1" in metrics.index
    assert len(at.get("plotly_chart")) == 5  # confusion matrix and four training curves
    meta = saved("page-done")
    assert meta is not None and meta.status == "done" and meta.hyperparameters["epochs"] == 2
    assert meta.hyperparameters["lr_schedule"] == "cosine"
    assert meta.hyperparameters["lattice_loss_weight"] == 0.5
    assert has(at.caption, "cosine decay over the run") and not has(at.caption, "ReduceLROnPlateau")
    runs = at.dataframe[-2].value
    assert "page-done" in list(runs["name"])
    assert list(jobs_table(at)["status"]) == ["done"]


def test_live_progress_grows_and_stop_saves_the_run(small_dataset):
    at = configure(open_page(), "page-stop", epochs=200)
    at.button(key="train_start").click().run()
    assert poll(at, lambda a: progress(a) is not None), "no progress shown"
    first = progress(at)
    assert poll(at, lambda a: progress(a) is not None and progress(a) > first), "no growth"
    assert len(at.get("plotly_chart")) == 4
    stop_and_wait(at, "page-stop")
    meta = saved("page-stop")
    assert meta is not None and meta.status == "stopped"
    assert (registry.model_path("page-stop") / registry.MODEL_FILE).exists()


def test_reruns_and_a_second_train_do_not_start_another_job(small_dataset):
    at = configure(open_page(), "page-busy", epochs=200)
    at.button(key="train_start").click().run()
    at.run()
    at.run()
    # A second browser session (or a refresh) reattaches to the same job.
    other = open_page()
    assert has(other.subheader, "Training 'page-busy'")
    assert has(other.info, "Run 'page-busy' is training")
    other = configure(other, "page-busy-2")
    other.button(key="train_start").click().run()
    assert has(other.warning, "'page-busy' is still running")
    assert list(jobs_table(other)["name"]) == ["page-busy"]
    # The running job heads the saved runs with the same columns and a readable model name.
    runs = runs_table(other)
    assert list(runs.columns) == RUNS_COLUMNS
    first = runs.iloc[0]
    assert first["name"] == "page-busy" and first["model"] == BUILDERS["resnet1d"].label
    assert first["status"] in (QUEUED, RUNNING) and first["dataset"] == "small"
    assert first["error"] == "" and runs["error"].notna().all()  # no "None" drawn in the text column
    assert runs.iloc[1:]["model"].isin([kind.label for kind in BUILDERS.values()]).all()
    stop_and_wait(at, "page-busy")
    assert saved("page-busy-2") is None and saved("page-busy").status == "stopped"


def test_failed_run_shows_its_error_and_is_marked_failed(small_dataset):
    at = configure(open_page(), "page-failed", hp='{"width": 8, "no_such_argument": 1}')
    at.button(key="train_start").click().run()
    assert poll(at, lambda a: has(a.error, "Run 'page-failed' failed")), "failure not shown"
    assert has(at.error, "no_such_argument")
    meta = saved("page-failed")
    assert meta is not None and meta.status == "failed" and "no_such_argument" in meta.error
    assert list(jobs_table(at)["status"]) == ["failed"]


def test_bad_settings_are_refused_before_training(small_dataset):
    at = configure(open_page(), "page-bad", hp="{width: 8")
    at.button(key="train_start").click().run()
    assert has(at.error, "Builder hyperparameters: not valid JSON")
    at.text_area(key="train_hp").input("[1, 2]").run()
    at.button(key="train_start").click().run()
    assert has(at.error, "write a JSON object")
    at.text_area(key="train_hp").input(TINY_HP)
    at.text_input(key="train_name").input("bad name!").run()
    at.button(key="train_start").click().run()
    assert has(at.error, "invalid model name")
    at.text_input(key="train_name").input("default").run()
    at.button(key="train_start").click().run()
    assert has(at.error, "already exists")
    assert jobs_table(at).empty


def test_runs_can_be_renamed_deleted_and_downloaded(small_dataset):
    from core.models import build

    registry.save_model(build("baseline_ann", 16, units=4, depth=1),
                        registry.ModelMetadata(name="page-manage", kind="baseline_ann"))
    at = open_page()
    at.selectbox(key="runs_selected").select("default").run()
    assert at.button(key="runs_delete").disabled and at.button(key="runs_rename").disabled
    at.selectbox(key="runs_selected").select("page-manage").run()
    assert at.button(key="runs_delete").disabled  # not confirmed yet
    at.text_input(key="runs_new_name").input("default").run()
    at.button(key="runs_rename").click().run()
    assert has(at.error, "Cannot rename 'page-manage'")
    at.text_input(key="runs_new_name").input("page-renamed").run()
    at.button(key="runs_rename").click().run()
    assert has(at.success, "Renamed 'page-manage' to 'page-renamed'")
    assert saved("page-renamed") is not None and saved("page-manage") is None
    assert at.selectbox(key="runs_selected").value == "page-renamed"
    at.checkbox(key="runs_confirm_delete").check().run()
    at.button(key="runs_delete").click().run()
    assert has(at.success, "Deleted run 'page-renamed'")
    assert saved("page-renamed") is None
    assert len(at.get("download_button")) == 1


def test_a_run_can_start_from_a_saved_model_of_the_same_kind(small_dataset):
    train(small_dataset, TrainingConfig(name="page-ann", kind="baseline_ann", epochs=1,
                                        steps_per_epoch=1, hyperparameters={"units": 8}))
    at = configure(open_page(), "page-base")
    at.button(key="train_start").click().run()
    assert poll(at, lambda a: has(a.success, "Run 'page-base' finished")), "run did not finish"
    options = at.selectbox(key="train_init").options
    assert "page-base" in options and "a new network" in options
    assert "page-ann" not in options  # a different kind of model
    configure(at, "page-continued", hp='{"width": 4}')
    at.selectbox(key="train_init").select("page-base").run()
    at.button(key="train_start").click().run()
    assert poll(at, lambda a: has(a.success, "Run 'page-continued' finished")), "run did not finish"
    meta = saved("page-continued")
    assert meta.hyperparameters["initial_model"] == "page-base"
    assert meta.hyperparameters["hyperparameters"] == {"width": 8, "dense_units": 32}


def test_a_run_can_train_on_two_datasets(bundled_dataset, small_dataset):
    from core import dataset as store

    store.create("page_other", rows_outside(small_dataset, bundled_dataset, 80), command="test")
    at = configure(open_page(), "page-two-sets")
    assert "small" not in at.multiselect(key="train_more").options
    at.multiselect(key="train_more").select("page_other").run()
    at.button(key="train_start").click().run()
    assert poll(at, lambda a: has(a.success, "Run 'page-two-sets' finished")), "run did not finish"
    meta = saved("page-two-sets")
    assert meta.dataset["parts"] == ["small", "page_other"]
    # Choosing the other dataset as the main one drops it from "also train on".
    at.selectbox(key="train_dataset").select("page_other").run()
    assert not at.exception and at.multiselect(key="train_more").value == []
