"""Train any model builder on a dataset, reporting progress to the caller, and save it.

Training profiles are rendered and augmented on the fly, batch by batch, so that no two
epochs see the same profile. Validation and test profiles are augmented once with fixed
seeds so that their numbers are comparable between epochs and runs.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import keras
import numpy as np
import pandas as pd

from core import registry
from core.augmentation import Augmentation, StickBatch, augment_profiles
from core.dataset import Dataset, Split, split
from core.evaluation import evaluate, system_confusion
from core.grid import CU_KA1, DEFAULT_GRID, TwoThetaGrid, d_to_two_theta
from core.losses import LatticeAwareCrossentropy
from core.models import BUILDERS, build, grow_resnet1d
from core.prior import training_prior
from core.rendering import padded_arrays
from core.symmetry import CRYSTAL_SYSTEMS

ProgressHook = Callable[[dict], None]


@dataclass
class TrainingConfig:
    """Settings of one training run (all saved with the model).

    Attributes:
        name: the run's name, also its model folder.
        kind: model builder key.
        input_type: ``grid`` (profile on ``grid``) or ``padded`` (the report's stick arrays).
        epochs: most epochs; early stopping may end sooner.
        steps_per_epoch: batches per epoch (default: one pass over the training rows).
        class_weighting: ``none``, ``balanced`` (1/frequency) or ``sqrt`` (1/sqrt(frequency)).
        augmentation: perturbation ranges; ``Augmentation(strength=0)`` for clean profiles.
        max_peaks: strongest peaks kept per pattern.
        group_by_formula: keep one composition on one side of the split.
        time_limit_minutes: end training after the first epoch past this wall time.
        lr_schedule: ``plateau`` (halve the rate when the monitored loss stalls) or ``cosine``
            (cosine decay from ``learning_rate`` to 1 % of it over ``epochs * steps_per_epoch``
            batches after a short warm-up; suits long runs with a fixed budget).
        hyperparameters: passed to the model builder.
        lattice_loss_weight: above 0, the loss adds this much of the crystal-system and
            Bravais-lattice cross-entropies (:class:`core.losses.LatticeAwareCrossentropy`),
            crediting a wrong space group of the right lattice; 0 is plain cross-entropy.
        data_workers: threads that make augmented batches ahead of the network (each batch's
            random numbers come from the run's seed, the epoch and the batch's index, so the
            batches are the same for any number of workers). One suits a 2-core CPU, where
            the network needs the cores; where it runs on a GPU, several keep it fed.
        data_processes: make the batches in ``data_workers`` forked processes instead of
            threads (the same batches). Threads share Python's lock for the interpreter, so
            on a many-core machine feeding a GPU they stall at a few cores' worth of batches;
            processes scale with the cores.
        initial_model: start from this saved model's weights (a name or folder) instead of a
            fresh network; it must have the same kind, input and grid, and its builder
            hyperparameters replace ``hyperparameters``, except ``dropout``: dropout layers
            hold no weights, so a continued run may change their rate (for example, lower it
            when the model underfits); and a resnet1d's ``extra_blocks``, which may grow, and
            ``ratio_lags``, which adds a d-ratio branch to a model without one: the new parts
            start as the identity (:func:`core.models.grow_resnet1d`).
    """

    name: str
    kind: str = "resnet1d"
    input_type: str = "grid"
    grid: TwoThetaGrid = DEFAULT_GRID
    padded_length: int = 256
    epochs: int = 20
    steps_per_epoch: int | None = None
    batch_size: int = 128
    learning_rate: float = 1e-3
    class_weighting: str = "sqrt"
    augmentation: Augmentation = field(default_factory=Augmentation)
    validation: float = 0.1
    test: float = 0.1
    group_by_formula: bool = False
    split_seed: int = 0
    seed: int = 0
    early_stopping_patience: int = 8
    reduce_lr_patience: int = 3
    max_peaks: int = 256
    report_every: int = 5
    time_limit_minutes: float | None = None
    lr_schedule: str = "plateau"
    hyperparameters: dict = field(default_factory=dict)
    initial_model: str | None = None
    data_workers: int = 1
    data_processes: bool = False
    lattice_loss_weight: float = 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["grid"] = self.grid.to_dict()
        data["augmentation"] = self.augmentation.to_dict()
        return data


class TrainingStopped(Exception):
    """Raised internally when a caller asks to stop; training keeps its best weights."""


def stick_batch(dataset: Dataset, rows: np.ndarray, max_peaks: int = 256) -> StickBatch:
    """Dense stick arrays of ``rows`` (strongest ``max_peaks`` peaks of each pattern)."""
    table = dataset.table.iloc[rows]
    n = len(table)
    tt = np.zeros((n, max_peaks), np.float32)
    ii = np.zeros((n, max_peaks), np.float32)
    hkl = np.zeros((n, max_peaks, 3), np.int16)
    for r, (t, i, h, k, l) in enumerate(zip(table["two_theta"], table["intensity"],
                                            table["h"], table["k"], table["l"])):
        keep = np.sort(np.argsort(i)[-max_peaks:]) if len(i) > max_peaks else slice(None)
        m = len(np.asarray(t)[keep])
        tt[r, :m], ii[r, :m] = np.asarray(t)[keep], np.asarray(i)[keep]
        hkl[r, :m, 0], hkl[r, :m, 1], hkl[r, :m, 2] = (np.asarray(h)[keep], np.asarray(k)[keep],
                                                       np.asarray(l)[keep])
    lattice = table[["a", "b", "c", "alpha", "beta", "gamma"]].to_numpy(np.float64)
    system = np.array([CRYSTAL_SYSTEMS.index(s) for s in table["crystal_system"]], np.int64)
    return StickBatch(tt, ii, hkl, lattice, system)


def _subset(sticks: StickBatch, index: np.ndarray) -> StickBatch:
    return StickBatch(sticks.two_theta[index], sticks.intensity[index], sticks.hkl[index],
                      sticks.lattice[index], sticks.system[index])


def make_inputs(sticks: StickBatch, config: TrainingConfig, aug: Augmentation,
                rng: np.random.Generator) -> np.ndarray:
    """Model inputs for a batch of sticks in the configured representation."""
    if config.input_type == "grid":
        return augment_profiles(sticks, config.grid, aug, rng)
    return _padded_inputs(sticks, config.padded_length, aug, rng)


def _padded_inputs(sticks: StickBatch, length: int, aug: Augmentation,
                   rng: np.random.Generator) -> np.ndarray:
    """The report's stick arrays, with peak positions and heights perturbed as in training."""
    from core.augmentation import _d_spacings, _strained_lattice  # same physics as profiles

    tt = sticks.two_theta.astype(np.float64)
    ii = sticks.intensity.astype(np.float64)
    if aug.strength > 0:
        lattice = _strained_lattice(sticks.lattice, sticks.system, aug, rng)
        d = _d_spacings(sticks.hkl.astype(np.float64), lattice)
        usable = np.isfinite(d) & np.any(sticks.hkl != 0, axis=2)
        tt = np.where(usable, d_to_two_theta(d, CU_KA1), tt)
        tt += rng.uniform(-1, 1, (len(tt), 1)) * aug.zero_shift_deg * aug.strength
        ii *= np.exp(rng.normal(0, aug.intensity_jitter * aug.strength, ii.shape))
    rows_t, rows_i = [], []
    for t, i in zip(tt, ii):
        keep = (i > 0) & np.isfinite(t) & (t > 0) & (t < 90)
        order = np.argsort(t[keep])
        rows_t.append(t[keep][order][:length])
        rows_i.append(i[keep][order][:length])
    inputs, _ = padded_arrays(rows_t, rows_i, length)
    return inputs if len(inputs) == len(tt) else _pad_rows(rows_t, rows_i, length)


def _pad_rows(rows_t, rows_i, length):
    inputs = np.zeros((len(rows_t), 2 * length), np.float32)
    for r, (t, i) in enumerate(zip(rows_t, rows_i)):
        if len(t):
            inputs[r, :len(t)] = t / 90.0
            inputs[r, length:length + len(t)] = i / max(float(i.max()), 1e-12)
    return inputs


def class_weights(labels: np.ndarray, mode: str) -> np.ndarray:
    """(230,) weight per space group, normalised to a mean of 1 over the training rows."""
    counts = np.bincount(labels - 1, minlength=230).astype(float)
    if mode == "none":
        weights = np.ones(230)
    elif mode in ("balanced", "sqrt"):
        power = 1.0 if mode == "balanced" else 0.5
        weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1) ** power, 0.0)
    else:
        raise ValueError(f"unknown class weighting {mode!r} (none, balanced, sqrt)")
    mean = np.sum(weights * counts) / max(counts.sum(), 1)
    return weights / max(mean, 1e-12)


