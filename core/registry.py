"""Saved models: one folder per model holding everything needed to use it again.

    models/<name>/
        model.keras       the Keras model (loaded with safe mode: no Lambda code runs)
        metadata.json     ModelMetadata: grid, input type, preprocessing, classes, dataset,
                          hyperparameters, metrics, status
        history.csv       per-epoch training history
        evaluation.json   test-split evaluation (metrics and confusion matrix)

A folder is written under a temporary name and renamed into place, so a crash while saving
never leaves a half-written model (what a killed save leaves behind is hidden, and deleted by
a later save once it is six hours old). A training run that fails leaves a folder holding only
``metadata.json`` with ``status: failed`` and the error, so that the failure is listed.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from core.grid import CU_KA, TwoThetaGrid
from core.paths import BUNDLED_MODEL, bundled_model_path, models_dir, remove_stale_temporaries

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.csv"
EVALUATION_FILE = "evaluation.json"
MODEL_FOLDER_FILES = frozenset({MODEL_FILE, METADATA_FILE, HISTORY_FILE, EVALUATION_FILE})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ModelError(ValueError):
    """A model that is missing, corrupt or cannot be saved; the message says which and why."""


@dataclass
class ModelMetadata:
    """Everything about a model apart from its weights.

    Attributes:
        name: folder name.
        kind: builder key (see :data:`core.models.BUILDERS`).
        input_type: ``grid`` or ``padded``.
        grid: the 2θ grid (for ``grid`` inputs; also the range the model was trained on).
        padded_length: peaks per pattern (for ``padded`` inputs).
        wavelength: Å; measured patterns are converted to it.
        preprocessing: default preprocessing for measured patterns.
        classes: space-group numbers of the output units, in order.
        dataset: name, size and split of the training data (``parts``: the names of
            the datasets it combines, when it was trained on several).
        hyperparameters: builder and training settings.
        augmentation: the augmentation ranges used in training.
        metrics: headline test metrics (see :class:`core.evaluation.Metrics`).
        status: ``running``, ``done``, ``stopped`` or ``failed``.
        error: the failure message when ``status`` is ``failed``.
        created: ISO timestamp.
        training_seconds: wall time of training.
        description: free text shown on the model card.
        training_prior: (230,) space-group distribution the model was trained under (class
            weights included), for :func:`core.prior.adjust_for_prior`; empty when unknown.
    """

    name: str
    kind: str
    input_type: str = "grid"
    grid: dict = field(default_factory=lambda: TwoThetaGrid().to_dict())
    padded_length: int = 256
    wavelength: float = CU_KA
    preprocessing: dict = field(default_factory=dict)
    classes: list[int] = field(default_factory=lambda: list(range(1, 231)))
    dataset: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    status: str = "done"
    error: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    training_seconds: float = 0.0
    description: str = ""
    training_prior: list[float] = field(default_factory=list)

    @property
    def two_theta_grid(self) -> TwoThetaGrid:
        return TwoThetaGrid.from_dict(self.grid)

    @property
    def training_augmentation(self):
        """The perturbations the model was trained with (:class:`core.augmentation.Augmentation`;
        the defaults when none were recorded)."""
        from core.augmentation import Augmentation  # rendering code: only when asked for

        return Augmentation.from_dict(self.augmentation or {})

    @property
    def input_length(self) -> int:
        return self.two_theta_grid.size if self.input_type == "grid" else 2 * self.padded_length

    def trained_on(self, dataset_name: str) -> bool:
        """Whether ``dataset_name`` was (one of) the training dataset(s); its test split is then
        the one recorded in :attr:`dataset`."""
        return dataset_name in (self.dataset.get("parts") or [self.dataset.get("name")])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelMetadata":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def check_name(name: str) -> str:
    """A model name safe to use as a folder name, or :class:`ModelError`."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ModelError(f"invalid model name {name!r}: use letters, digits, '_', '-', '.' "
                         "(at most 64 characters)")
    return name


def model_path(name: str) -> Path:
    """Folder of model ``name`` (the bundled model lives in the project folder)."""
    check_name(name)
    path = models_dir() / name
    if name == BUNDLED_MODEL and not path.exists():
        return bundled_model_path()
    return path


def is_protected(name: str) -> bool:
    return name == BUNDLED_MODEL


