"""Training runs at tiny sizes: saved folders, progress events, stopping, failures, weights."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest

from core import registry
from core.augmentation import NO_AUGMENTATION
from core.dataset import Split
from core.evaluation import Metrics
from core.grid import TwoThetaGrid
from core.training import TrainingConfig, class_weights, fixed_inputs, stick_batch, train

TINY_ANN = {"units": 16}
METRIC_KEYS = set(Metrics.__dataclass_fields__)


def tiny_config(name: str, **changes) -> TrainingConfig:
    settings = dict(name=name, kind="baseline_ann", epochs=2, steps_per_epoch=2, batch_size=16,
                    report_every=1, hyperparameters=dict(TINY_ANN))
    settings.update(changes)
    return TrainingConfig(**settings)


def test_train_saves_a_complete_model_folder(small_dataset):
    events = []
    result = train(small_dataset, tiny_config("tr_basic"), progress=events.append)
    folder = registry.model_path("tr_basic")
    assert {p.name for p in folder.iterdir()} == {registry.MODEL_FILE, registry.METADATA_FILE,
                                                 registry.HISTORY_FILE, registry.EVALUATION_FILE}
    metadata = json.loads((folder / registry.METADATA_FILE).read_text())
    assert metadata["status"] == "done"
    assert metadata["name"] == "tr_basic" and metadata["kind"] == "baseline_ann"
    assert set(metadata["metrics"]) == METRIC_KEYS
    assert metadata["dataset"]["name"] == "small"
    parts = metadata["dataset"]
    assert parts["train"] + parts["validation"] + parts["test"] == parts["patterns"] == len(small_dataset)
    assert metadata["hyperparameters"]["hyperparameters"] == TINY_ANN
    assert metadata["training_seconds"] > 0
    history = pd.read_csv(folder / registry.HISTORY_FILE)
    assert history["epoch"].tolist() == [1, 2]
    assert {"loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5"} <= set(history.columns)
    evaluation = json.loads((folder / registry.EVALUATION_FILE).read_text())
    assert evaluation["metrics"]["n"] == parts["test"] == len(evaluation["true"]) == len(evaluation["predicted"])
    assert np.array(evaluation["system_confusion"]).shape == (7, 7)
    assert np.array(evaluation["system_confusion"]).sum() == parts["test"]
    assert result.metadata.status == "done"
    assert result.model.input_shape == (None, 2126)
    # Progress: a batch event per batch (report_every=1) and an epoch event per epoch.
    batches = [e for e in events if e["type"] == "batch"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [(e["epoch"], e["batch"]) for e in batches] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for event in events:
        assert {"type", "epoch", "batch", "epochs", "batches", "logs", "lr", "elapsed", "eta"} <= set(event)
        assert event["epochs"] == 2 and event["batches"] == 2
        assert event["lr"] == pytest.approx(1e-3)
        assert event["eta"] >= 0
    assert {"loss", "accuracy"} <= set(batches[0]["logs"])
    assert {"val_loss", "val_accuracy", "val_top5"} <= set(epochs[-1]["logs"])
    assert epochs[-1]["eta"] == pytest.approx(0.0, abs=1e-6)
    # The saved model loads and predicts like the trained one.
    model, meta = registry.load_model("tr_basic")
    x = np.random.default_rng(0).random((2, 2126)).astype(np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), result.model.predict_on_batch(x), atol=1e-5)
    assert meta.input_length == 2126


def test_tiny_resnet_fixture_folder(tiny_model):
    # The session's tiny residual CNN (conftest) went through the same path.
    folder = registry.model_path("tiny")
    assert {p.name for p in folder.iterdir()} == {registry.MODEL_FILE, registry.METADATA_FILE,
                                                 registry.HISTORY_FILE, registry.EVALUATION_FILE}
    metadata = registry.read_metadata(folder)
    assert metadata.kind == "resnet1d" and metadata.status == "done"
    assert set(metadata.metrics) == METRIC_KEYS
    assert len(tiny_model.history) == 2
    assert tiny_model.model.input_shape == (None, 2126)


def test_name_taken_and_invalid_names(small_dataset, tiny_model):
    with pytest.raises(registry.ModelError, match="already exists"):
        train(small_dataset, tiny_config("tiny"))
    for name in ("../x", "", "a/b"):
        with pytest.raises(registry.ModelError, match="invalid model name"):
            train(small_dataset, tiny_config(name))


def test_stop_event_saves_a_stopped_model(small_dataset):
    stop = threading.Event()
    events = []

    def hook(event):
        events.append(event)
        if event["type"] == "batch":
            stop.set()

    result = train(small_dataset, tiny_config("tr_stopped", epochs=5, steps_per_epoch=3),
                   progress=hook, stop=stop)
    assert result.metadata.status == "stopped"
    assert len(result.history) == 1  # stopped within the first epoch
    assert len([e for e in events if e["type"] == "batch"]) == 1
    metadata = registry.read_metadata(registry.model_path("tr_stopped"))
    assert metadata.status == "stopped"
    assert (registry.model_path("tr_stopped") / registry.MODEL_FILE).exists()
    registry.load_model("tr_stopped")


def test_padded_input_trains(small_dataset):
    config = tiny_config("tr_padded", input_type="padded", epochs=1, class_weighting="balanced")
    result = train(small_dataset, config, save=False)
    assert result.metadata.hyperparameters["class_weighting"] == "balanced"
    assert result.model.input_shape == (None, 512)
    assert result.metadata.input_type == "padded"
    assert result.metadata.input_length == 512
    assert set(result.evaluation["metrics"]) == METRIC_KEYS
    assert not registry.model_path("tr_padded").exists()  # save=False writes nothing


def test_failure_is_recorded_and_raised(small_dataset):
    config = tiny_config("tr_failed", hyperparameters={"nonexistent": 1})
    with pytest.raises(ValueError, match="invalid hyperparameters.*nonexistent"):
        train(small_dataset, config)
    folder = registry.model_path("tr_failed")
    assert folder.is_dir()
    assert not (folder / registry.MODEL_FILE).exists()
    metadata = registry.read_metadata(folder)
    assert metadata.status == "failed"
    assert "nonexistent" in metadata.error and metadata.error.startswith("ValueError")
    listed = {m.name: m for m in registry.list_models()}
    assert listed["tr_failed"].status == "failed"
    with pytest.raises(registry.ModelError):
        registry.load_model("tr_failed")


def test_empty_training_split_fails_clearly(small_dataset):
    empty = Split(train=np.zeros(0, np.int64), validation=np.arange(5), test=np.arange(5, 10))
    with pytest.raises(ValueError, match="training split is empty"):
        train(small_dataset, tiny_config("tr_empty"), save=False, data_split=empty)
    assert not registry.model_path("tr_empty").exists()


def test_no_validation_or_test_rows(small_dataset):
    # Also: a time limit ends training after the first epoch, and the description is kept.
    config = tiny_config("tr_noval", epochs=3, steps_per_epoch=1, validation=0.0, test=0.0,
                         time_limit_minutes=1e-6,
                         augmentation=NO_AUGMENTATION, grid=TwoThetaGrid(10, 60, 0.1))
    result = train(small_dataset, config, save=False, description="no held-out rows")
    assert result.evaluation == {} and result.metadata.metrics == {}
    assert len(result.history) == 1 and result.metadata.status == "done"
    assert result.metadata.description == "no held-out rows"
    assert "val_loss" not in result.history.columns
    assert result.model.input_shape == (None, TwoThetaGrid(10, 60, 0.1).size)


def test_class_weights_modes():
    labels = np.array([1, 1, 1, 2])
    none = class_weights(labels, "none")
    assert none.shape == (230,) and np.all(none == 1.0)
    balanced = class_weights(labels, "balanced")
    assert balanced[0] == pytest.approx(2 / 3) and balanced[1] == pytest.approx(2.0)
    assert balanced[2:].sum() == 0  # absent classes
    sqrt = class_weights(labels, "sqrt")
    assert sqrt[1] / sqrt[0] == pytest.approx(np.sqrt(3))
    for weights in (none, balanced, sqrt):
        # Normalised to a mean of 1 over the training rows.
        assert weights[labels - 1].mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown class weighting"):
        class_weights(labels, "inverse")


def test_unknown_class_weighting_fails(small_dataset):
    bad = tiny_config("tr_badweights", class_weighting="inverse")
    with pytest.raises(ValueError, match="unknown class weighting"):
        train(small_dataset, bad, save=False)


def test_stick_batch_and_fixed_inputs(small_dataset):
    rows = np.arange(6)
    sticks = stick_batch(small_dataset, rows, max_peaks=32)
    assert sticks.two_theta.shape == sticks.intensity.shape == (6, 32)
    assert sticks.hkl.shape == (6, 32, 3) and sticks.lattice.shape == (6, 6)
    for r, (_, row) in enumerate(small_dataset.table.iloc[rows].iterrows()):
        n = min(32, len(row["two_theta"]))
        assert np.count_nonzero(sticks.intensity[r]) == n
        # The strongest peak is always kept, with its Miller index.
        strongest = int(np.argmax(row["intensity"]))
        kept = int(np.argmax(sticks.intensity[r]))
        assert sticks.two_theta[r, kept] == pytest.approx(row["two_theta"][strongest])
        assert sticks.hkl[r, kept].tolist() == [int(row[c][strongest]) for c in "hkl"]
    config = tiny_config("fixed")
    x, y = fixed_inputs(small_dataset, rows, config, seed=1)
    again, _ = fixed_inputs(small_dataset, rows, config, seed=1)
    assert x.shape == (6, 2126) and y.tolist() == small_dataset.labels[rows].tolist()
    np.testing.assert_array_equal(x, again)
    padded, _ = fixed_inputs(small_dataset, rows, tiny_config("fixed", input_type="padded"), seed=1)
    assert padded.shape == (6, 512)
    assert np.all(padded[:, :256] <= 1.0) and np.all(padded >= 0)
    empty, labels = fixed_inputs(small_dataset, np.zeros(0, np.int64), config, seed=1)
    assert empty.shape == (0, 2126) and len(labels) == 0


def test_training_prior_is_saved(small_dataset):
    result = train(small_dataset, tiny_config("tr_prior", class_weighting="none"))
    prior = np.asarray(result.metadata.training_prior)
    assert prior.shape == (230,) and prior.sum() == pytest.approx(1, abs=1e-5)
    saved = json.loads((registry.model_path("tr_prior") / registry.METADATA_FILE).read_text())
    assert np.allclose(saved["training_prior"], prior)
    # Only the groups of the training rows carry weight.
    present = set(np.flatnonzero(prior) + 1)
    assert present <= set(small_dataset.labels.tolist())


def test_cosine_schedule_warms_up_then_decays(small_dataset):
    config = tiny_config("tr_cosine", epochs=4, steps_per_epoch=10, lr_schedule="cosine",
                         learning_rate=1e-3)
    result = train(small_dataset, config, save=False)
    rates = result.history["learning_rate"].tolist()
    assert len(rates) == 4
    assert rates[0] > 1e-4 and rates[-1] < rates[1] and all(a > b for a, b in zip(rates[1:], rates[2:]))
    assert rates[-1] >= 1e-5 * 0.99  # decays to 1 % of the peak rate, not to zero


def test_the_lattice_aware_loss_trains_and_saves_a_plain_model(small_dataset):
    plain = train(small_dataset, tiny_config("tr_plain_loss", seed=3), save=False)
    aware = train(small_dataset, tiny_config("tr_lattice_loss", seed=3, lattice_loss_weight=0.5))
    assert aware.metadata.hyperparameters["lattice_loss_weight"] == 0.5
    assert plain.metadata.hyperparameters["lattice_loss_weight"] == 0.0
    # Same seed and batches: only the loss differs, and so do the weights it reaches.
    assert any(not np.allclose(a, b) for a, b in zip(plain.model.get_weights(),
                                                       aware.model.get_weights()))
    # The saved file holds no loss: it loads in safe mode like any other model.
    model, _ = registry.load_model("tr_lattice_loss")
    x = np.random.default_rng(0).random((2, 2126)).astype(np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), aware.model.predict_on_batch(x), atol=1e-5)
    with pytest.raises(ValueError, match="lattice loss weight"):
        train(small_dataset, tiny_config("tr_bad_lattice", lattice_loss_weight=-1.0), save=False)


def test_unknown_schedule_is_refused(small_dataset):
    with pytest.raises(ValueError, match="schedule"):
        train(small_dataset, tiny_config("tr_bad_schedule", lr_schedule="linear"), save=False)


def test_a_run_can_continue_from_a_saved_model(small_dataset):
    first = train(small_dataset, tiny_config("tr_first", hyperparameters={"units": 24}))
    # A rate of zero leaves the weights where the first run left them.
    second = train(small_dataset, tiny_config("tr_second", initial_model="tr_first", epochs=1,
                                              learning_rate=0.0, hyperparameters={"units": 8}))
    for before, after in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_allclose(after, before)
    settings = second.metadata.hyperparameters
    assert settings["initial_model"] == "tr_first"
    assert settings["hyperparameters"] == {"units": 24}  # the first run's architecture
    assert second.metadata.metrics["top1"] == pytest.approx(first.metadata.metrics["top1"])
    moved = train(small_dataset, tiny_config("tr_third", initial_model="tr_first", epochs=1,
                                             learning_rate=1e-2))
    assert any(not np.allclose(a, b) for a, b in zip(first.model.get_weights(),
                                                       moved.model.get_weights()))


def test_a_continued_run_may_change_only_the_dropout_rate(small_dataset):
    train(small_dataset, tiny_config("tr_drop_first", kind="optimised_ann",
                                     hyperparameters={"units": 16, "dropout": 0.4}))
    second = train(small_dataset, tiny_config("tr_drop_second", kind="optimised_ann",
                                              initial_model="tr_drop_first", epochs=1,
                                              hyperparameters={"units": 64, "dropout": 0.05}))
    rates = [layer.rate for layer in second.model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and all(rate == pytest.approx(0.05) for rate in rates)
    assert second.metadata.hyperparameters["hyperparameters"] == {"units": 16, "dropout": 0.05}
    reloaded, _ = registry.load_model("tr_drop_second")
    assert [layer.rate for layer in reloaded.layers
            if isinstance(layer, keras.layers.Dropout)] == pytest.approx(rates)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        train(small_dataset, tiny_config("tr_drop_bad", kind="optimised_ann",
                                         initial_model="tr_drop_first",
                                         hyperparameters={"dropout": 1.0}), save=False)


def test_a_continued_resnet_may_grow_extra_blocks_and_a_ratio_branch(small_dataset, tiny_model):
    no_held_out = {"validation": 0.0, "test": 0.0, "epochs": 1}
    growth = {"extra_blocks": 1, "ratio_lags": 32}
    grown = train(small_dataset, tiny_config("tr_grow", kind="resnet1d", initial_model="tiny",
                                             learning_rate=0.0, hyperparameters=growth,
                                             **no_held_out))
    tiny = tiny_model.metadata.hyperparameters["hyperparameters"]
    assert grown.metadata.hyperparameters["hyperparameters"] == {**tiny, **growth}
    assert grown.model.count_params() > tiny_model.model.count_params()
    # A rate of 0: the first run's kernels are carried over unchanged.
    kernels = [layer.get_weights()[0] for layer in tiny_model.model.layers
               if isinstance(layer, keras.layers.Conv1D)]
    carried = [layer.get_weights()[0] for layer in grown.model.layers
               if isinstance(layer, keras.layers.Conv1D)
               and not layer.name.startswith(("extra_", "ratio_"))]
    assert len(kernels) == len(carried)
    for before, after in zip(kernels, carried):
        np.testing.assert_array_equal(after, before)
    model, _ = registry.load_model("tr_grow")
    assert {"extra_block_1_conv_a", "ratio_autocorrelation"} <= {layer.name for layer in model.layers}
    # (Shrinking is refused in tests/core/test_models.py.)
    with pytest.raises(ValueError, match="whole number"):
        train(small_dataset, tiny_config("tr_grow_bad", kind="resnet1d", initial_model="tiny",
                                         hyperparameters={"extra_blocks": 1.5}, **no_held_out),
              save=False)
    with pytest.raises(ValueError, match="ratio_lags must be a whole number"):
        train(small_dataset, tiny_config("tr_grow_bad", kind="resnet1d", initial_model="tiny",
                                         hyperparameters={"ratio_lags": "32"}, **no_held_out),
              save=False)
    train(small_dataset, tiny_config("tr_grow_ann", **no_held_out))
    with pytest.raises(ValueError, match="no extra blocks"):
        train(small_dataset, tiny_config("tr_grow_ann_more", initial_model="tr_grow_ann",
                                         hyperparameters={"extra_blocks": 1}, **no_held_out),
              save=False)
    with pytest.raises(ValueError, match="baseline_ann model has no d-ratio branch to add"):
        train(small_dataset, tiny_config("tr_grow_ann_more", initial_model="tr_grow_ann",
                                         hyperparameters={"ratio_lags": 32}, **no_held_out),
              save=False)


def test_a_model_without_a_dropout_setting_refuses_a_new_rate(small_dataset):
    if not registry.model_path("tr_base").exists():
        train(small_dataset, tiny_config("tr_base"))
    with pytest.raises(ValueError, match="baseline_ann model has no dropout setting"):
        train(small_dataset, tiny_config("tr_no_dropout", initial_model="tr_base",
                                         hyperparameters={"dropout": 0.1}), save=False)


@pytest.mark.parametrize("changes, message", [
    ({"kind": "optimised_ann"}, "kind 'baseline_ann'"),
    ({"grid": TwoThetaGrid(10, 80, 0.05)}, "grid"),
    ({"input_type": "padded"}, "input 'grid'"),
])
def test_continuing_needs_the_same_kind_input_and_grid(small_dataset, changes, message):
    if not registry.model_path("tr_base").exists():
        train(small_dataset, tiny_config("tr_base"))
    name = f"tr_mismatch_{len(message)}"
    with pytest.raises(ValueError, match=f"cannot continue from model 'tr_base': .*{message}"):
        train(small_dataset, tiny_config(name, initial_model="tr_base", **changes))
    assert registry.read_metadata(registry.model_path(name)).status == "failed"


def test_continuing_from_a_missing_model_fails_clearly(small_dataset):
    with pytest.raises(registry.ModelError, match="not found"):
        train(small_dataset, tiny_config("tr_orphan", initial_model="no_such_model"))


def _recorded_batches(monkeypatch, small_dataset, name: str, workers: int):
    """Train briefly, recording (epoch, index, checksum of the inputs) of every batch made."""
    from core import training

    made = []
    lock = threading.Lock()
    original = training.AugmentedBatches

    class Recording(original):
        def __getitem__(self, index):
            batch = super().__getitem__(index)
            with lock:
                made.append((self.epoch, index, round(float(batch[0].sum()), 3)))
            return batch

    monkeypatch.setattr(training, "AugmentedBatches", Recording)
    try:
        result = train(small_dataset, tiny_config(name, epochs=3, steps_per_epoch=5,
                                                  data_workers=workers, validation=0.0), save=False)
    finally:
        monkeypatch.setattr(training, "AugmentedBatches", original)
    return made, result


def test_parallel_batch_workers_make_the_same_batches_as_one(monkeypatch, small_dataset):
    serial, first = _recorded_batches(monkeypatch, small_dataset, "tr_workers_1", 1)
    parallel, second = _recorded_batches(monkeypatch, small_dataset, "tr_workers_3", 3)
    assert set(parallel) == set(serial)
    checksums: dict = {}
    for epoch, index, checksum in parallel:  # a batch depends only on (seed, epoch, index)
        assert checksums.setdefault((epoch, index), checksum) == checksum
    epochs = sorted({epoch for epoch, _, _ in parallel})[-3:]  # the three training epochs
    for epoch in epochs:
        assert {index for e, index in checksums if e == epoch} == set(range(5))
    assert len({checksums[e, i] for e in epochs for i in range(5)}) == 15  # fresh every epoch
    assert second.metadata.hyperparameters["data_workers"] == 3
    np.testing.assert_allclose(second.history["loss"], first.history["loss"], rtol=1e-5)


def test_batch_worker_processes_make_the_same_batches_as_threads(small_dataset):
    config = tiny_config("tr_procs", epochs=2, steps_per_epoch=4, validation=0.0)
    threads = train(small_dataset, config, save=False)
    processes = train(small_dataset, replace(config, data_workers=2, data_processes=True),
                      save=False)
    assert processes.metadata.hyperparameters["data_processes"] is True
    np.testing.assert_allclose(processes.history["loss"], threads.history["loss"], rtol=1e-5)


def test_batch_workers_must_be_positive(small_dataset):
    with pytest.raises(ValueError, match="data_workers must be at least 1"):
        train(small_dataset, tiny_config("tr_workers_0", data_workers=0), save=False)
