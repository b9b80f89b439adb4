"""Background training jobs: start, progress, stop, busy, failure."""

from __future__ import annotations

import threading
import time

import pytest

from core import registry
from core.dataset import DatasetError
from core.jobs import JobBusyError, JobRegistry, batch_frame, epoch_frame, running_jobs
from core.training import TrainingConfig
from tests.conftest import rows_outside

TINY = {"width": 8, "dense_units": 32}
WAIT = 180  # seconds; generous because the machine is shared


@pytest.fixture(autouse=True)
def no_job_left_running():
    yield
    for job in running_jobs():  # a failed test must not leave training running
        job.request_stop()
        job.wait(WAIT)


def tiny_config(name: str, **changes) -> TrainingConfig:
    settings = dict(name=name, epochs=2, steps_per_epoch=2, batch_size=16, report_every=1,
                    hyperparameters=dict(TINY))
    settings.update(changes)
    return TrainingConfig(**settings)


def wait_until(condition, timeout: float = WAIT) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_job_runs_to_completion_and_is_saved(small_dataset):
    jobs = JobRegistry()
    job = jobs.start("small", tiny_config("jobs-done"))
    assert jobs.current() is job and jobs.get("jobs-done") is job and job.active
    assert job.wait(WAIT), "the job did not finish in time"
    assert job.status == "done", job.error
    assert jobs.current() is None and jobs.latest() is job
    events = job.events()
    assert [e["type"] for e in events].count("batch") == 4
    assert [e["type"] for e in events].count("epoch") == 2
    assert list(job.epoch_history()["epoch"]) == [1, 2]
    assert {"loss", "val_loss", "accuracy", "top5", "learning_rate"} <= set(job.epoch_history())
    batches = job.batch_history()
    assert list(batches["step"]) == [0.5, 1.0, 1.5, 2.0]
    assert job.metadata.status == "done" and "top1" in job.evaluation["metrics"]
    assert len(job.history) == 2 and job.started <= job.finished
    saved = {m.name: m for m in registry.list_models()}
    assert saved["jobs-done"].status == "done"
    assert (registry.model_path("jobs-done") / registry.MODEL_FILE).exists()


def test_a_job_trains_on_several_datasets(bundled_dataset, small_dataset):
    from core import dataset as store

    store.create("jobs_other", rows_outside(small_dataset, bundled_dataset, 90), command="test")
    jobs = JobRegistry()
    with pytest.raises(ValueError, match="chosen twice"):
        jobs.start(["small", "small"], tiny_config("jobs-twice"))
    with pytest.raises(ValueError, match="choose a dataset"):
        jobs.start([], tiny_config("jobs-none"))
    job = jobs.start(["small", "jobs_other"], tiny_config("jobs-two-sets"))
    assert job.dataset_name == "small+jobs_other"
    assert job.wait(WAIT) and job.status == "done", job.error
    assert job.metadata.dataset["parts"] == ["small", "jobs_other"]
    assert job.metadata.dataset["patterns"] == len(small_dataset) + 90


def test_events_grow_and_stop_keeps_best_weights(small_dataset):
    jobs = JobRegistry()
    job = jobs.start("small", tiny_config("jobs-stop", epochs=200))
    assert wait_until(lambda: len(job.events()) >= 2), "no progress reported"
    first = len(job.events())
    assert wait_until(lambda: len(job.events()) > first), "progress did not grow"
    assert job.status == "running"
    assert jobs.request_stop() is job and job.stop_requested
    assert job.wait(WAIT), "the job did not stop in time"
    assert job.status == "stopped", job.error
    assert job.metadata.status == "stopped"
    assert len(job.epoch_history()) < 200
    meta = registry.read_metadata(registry.model_path("jobs-stop"))
    assert meta.status == "stopped"
    assert (registry.model_path("jobs-stop") / registry.MODEL_FILE).exists()
    model, _ = registry.load_model("jobs-stop")
    assert model.output_shape == (None, 230)