def list_models() -> list[ModelMetadata]:
    """Metadata of every saved model (bundled first, then newest first); unreadable folders,
    and finished runs whose model file is missing or truncated, are listed with status
    ``corrupt`` rather than hidden."""
    folders = {p.name: p for p in models_dir().glob("*") if p.is_dir() and not p.name.startswith(".")}
    if BUNDLED_MODEL not in folders and bundled_model_path().exists():
        folders[BUNDLED_MODEL] = bundled_model_path()
    found = []
    for name, folder in folders.items():
        if not (folder / METADATA_FILE).exists():
            continue
        try:
            metadata = read_metadata(folder)
        except ModelError as exc:
            found.append(ModelMetadata(name=name, kind="?", status="corrupt", error=str(exc)))
            continue
        if metadata.status in ("done", "stopped") and not zipfile.is_zipfile(folder / MODEL_FILE):
            metadata.status = "corrupt"  # missing or truncated: a .keras file is a zip archive
            metadata.error = f"model {name}: {MODEL_FILE} is missing or damaged"
        found.append(metadata)
    found.sort(key=lambda m: m.created, reverse=True)
    found.sort(key=lambda m: m.name != BUNDLED_MODEL)
    return found


def read_metadata(folder: Path) -> ModelMetadata:
    try:
        return ModelMetadata.from_dict(json.loads((folder / METADATA_FILE).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"model {folder.name}: unreadable metadata ({exc})") from exc


def write_metadata(folder: Path, metadata: ModelMetadata) -> None:
    _atomic_write(folder / METADATA_FILE, json.dumps(metadata.to_dict(), indent=2, default=_json))


def _json(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def save_model(model, metadata: ModelMetadata, history: pd.DataFrame | None = None,
               evaluation: dict | None = None, replace: bool = False) -> Path:
    """Write a complete model folder atomically and return its path."""
    target = models_dir() / check_name(metadata.name)
    if target.exists() and not replace:
        raise ModelError(f"a model named {metadata.name!r} already exists")
    models_dir().mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(models_dir(), MODEL_FOLDER_FILES)
    staging = Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{metadata.name}."))
    try:
        _without_optimizer(model).save(staging / MODEL_FILE)
        write_metadata(staging, metadata)
        if history is not None:
            history.to_csv(staging / HISTORY_FILE, index=False)
        if evaluation is not None:
            (staging / EVALUATION_FILE).write_text(json.dumps(evaluation, default=_json))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _without_optimizer(model):
    """An uncompiled copy of ``model`` with the same weights: the saved file then holds no
    optimizer state (a third of its size) and nothing that needs compiling to load."""
    import keras

    if getattr(model, "optimizer", None) is None:  # never compiled
        return model
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def load_model(name_or_path: str | Path):
    """Load a model folder's Keras model and metadata (Keras safe mode).

    Returns:
        (keras.Model, ModelMetadata)

    Raises:
        ModelError: missing or corrupt folder, or a model that needs unsafe deserialisation.
    """
    import keras

    import core.models.layers  # noqa: F401  (registers the custom layers safe mode may load)

    folder = Path(name_or_path) if Path(name_or_path).is_dir() else model_path(str(name_or_path))
    if not (folder / MODEL_FILE).exists():
        raise ModelError(f"model {folder.name!r} not found or incomplete ({folder})")
    metadata = read_metadata(folder)
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for damaged or unsafe files
        raise ModelError(f"model {folder.name}: cannot be loaded safely ({exc})") from exc
    return model, metadata


def load_history(name: str) -> pd.DataFrame:
    path = model_path(name) / HISTORY_FILE
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def load_evaluation(name: str) -> dict:
    path = model_path(name) / EVALUATION_FILE
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError as exc:
        raise ModelError(f"model {name}: unreadable evaluation ({exc})") from exc


def delete_model(name: str) -> None:
    """Delete a saved model; the bundled model is protected."""
    if is_protected(name):
        raise ModelError("the bundled model is protected and cannot be deleted")
    path = models_dir() / check_name(name)
    if not path.exists():
        raise ModelError(f"model {name!r} not found")
    shutil.rmtree(path)


def rename_model(old: str, new: str) -> None:
    """Rename a saved model (folder and metadata)."""
    if is_protected(old):
        raise ModelError("the bundled model is protected and cannot be renamed")
    source, target = models_dir() / check_name(old), models_dir() / check_name(new)
    if not source.exists():
        raise ModelError(f"model {old!r} not found")
    if target.exists() or new == BUNDLED_MODEL:
        raise ModelError(f"a model named {new!r} already exists")
    metadata = read_metadata(source)
    metadata.name = new
    write_metadata(source, metadata)
    os.replace(source, target)


def zip_model(name: str) -> bytes:
    """The model folder as zip bytes, for download."""
    folder = model_path(name)
    if not folder.exists():
        raise ModelError(f"model {name!r} not found")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{name}/{path.name}")
    return buffer.getvalue()