class AugmentedBatches(keras.utils.PyDataset):
    """Freshly augmented training batches: (inputs, one-hot labels, sample weights)."""

    def __init__(self, sticks: StickBatch, labels: np.ndarray, config: TrainingConfig,
                 weights: np.ndarray, steps: int, seed: int):
        # Threads by default: the stick arrays are shared, and numpy releases the GIL for
        # most of the work. Keras calls on_epoch_end only after an epoch's batches are all
        # made, and forks its worker processes afresh each epoch, so the epoch in each
        # batch's seed is right however many workers run, threads or processes.
        super().__init__(workers=config.data_workers, use_multiprocessing=config.data_processes,
                         max_queue_size=max(10, 2 * config.data_workers))
        self.sticks, self.labels, self.config = sticks, labels, config
        self.weights, self.steps, self.seed = weights, steps, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        rows = rng.integers(0, len(self.labels), self.config.batch_size)
        x = make_inputs(_subset(self.sticks, rows), self.config, self.config.augmentation, rng)
        y = keras.utils.to_categorical(self.labels[rows] - 1, 230)
        return x, y, self.weights[self.labels[rows] - 1].astype(np.float32)


class _Reporter(keras.callbacks.Callback):
    """Records progress for the caller and honours stop requests; never touches a UI."""

    def __init__(self, hook: ProgressHook | None, stop: threading.Event | None,
                 epochs: int, steps: int, every: int, time_limit_s: float | None = None):
        super().__init__()
        self.hook, self.stop, self.epochs, self.steps, self.every = hook, stop, epochs, steps, every
        self.time_limit_s = time_limit_s
        self.best_loss, self.best_weights, self.start = np.inf, None, time.time()
        self.epoch = 0
        self.stopped = False

    def _lr(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _emit(self, **event) -> None:
        if self.hook:
            done = self.epoch * self.steps + event.get("batch", self.steps)
            elapsed = time.time() - self.start
            total = self.epochs * self.steps
            event.update(elapsed=elapsed, epochs=self.epochs, batches=self.steps,
                         eta=elapsed / max(done, 1) * (total - done), lr=self._lr())
            self.hook(event)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0 or batch + 1 == self.steps:
            self._emit(type="batch", epoch=self.epoch, batch=batch + 1,
                       logs={k: float(v) for k, v in (logs or {}).items()})
        if self.stop is not None and self.stop.is_set():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = self._lr()  # the History sees it too
        logs = {k: float(v) for k, v in (logs or {}).items()}
        loss = logs.get("val_loss", logs.get("loss", np.inf))
        if loss < self.best_loss:
            self.best_loss, self.best_weights = loss, self.model.get_weights()
        self._emit(type="epoch", epoch=epoch + 1, batch=self.steps, logs=logs)
        if self.time_limit_s is not None and time.time() - self.start > self.time_limit_s:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


@dataclass
class TrainingResult:
    """What a finished run produced."""

    model: keras.Model
    metadata: registry.ModelMetadata
    history: pd.DataFrame
    evaluation: dict


def fixed_inputs(dataset: Dataset, rows: np.ndarray, config: TrainingConfig,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels of ``rows`` augmented once with a fixed seed (validation, test)."""
    sticks = stick_batch(dataset, rows, config.max_peaks)
    labels = dataset.labels[rows]
    chunks = [make_inputs(_subset(sticks, np.arange(i, min(i + 512, len(rows)))), config,
                          config.augmentation, np.random.default_rng([seed, i]))
              for i in range(0, len(rows), 512)]
    width = config.grid.size if config.input_type == "grid" else 2 * config.padded_length
    return (np.concatenate(chunks) if chunks else np.zeros((0, width), np.float32)), labels


def train(dataset: Dataset, config: TrainingConfig, progress: ProgressHook | None = None,
          stop: threading.Event | None = None, save: bool = True,
          data_split: Split | None = None, description: str = "") -> TrainingResult:
    """Train ``config.kind`` on ``dataset`` and (by default) save it as a model folder.

    Args:
        progress: called with an event dict every ``config.report_every`` batches
            (``type="batch"``) and after every epoch (``type="epoch"``); keys include
            ``epoch, batch, epochs, batches, logs, lr, elapsed, eta``.
        stop: set it to end training after the current batch; the best weights so far are kept
            and the run is saved with status ``stopped``.
        save: write the model folder under ``models/<config.name>``.
        data_split: rows to use (default: a stratified split from the config's fractions).
        description: text for the model card.

    Raises:
        registry.ModelError: invalid name or the name is taken.
        ValueError: unusable settings or data; the failure is recorded in the model folder.
    """
    registry.check_name(config.name)
    if save and registry.model_path(config.name).exists():
        raise registry.ModelError(f"a model named {config.name!r} already exists")
    started = time.time()
    try:
        return _train(dataset, config, progress, stop, save, data_split, started, description)
    except Exception as exc:
        if save:
            _record_failure(dataset, config, exc, started)
        raise


LR_SCHEDULES = ("plateau", "cosine")


def _learning_rate(config: TrainingConfig, steps: int):
    """A fixed rate (adjusted by ReduceLROnPlateau) or a cosine schedule over the whole run."""
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {config.lr_schedule!r} "
                         f"({', '.join(LR_SCHEDULES)})")
    if config.lr_schedule == "plateau":
        return config.learning_rate
    total = max(2, config.epochs * steps)
    warmup = min(total // 2, max(1, total // 50))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10, decay_steps=total - warmup, alpha=0.01,
        warmup_target=config.learning_rate, warmup_steps=warmup)


def _loss(config: TrainingConfig):
    if config.lattice_loss_weight == 0:
        return "categorical_crossentropy"
    return LatticeAwareCrossentropy(config.lattice_loss_weight)


def _train(dataset, config, progress, stop, save, data_split, started, description) -> TrainingResult:
    keras.utils.set_random_seed(config.seed)
    if config.data_workers < 1:
        raise ValueError(f"data_workers must be at least 1, not {config.data_workers}")
    parts = data_split or split(dataset, config.validation, config.test, config.split_seed,
                                config.group_by_formula)
    if len(parts.train) == 0:
        raise ValueError("the training split is empty")
    sticks = stick_batch(dataset, parts.train, config.max_peaks)
    labels = dataset.labels[parts.train]
    weights = class_weights(labels, config.class_weighting)
    steps = config.steps_per_epoch or max(1, int(np.ceil(len(labels) / config.batch_size)))
    batches = AugmentedBatches(sticks, labels, config, weights, steps, config.seed)
    x_val, y_val = fixed_inputs(dataset, parts.validation, config, seed=1)

    input_length = config.grid.size if config.input_type == "grid" else 2 * config.padded_length
    if config.initial_model:
        model, hyperparameters = _initial_model(config)
        config = replace(config, hyperparameters=hyperparameters)
    else:
        try:
            model = build(config.kind, input_length,
                          grid=config.grid if config.input_type == "grid" else None,
                          **config.hyperparameters)
        except TypeError as exc:  # an argument the builder does not take
            raise ValueError(f"invalid hyperparameters for {config.kind}: {exc}") from exc
    model.compile(optimizer=keras.optimizers.Adam(_learning_rate(config, steps)),
                  loss=_loss(config),
                  metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(5, name="top5")])
    reporter = _Reporter(progress, stop, config.epochs, steps, config.report_every,
                         None if config.time_limit_minutes is None else 60 * config.time_limit_minutes)
    monitor = "val_loss" if len(x_val) else "loss"
    callbacks = [reporter,
                 keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience)]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=config.reduce_lr_patience, min_lr=1e-5))
    validation = (x_val, keras.utils.to_categorical(y_val - 1, 230)) if len(x_val) else None
    fit = model.fit(batches, epochs=config.epochs, validation_data=validation,
                    callbacks=callbacks, verbose=0)
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))

    x_test, y_test = fixed_inputs(dataset, parts.test, config, seed=2)
    evaluation: dict = {}
    if len(x_test):
        probabilities = model.predict(x_test, batch_size=256, verbose=0)
        evaluation = {
            "set": f"{dataset.name} test split", "metrics": evaluate(y_test, probabilities).to_dict(),
            "system_confusion": system_confusion(y_test, probabilities).tolist(),
            "true": y_test.tolist(), "predicted": (probabilities.argmax(1) + 1).tolist(),
        }
    metadata = registry.ModelMetadata(
        name=config.name, kind=config.kind, input_type=config.input_type,
        grid=config.grid.to_dict(), padded_length=config.padded_length,
        dataset={"name": dataset.name, "patterns": len(dataset), "train": len(parts.train),
                 "validation": len(parts.validation), "test": len(parts.test),
                 "split_seed": config.split_seed, "group_by_formula": config.group_by_formula,
                 **({"parts": [name for name, _ in dataset.meta["parts"]]}
                    if dataset.meta.get("parts") else {})},
        hyperparameters=config.to_dict(), augmentation=config.augmentation.to_dict(),
        metrics=evaluation.get("metrics", {}),
        status="stopped" if reporter.stopped else "done",
        training_seconds=round(time.time() - started, 1), description=description,
        training_prior=[round(float(v), 8) for v in training_prior(labels, weights)],
    )
    if save:
        registry.save_model(model, metadata, history, evaluation)
    return TrainingResult(model, metadata, history, evaluation)


def _initial_model(config: TrainingConfig) -> tuple[keras.Model, dict]:
    """The saved model a run continues from, checked against the run's settings."""
    model, metadata = registry.load_model(config.initial_model)
    hyperparameters = dict(metadata.hyperparameters.get("hyperparameters", {}))
    mismatches = [
        f"{what} {theirs!r} (this run: {ours!r})" for what, theirs, ours in (
            ("kind", metadata.kind, config.kind),
            ("input", metadata.input_type, config.input_type),
            ("grid" if config.input_type == "grid" else "padded length",
             *((metadata.grid, config.grid.to_dict()) if config.input_type == "grid"
               else (metadata.padded_length, config.padded_length))),
            ("classes", "230 space groups" if list(metadata.classes) == list(range(1, 231))
             else f"{len(metadata.classes)} classes", "230 space groups"))
        if theirs != ours]
    if mismatches:
        raise ValueError(f"cannot continue from model {metadata.name!r}: " + "; ".join(mismatches))
    if "dropout" in config.hyperparameters:
        rate = float(config.hyperparameters["dropout"])
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {rate}")
        if "dropout" not in inspect.signature(BUILDERS[metadata.kind].builder).parameters:
            raise ValueError(f"a {metadata.kind} model has no dropout setting to change")
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = rate
        hyperparameters["dropout"] = rate
    growth = {key: config.hyperparameters[key] for key in ("extra_blocks", "ratio_lags")
              if key in config.hyperparameters}
    if growth:
        if metadata.kind != "resnet1d":
            parts = {"extra_blocks": "extra blocks", "ratio_lags": "d-ratio branch"}
            raise ValueError(f"a {metadata.kind} model has no "
                             f"{' or '.join(parts[key] for key in growth)} to add")
        for key, value in growth.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{key} must be a whole number, not {value!r}")
        if any(value != int(hyperparameters.get(key, 0)) for key, value in growth.items()):
            model = grow_resnet1d(model, hyperparameters, config.grid, **growth)
            hyperparameters.update(growth)
    return model, hyperparameters


def _record_failure(dataset: Dataset, config: TrainingConfig, exc: Exception, started: float) -> None:
    folder = registry.models_dir() / config.name
    if (folder / registry.MODEL_FILE).exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    registry.write_metadata(folder, registry.ModelMetadata(
        name=config.name, kind=config.kind, input_type=config.input_type,
        dataset={"name": dataset.name}, hyperparameters=config.to_dict(), status="failed",
        error=f"{exc.__class__.__name__}: {exc}", training_seconds=round(time.time() - started, 1)))
