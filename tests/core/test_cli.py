"""The command line. ``classify`` and ``models`` run as real ``python -m core`` processes; the
slower commands run through ``core.cli.main`` in this process (same code, no second
TensorFlow start-up)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import PROJECT, RRUFF_DEV, needs_rruff, rows_outside

from core import dataset as store
from core import registry
from core.cli import main

SILICON_LINES = ((28.44, 1000.0), (47.30, 550.0), (56.12, 300.0), (69.13, 80.0), (76.38, 110.0))
JSON_KEYS = {"file", "space_group", "crystal_system", "error"}


def write_xy(path: Path, peaks=SILICON_LINES, seed: int = 0) -> Path:
    tt = np.arange(5.0, 90.01, 0.02)
    y = 80 + 0.5 * (90 - tt) + sum(h * np.exp(-0.5 * ((tt - c) / 0.06) ** 2) for c, h in peaks)
    y = y + np.random.default_rng(seed).normal(0, 3, tt.size)
    path.write_text("\n".join(f"{a:.3f} {b:.2f}" for a, b in zip(tt, y)) + "\n")
    return path


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m core ARGS`` from the project root, with the session's store folders."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    assert env["XRD_MODELS_DIR"] != str(PROJECT / "models")  # the isolated store
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_classify_json_good_and_bad(tiny_model, tmp_path):
    """One process (TensorFlow starts once) for made-up files and, when ../shared is there,
    five RRUFF measurements."""
    good = write_xy(tmp_path / "good.xy")
    bad = tmp_path / "bad.xy"
    bad.write_text("not a pattern\n")
    other = write_xy(tmp_path / "other.xy", peaks=((20.0, 500.0), (35.0, 900.0)), seed=1)
    rruff = [str(p) for p in sorted(RRUFF_DEV.glob("R*.csv"))[:5]] if RRUFF_DEV.exists() else []
    result = run_cli("classify", "--json", "--model", "tiny", str(good), str(bad), str(other), *rruff)
    assert result.returncode == 1, result.stderr
    lines = json_lines(result.stdout)
    assert [line["file"] for line in lines] == [str(good), str(bad), str(other), *rruff]
    for line in lines[3:]:
        assert line["error"] is None
        assert len(line["space_group"]) == 5 and len(line["crystal_system"]) == 7
    for line in lines:  # indexed by default: a "cell" (null when none) for every file read
        assert set(line) == JSON_KEYS | ({"cell"} if line["error"] is None else set())
    assert lines[0]["error"] is None and len(lines[0]["space_group"]) == 5
    assert len(lines[0]["crystal_system"]) == 7
    assert lines[1]["space_group"] == [] and lines[1]["crystal_system"] == []
    assert "bad.xy" in lines[1]["error"]
    assert lines[2]["error"] is None
    assert "Traceback" not in result.stderr
    # The same answers as the library gives.
    from core.classify import Classifier

    expected = Classifier.load("tiny").classify_files([good])[0].to_json()
    assert lines[0]["space_group"][0]["number"] == expected["space_group"][0]["number"]
    assert lines[0]["space_group"][0]["probability"] == pytest.approx(
        expected["space_group"][0]["probability"], abs=1e-4)


def test_classify_all_good_top3_and_text(tiny_model, tmp_path, capsys):
    files = [str(write_xy(tmp_path / f"p{i}.xy", seed=i)) for i in range(2)]
    assert main(["classify", "--json", "--top", "3", "--model", "tiny", *files]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert len(lines) == 2
    assert all(len(line["space_group"]) == 3 and line["error"] is None for line in lines)
    # Plain text: one line per file, "file: n symbol (p), ... | system (p)".
    assert main(["classify", "--model", "tiny", files[0], str(tmp_path / "missing.xy")]) == 1
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith(files[0] + ": ") and " | " in text[0]
    assert "missing.xy" in text[1] and "ERROR" in text[1]


def test_classify_unknown_model(tmp_path, capsys):
    path = write_xy(tmp_path / "x.xy")
    assert main(["classify", "--model", "no_such_model", str(path)]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_models_lists_tiny(tiny_model):
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "tiny" in rows and "default" in rows
    assert "resnet1d" in rows["tiny"] and "done" in rows["tiny"]
    assert result.stdout.splitlines()[0].startswith("default")


def test_generate_creates_a_dataset(capsys):
    code = main(["generate", "--name", "g", "--per-group", "1", "--space-groups", "2", "14",
                 "--processes", "1", "--max-atoms", "24"])
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"):])
    assert summary["name"] == "g"
    dataset = store.load("g")
    assert store.dataset_path("g").parent == Path(os.environ["XRD_DATASETS_DIR"])
    assert summary["patterns"] == len(dataset) == 2
    assert dataset.table["requested_sg"].tolist() == [2, 14]
    assert dataset.table["source"].unique().tolist() == ["synthetic"]
    assert dataset.meta["command"].startswith("python -m core generate")
    # --append grows it, with new ids.
    assert main(["generate", "--name", "g", "--per-group", "1", "--space-groups", "62",
                 "--processes", "1", "--max-atoms", "24", "--seed", "1", "--append"]) == 0
    capsys.readouterr()
    assert len(store.load("g")) == 3


def test_generate_with_the_fast_engine(capsys):
    assert main(["generate", "--name", "quick", "--total", "40", "--minimum", "0", "--seed", "2",
                 "--processes", "1", "--engine", "fast"]) == 0
    capsys.readouterr()
    table = store.load("quick").table
    assert 30 <= len(table) <= 40
    assert table["source"].unique().tolist() == ["fast"]
    assert (table["requested_sg"] == table["sg_number"]).all()


def test_generate_with_cod_site_counts_makes_larger_cells(capsys):
    common = ["--total", "30", "--minimum", "0", "--seed", "4", "--processes", "1",
              "--engine", "fast", "--max-atoms", "160"]
    assert main(["generate", "--name", "few", *common]) == 0
    assert main(["generate", "--name", "cod", *common, "--sites", "cod"]) == 0
    capsys.readouterr()
    few, cod = store.load("few").table, store.load("cod").table
    assert "--sites cod" in store.load("cod").meta["command"]
    assert cod["n_sites"].mean() > few["n_sites"].mean()
    assert (cod["requested_sg"] == cod["sg_number"]).all()


def test_generate_nothing_to_do(capsys):
    assert main(["generate", "--name", "nothing"]) == 2
    assert "nothing to generate" in capsys.readouterr().err
    assert not store.dataset_path("nothing").exists()


def test_train_tiny(small_dataset, capsys):
    code = main(["train", "--name", "cli_trained", "--dataset", "small", "--model", "baseline_ann",
                 "--hyperparameters", '{"units": 16}', "--epochs", "1", "--steps", "1",
                 "--batch-size", "8", "--description", "from the CLI test", "--lr-schedule", "cosine",
                 "--augmentation", "0.5", "--augmentation-ranges", '{"lattice_strain": 0.08}',
                 "--validation", "0.05", "--test", "0.2"])
    assert code == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("{"):])  # after the per-epoch log lines
    assert "top1" in metrics and metrics["n"] > 0
    meta = registry.read_metadata(registry.model_path("cli_trained"))
    assert meta.status == "done" and meta.kind == "baseline_ann"
    assert meta.description == "from the CLI test"
    assert meta.hyperparameters["hyperparameters"] == {"units": 16}
    assert meta.hyperparameters["batch_size"] == 8
    assert meta.hyperparameters["lr_schedule"] == "cosine"
    assert meta.hyperparameters["validation"] == 0.05 and meta.hyperparameters["test"] == 0.2
    assert meta.augmentation["lattice_strain"] == 0.08 and meta.augmentation["strength"] == 0.5
    assert meta.augmentation["zero_shift_deg"] == 0.08  # the other ranges keep their defaults
    # --init-from continues from the saved run, with its architecture.
    assert main(["train", "--name", "cli_continued", "--dataset", "small", "--model",
                 "baseline_ann", "--init-from", "cli_trained", "--epochs", "1", "--steps", "1",
                 "--batch-size", "8", "--data-workers", "2", "--data-processes",
                 "--lattice-loss-weight", "0.3"]) == 0
    continued = registry.read_metadata(registry.model_path("cli_continued"))
    assert continued.hyperparameters["initial_model"] == "cli_trained"
    assert continued.hyperparameters["lattice_loss_weight"] == 0.3
    assert meta.hyperparameters["lattice_loss_weight"] == 0.0
    assert continued.hyperparameters["data_workers"] == 2
    assert continued.hyperparameters["data_processes"] is True
    assert meta.hyperparameters["data_processes"] is False
    assert continued.hyperparameters["hyperparameters"] == {"units": 16}


def test_train_progress_bar_counts_each_epochs_own_batches(small_dataset, capsys):
    assert main(["train", "--name", "cli_bar", "--dataset", "small", "--model", "baseline_ann",
                 "--hyperparameters", '{"units": 8}', "--epochs", "2", "--steps", "3",
                 "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    for epoch in (1, 2):
        bars = re.findall(rf"epoch {epoch}/2:\s+\d+%\|[^|]*\| (\d+)/(\d+)", err)
        assert bars and bars[-1] == ("3", "3"), (epoch, bars)  # counted 1..3, not 4..6
        assert all(int(done) <= 3 for done, _ in bars)


def test_train_on_two_datasets(bundled_dataset, small_dataset, capsys):
    other = store.create("small_other", rows_outside(small_dataset, bundled_dataset, 120),
                         command="test")
    assert main(["train", "--name", "cli_two_sets", "--dataset", "small", "small_other",
                 "--model", "baseline_ann", "--hyperparameters", '{"units": 8}', "--epochs", "1",
                 "--steps", "1", "--batch-size", "8", "--validation", "0.1", "--test", "0.2"]) == 0
    capsys.readouterr()
    meta = registry.read_metadata(registry.model_path("cli_two_sets"))
    assert meta.dataset["name"] == "small+small_other"
    assert meta.dataset["parts"] == ["small", "small_other"]
    assert meta.dataset["patterns"] == len(small_dataset) + len(other)
    held_out = [len(store.split(d, 0.1, 0.2).test) for d in (small_dataset, other)]
    assert meta.dataset["test"] == sum(held_out)
    assert meta.trained_on("small") and meta.trained_on("small_other")
    assert not meta.trained_on("small+small_other") and not meta.trained_on("default")
    assert main(["train", "--name", "cli_twice", "--dataset", "small", "small"]) == 2
    assert "named twice" in capsys.readouterr().err
    store.create("small_copy", small_dataset.table.head(50), command="test")
    assert main(["train", "--name", "cli_copy", "--dataset", "small", "small_copy"]) == 2
    assert "'small' and 'small_copy' share 50 pattern ids" in capsys.readouterr().err
    assert not registry.model_path("cli_copy").exists()


def test_train_bad_settings_exit_cleanly(small_dataset, capsys):
    assert main(["train", "--name", "cli_missing_data", "--dataset", "no_such_dataset"]) == 2
    assert "no_such_dataset" in capsys.readouterr().err
    assert main(["train", "--name", "cli_bad_json", "--dataset", "small",
                 "--hyperparameters", "{not json"]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["train", "--name", "../escape", "--dataset", "small"]) == 2
    assert "invalid model name" in capsys.readouterr().err
    assert main(["train", "--name", "cli_bad_ranges", "--dataset", "small",
                 "--augmentation-ranges", '{"lattice_strian": 0.1}']) == 2
    assert "lattice_strian" in capsys.readouterr().err
    assert main(["train", "--name", "cli_list_ranges", "--dataset", "small",
                 "--augmentation-ranges", "[0.1]"]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["train", "--name", "cli_no_start", "--dataset", "small",
                 "--init-from", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err
    assert main(["train", "--name", "cli_no_workers", "--dataset", "small",
                 "--data-workers", "0"]) == 2
    assert "data_workers must be at least 1" in capsys.readouterr().err
    for weight in ("-0.5", "nan", "heavy"):
        with pytest.raises(SystemExit):
            main(["train", "--name", "cli_bad_lattice", "--dataset", "small",
                  "--lattice-loss-weight", weight])
        assert "is not a number of 0 or more" in capsys.readouterr().err
    assert not registry.model_path("cli_bad_lattice").exists()


def test_train_unknown_hyperparameter_exits_cleanly(small_dataset, capsys):
    """A builder setting that does not exist is a user error: one 'error:' line, exit 2, and
    the failed run is recorded."""
    code = main(["train", "--name", "cli_bad_hp", "--dataset", "small", "--model", "baseline_ann",
                 "--hyperparameters", '{"nonexistent": 1}', "--epochs", "1", "--steps", "1"])
    assert code == 2
    assert "nonexistent" in capsys.readouterr().err
    assert registry.read_metadata(registry.model_path("cli_bad_hp")).status == "failed"


def test_evaluate_dataset(tiny_model, capsys):
    assert main(["evaluate", "--dataset", "small", "--model", "tiny", "--no-index"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "tiny" and report["set"] == "small test split"
    assert 0.0 <= report["top1"] <= report["top5"] <= 1.0
    assert report["n"] == len(store.split(store.load("small")).test)
    assert {"majority_top1", "frequency_top1", "system_accuracy"} <= set(report)
    for metric, (low, high) in report["interval_95"].items():  # each metric's bootstrap interval
        assert low <= report[metric] <= high, metric
    assert set(report["interval_95"]) == {"top1", "top5", "balanced_accuracy", "macro_f1",
                                          "system_accuracy"}


@needs_rruff
def test_rruff_files_exist_for_the_classify_test():
    assert len(sorted(RRUFF_DEV.glob("R*.csv"))) >= 5


def test_datasets_lists_the_store(small_dataset, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "default"
    assert any(line.split()[0] == "small" and "patterns" in line for line in out)


def test_generate_with_system_site_counts(capsys):
    common = ["--total", "0", "--minimum", "0", "--per-group", "6", "--space-groups", "2",
              "--seed", "4", "--processes", "1", "--engine", "fast", "--max-atoms", "160"]
    assert main(["generate", "--name", "all_cod", *common, "--sites", "cod"]) == 0
    assert main(["generate", "--name", "by_system", *common, "--sites", "cod-system"]) == 0
    capsys.readouterr()
    all_cod, by_system = store.load("all_cod").table, store.load("by_system").table
    assert "--sites cod-system" in store.load("by_system").meta["command"]
    assert (by_system["sg_number"] == 2).all() and len(by_system) >= 4
    # Triclinic crystals take COD's triclinic site counts: larger cells than COD overall.
    assert by_system["n_sites"].median() > 2 * all_cod["n_sites"].median()
    with pytest.raises(SystemExit):
        main(["generate", "--name", "bad", *common, "--sites", "many"])


def test_generate_with_cod_site_symmetries(capsys):
    common = ["--total", "0", "--minimum", "0", "--per-group", "6", "--space-groups", "14",
              "--seed", "5", "--processes", "1", "--engine", "fast", "--max-atoms", "160",
              "--sites", "cod-system"]
    assert main(["generate", "--name", "cod_positions", *common, "--positions", "cod-system"]) == 0
    assert main(["generate", "--name", "preferred_positions", *common]) == 0
    capsys.readouterr()
    cod, preferred = store.load("cod_positions"), store.load("preferred_positions")
    assert "--positions cod-system" in cod.meta["command"]
    assert (cod.table["sg_number"] == 14).all() and len(cod.table) >= 4
    # The same seed: only the choice of Wyckoff positions differs, and it reaches the crystals.
    assert cod.table["n_sites"].tolist() != preferred.table["n_sites"].tolist()
    with pytest.raises(SystemExit):
        main(["generate", "--name", "bad", *common, "--positions", "anywhere"])


def test_generate_with_cod_cell_sizes(capsys):
    common = ["--total", "0", "--minimum", "0", "--per-group", "6", "--space-groups", "225",
              "--seed", "6", "--processes", "1", "--engine", "fast", "--max-atoms", "160",
              "--positions", "cod-system"]
    assert main(["generate", "--name", "cod_cells", *common, "--sites", "cod-cells"]) == 0
    assert main(["generate", "--name", "cod_sites", *common, "--sites", "cod-system"]) == 0
    capsys.readouterr()
    cells, sites = store.load("cod_cells"), store.load("cod_sites")
    assert "--sites cod-cells" in cells.meta["command"]
    assert (cells.table["sg_number"] == 225).all() and len(cells.table) >= 4
    assert cells.table["n_sites"].max() <= 160
    # The same seed: only the cell-size plan differs, and it reaches the crystals (how much
    # smaller they come out is measured in tests/core/test_fast_crystals.py).
    assert cells.table["n_sites"].tolist() != sites.table["n_sites"].tolist()


def test_generate_near_grid_crystals(capsys):
    common = ["--total", "0", "--minimum", "0", "--per-group", "6", "--space-groups", "14",
              "--seed", "8", "--processes", "1", "--max-atoms", "160", "--sites", "cod-cells"]
    assert main(["generate", "--name", "near_grid", *common, "--engine", "fast",
                 "--pseudo-symmetry", "1"]) == 0
    assert main(["generate", "--name", "uniform", *common, "--engine", "fast"]) == 0
    capsys.readouterr()
    near_grid, uniform = store.load("near_grid"), store.load("uniform")
    assert "--pseudo-symmetry 1" in near_grid.meta["command"]
    assert (near_grid.table["sg_number"] == 14).all() and len(near_grid.table) >= 4
    assert near_grid.table["formula"].tolist() != uniform.table["formula"].tolist()
    # pyxtal places atoms itself: refused before anything is made.
    assert main(["generate", "--name", "near_grid_pyxtal", *common,
                 "--pseudo-symmetry", "0.5"]) == 2
    assert "needs --engine fast" in capsys.readouterr().err
    assert "near_grid_pyxtal" not in store.list_datasets()
    with pytest.raises(SystemExit):
        main(["generate", "--name", "bad_share", *common, "--engine", "fast",
              "--pseudo-symmetry", "2"])
    assert "not a share from 0 to 1" in capsys.readouterr().err


def test_generate_warns_when_a_seed_already_made_crystals(capsys):
    common = ["--total", "0", "--minimum", "0", "--per-group", "2", "--space-groups", "2", "14",
              "--processes", "1", "--engine", "fast"]
    assert main(["generate", "--name", "seed_first", *common, "--seed", "917"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["generate", "--name", "seed_again", *common, "--seed", "917"]) == 0
    err = capsys.readouterr().err
    count = len(store.load("seed_first").table)
    assert f"warning: seed 917 already made fast crystals in seed_first ({count})" in err
    assert main(["generate", "--name", "seed_other", *common, "--seed", "918"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_index_finds_the_cell_and_reports_unreadable_files(tmp_path, capsys):
    from pymatgen.core import Lattice, Structure

    from core.simulation import simulate

    salt = simulate(Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                              [[0, 0, 0], [0.5, 0.5, 0.5]]))
    lines = [(t, 10.0 * i) for t, i in zip(salt.two_theta, salt.intensity) if i >= 1]
    good = write_xy(tmp_path / "nacl.xy", lines)
    bad = tmp_path / "empty.xy"
    bad.write_text("")
    assert main(["index", str(good), str(bad), "--top", "2"]) == 1
    out = capsys.readouterr().out.splitlines()
    best = next(line for line in out if line.startswith(f"{good}: "))
    assert "cubic F" in best and "a=5.64" in best and "unindexed 0" in best
    assert f"{bad}: ERROR {bad.name}: file is empty" in out
    assert main(["index", "--json", str(good)]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert cells[0]["bravais_lattice"] == "cF" and cells[0]["cell"][0] == pytest.approx(5.64, abs=0.01)
    with pytest.raises(SystemExit):
        main(["index", str(good), "--tolerance", "2"])