def test_second_job_while_one_runs_is_refused(small_dataset):
    gate = threading.Event()

    def slow_loader(name: str):
        gate.wait(WAIT)
        raise DatasetError(f"dataset {name!r} not found")

    jobs = JobRegistry(loader=slow_loader)
    first = jobs.start("missing", tiny_config("jobs-busy-1"))
    with pytest.raises(JobBusyError, match="'jobs-busy-1' is still running"):
        jobs.start("small", tiny_config("jobs-busy-2"))
    assert [job.name for job in jobs.jobs()] == ["jobs-busy-1"]
    assert jobs.current() is first and running_jobs() == [first]
    gate.set()
    assert first.wait(WAIT)
    # A failure before training (here: loading the dataset) is captured too.
    assert first.status == "failed" and "not found" in first.error
    assert "DatasetError" in first.details
    assert jobs.current() is None and running_jobs() == []
    assert not registry.model_path("jobs-busy-1").exists()


def test_failure_inside_training_is_captured(small_dataset):
    jobs = JobRegistry()
    config = tiny_config("jobs-failed", hyperparameters=dict(TINY, no_such_argument=1))
    job = jobs.start("small", config)
    assert job.wait(WAIT)
    assert job.status == "failed"
    assert "no_such_argument" in job.error and job.error.startswith("ValueError")
    assert job.metadata is None and job.finished is not None
    saved = {m.name: m for m in registry.list_models()}
    assert saved["jobs-failed"].status == "failed"
    assert "no_such_argument" in saved["jobs-failed"].error
    assert not (registry.model_path("jobs-failed") / registry.MODEL_FILE).exists()
    # The registry is free again and the failed record can be forgotten.
    jobs.forget("jobs-failed")
    assert jobs.get("jobs-failed") is None and jobs.latest() is None


def test_names_are_checked_before_starting(small_dataset):
    jobs = JobRegistry(loader=lambda name: pytest.fail("nothing should be loaded"))
    with pytest.raises(registry.ModelError, match="invalid model name"):
        jobs.start("small", tiny_config("bad/name"))
    with pytest.raises(registry.ModelError, match="already exists"):
        jobs.start("small", tiny_config("default"))
    assert jobs.jobs() == [] and jobs.request_stop() is None
    with pytest.raises(ValueError, match="max_concurrent"):
        JobRegistry(max_concurrent=0)


def test_event_frames():
    events = [
        {"type": "batch", "epoch": 0, "batch": 1, "batches": 2, "lr": 1e-3,
         "logs": {"loss": 5.0, "accuracy": 0.0}},
        {"type": "batch", "epoch": 0, "batch": 2, "batches": 2, "lr": 1e-3,
         "logs": {"loss": 4.0, "accuracy": 0.1}},
        {"type": "epoch", "epoch": 1, "batch": 2, "batches": 2, "lr": 5e-4,
         "logs": {"loss": 4.0, "val_loss": 4.5}},
    ]
    epochs = epoch_frame(events)
    assert list(epochs.columns) == ["epoch", "loss", "val_loss", "learning_rate"]
    assert epochs.iloc[0].to_dict() == {"epoch": 1, "loss": 4.0, "val_loss": 4.5,
                                        "learning_rate": 5e-4}
    batches = batch_frame(events)
    assert list(batches["step"]) == [0.5, 1.0] and list(batches["epoch"]) == [1, 1]
    assert list(batches["loss"]) == [5.0, 4.0]
    assert epoch_frame([]).empty and "learning_rate" in epoch_frame([])
    assert batch_frame([]).empty and "step" in batch_frame([])


def test_other_threads_cannot_clear_the_keras_session_during_training(small_dataset):
    import keras
    from keras.src.backend.common import global_state

    gate = threading.Event()

    def slow_loader(name: str):
        gate.wait(WAIT)
        raise DatasetError("released")

    jobs = JobRegistry(loader=slow_loader)
    job = jobs.start("small", tiny_config("jobs-keras"))
    tracker = global_state.GLOBAL_STATE_TRACKER
    keras.backend.clear_session()  # what Streamlit does after every script run
    assert global_state.GLOBAL_STATE_TRACKER is tracker
    gate.set()
    assert job.wait(WAIT) and job.status == "failed"
    keras.backend.clear_session()
    assert global_state.GLOBAL_STATE_TRACKER is not tracker
