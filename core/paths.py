"""Where datasets and models live. Environment variables let tests and users move them."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATASET = "default"
BUNDLED_MODEL = "default"


def datasets_dir() -> Path:
    """Folder of the dataset store (``XRD_DATASETS_DIR``, default ``<project>/datasets``)."""
    return Path(os.environ.get("XRD_DATASETS_DIR", PROJECT_ROOT / "datasets"))


def models_dir() -> Path:
    """Folder of saved models (``XRD_MODELS_DIR``, default ``<project>/models``)."""
    return Path(os.environ.get("XRD_MODELS_DIR", PROJECT_ROOT / "models"))


def bundled_dataset_path() -> Path:
    """The dataset shipped with the project; it always lives in the project folder."""
    return PROJECT_ROOT / "datasets" / f"{BUNDLED_DATASET}.parquet"


def bundled_model_path() -> Path:
    """The model shipped with the project."""
    return PROJECT_ROOT / "models" / BUNDLED_MODEL


# What an interrupted atomic save can leave behind: ``tempfile`` names end in 8 random
# characters, so ``.<name>.<8 chars>.tmp`` (a file) or ``.<name>.<8 chars>`` (a staging folder).
_TEMPORARY = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9_.-]*\.[a-z0-9_]{8}(\.tmp)?$")
STALE_AFTER_S = 6 * 3600.0


def remove_stale_temporaries(folder: Path, folder_files: frozenset[str] = frozenset(),
                             max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete leftovers of saves that were killed part-way, and return what was deleted.

    Only hidden entries named like this project's temporary files and older than
    ``max_age_s`` are touched (a save in progress elsewhere is younger); a staging folder is
    deleted only when it holds nothing but ``folder_files`` and temporary files, so that a
    folder which merely looks similar is never lost.
    """
    removed: list[Path] = []
    cutoff = time.time() - max_age_s
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            if not _TEMPORARY.match(entry.name) or entry.lstat().st_mtime > cutoff:
                continue
            if entry.is_file() and not entry.is_symlink() and entry.name.endswith(".tmp"):
                entry.unlink()
            elif entry.is_dir() and not entry.is_symlink() and all(
                    child.is_file() and (child.name in folder_files or _TEMPORARY.match(child.name))
                    for child in entry.iterdir()):
                shutil.rmtree(entry)
            else:
                continue
            removed.append(entry)
        except OSError:
            continue  # gone already, or not ours to delete
    return removed
