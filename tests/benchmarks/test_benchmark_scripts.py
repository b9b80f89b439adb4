"""Smoke test of the benchmark scripts: ``run_all.py --quick`` (which runs ``speed.py`` and
``accuracy.py``) on tiny sizes, writing into a temporary folder, then the files it wrote.

The speed groups that need seconds of fixed cost even at tiny sizes (starting Dask clusters,
building and tracing Keras models for training) are left out here to keep the test under a
minute; ``python benchmarks/run_all.py --quick`` runs them all. No timing is asserted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import COD_CIFS, PROJECT, RRUFF_DEV, rows_outside
from core.classify import LOW_CONFIDENCE
from core.intervals import INTERVAL_METRICS

BENCHMARKS = PROJECT / "benchmarks"
SPEED_GROUPS = ["simulation", "rendering", "classify", "dataset"]
SPEED_KEYS = {"simulate_bundled_1p", "simulate_bundled_2p", "generate_synthetic_1p",
              "generate_synthetic_2p", "generate_fast_1p", "generate_fast_2p", "generate_fast_cod_sites_2p", "render_profiles", "augmented_profiles",
              "classify_latency", "classify_throughput", "upload_100_files", "peak_influence",
              "classify_indexed_latency", "classify_indexed_throughput",
              "dataset_page"}
METRIC_KEYS = {"n", "top1", "top5", "balanced_accuracy", "macro_f1", "system_accuracy",
               "system_balanced_accuracy", "majority_top1", "majority_top5", "frequency_top1",
               "majority_system", "frequency_system"}
SYSTEMS = {"triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"}


def _run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=PROJECT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _repo_results() -> dict:
    """Modification times of the repository's own result files (they must not change)."""
    return {name: (BENCHMARKS / name).stat().st_mtime_ns if (BENCHMARKS / name).exists() else None
            for name in ("results.md", "speed.json", "accuracy.json", "robustness.json",
                         "indexing.json")}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmarks")
    before = _repo_results()
    result = _run(str(BENCHMARKS / "run_all.py"), "--quick", "--out", str(out),
                  "--only", *SPEED_GROUPS)
    assert _repo_results() == before, "a quick run touched benchmarks/ in the repository"
    return out, result.stdout


def test_speed_json_has_every_measurement_with_its_target(quick_run):
    out, stdout = quick_run
    data = json.loads((out / "speed.json").read_text())
    assert data["quick"] is True and data["date"]
    assert {"cpu_count", "python", "tensorflow", "keras"} <= set(data["machine"])
    assert list(data["groups"]) == SPEED_GROUPS
    for group in data["groups"].values():
        assert group["error"] is None
        assert group["memory"]["self_mb"] > 0
    by_key = {m["key"]: m for m in data["results"]}
    assert set(by_key) == SPEED_KEYS
    for m in by_key.values():
        assert {"group", "label", "value", "unit", "details", "target", "status", "repeats"} <= set(m)
        assert math.isfinite(m["value"]) and m["value"] > 0
        assert (m["status"] is None) == (m["target"] is None)
        assert m["status"] in (None, "PASS", "MISS")
    for key in ("render_profiles", "classify_latency", "classify_throughput",
                "upload_100_files", "peak_influence", "dataset_page"):
        assert by_key[key]["status"] in ("PASS", "MISS")
        assert by_key[key]["label"] in stdout and by_key[key]["status"] in stdout
    assert "0 unreadable" in by_key["classify_throughput"]["details"]


def test_accuracy_json_is_in_the_shape_model_cards_read(quick_run):
    out, _ = quick_run
    data = json.loads((out / "accuracy.json").read_text())
    assert data["quick"] is True and data["date"] and data["failed"] == []
    sets = {entry["set"] for entry in data["results"]}
    assert "default test split (first 50 rows, quick run)" in sets
    skipped = {note["set"] for note in data["skipped"]}
    expected = ((RRUFF_DEV, "RRUFF rruff_dev (20 of 222", "RRUFF rruff_dev (222 real patterns)"),
                (RRUFF_DEV, "DIF peak lists of 20 rruff_dev", "RRUFF rruff_dev (222 real patterns)"),
                (COD_CIFS, "COD cod_cifs (20 of 704 structures, simulated, quick",
                 "COD cod_cifs (704 structures, simulated)"),
                (COD_CIFS, "COD cod_cifs (20 of 704 structures, simulated without perturbations",
                 "COD cod_cifs (704 structures, simulated without perturbations)"))
    for folder, prefix, full in expected:
        if folder.exists():
            assert any(s.startswith(prefix) for s in sets)
        else:
            assert full in skipped
    # The bundled model is evaluated as the app uses it (indexed), as the network alone and as
    # its raw network output (it records its prior), on the same sets.
    by_model = {}
    for entry in data["results"]:
        by_model.setdefault(entry["model"], set()).add(entry["set"])
    assert set(by_model) == {"default", "default (network only)", "default (raw output)"}
    assert by_model["default"] == by_model["default (network only)"] == \
        by_model["default (raw output)"] == sets
    for entry in data["results"]:
        assert set(entry["metrics"]) == METRIC_KEYS
        assert entry["metrics"]["n"] > 0 and entry["seconds"] >= 0
        assert set(entry["per_system_accuracy"]) == SYSTEMS
        confidence = entry["confidence"]
        assert confidence["threshold"] == LOW_CONFIDENCE and 0 <= confidence["share"] <= 1
        assert 0 <= confidence["ece_space_group"] <= 1 and 0 <= confidence["ece_crystal_system"] <= 1
        assert set(entry["intervals"]) == set(INTERVAL_METRICS)
        for metric, interval in entry["intervals"].items():
            assert interval["estimate"] == pytest.approx(entry["metrics"][metric])
            assert interval["low"] <= interval["estimate"] <= interval["high"]
    if RRUFF_DEV.exists():
        rruff = next(e for e in data["results"] if e["set"].startswith("RRUFF"))
        assert rruff["metrics"]["n"] == 20


def test_results_md_has_both_sections(quick_run):
    out, _ = quick_run
    text = (out / "results.md").read_text()
    for name, title in (("speed", "## Speed"), ("accuracy", "## Accuracy")):
        start, end = text.index(f"<!-- {name} -->"), text.index(f"<!-- /{name} -->")
        assert title in text[start:end]
    assert "Machine:" in text and "TensorFlow" in text and "Quick run" in text
    assert "| Profiles rendered" in text and "| default |" in text
    assert "| Model | Set | confident share |" in text
    assert "95 % bootstrap interval" in text and "| Model | Set | SG top-1 | SG top-5 |" in text


def test_report_only_rebuilds_results_from_the_json_files(quick_run):
    out, _ = quick_run
    (out / "results.md").unlink()
    _run(str(BENCHMARKS / "run_all.py"), "--report-only", "--out", str(out))
    text = (out / "results.md").read_text()
    assert "<!-- speed -->" in text and "| Profiles rendered" in text
    assert "<!-- accuracy -->" in text and "| default |" in text


def test_a_script_replaces_only_its_own_section(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    run_all.update_section(tmp_path, "accuracy", "## Accuracy\n\nfirst\n")
    text = (tmp_path / "results.md").read_text()
    assert "Not run yet: `python benchmarks/speed.py`" in text and "first" in text
    run_all.update_section(tmp_path, "speed", "## Speed\n\nfast\n")
    run_all.update_section(tmp_path, "accuracy", "## Accuracy\n\nsecond\n")
    sections = run_all.read_sections((tmp_path / "results.md").read_text())
    assert sections["speed"] == "## Speed\n\nfast" and sections["accuracy"] == "## Accuracy\n\nsecond"
    assert "Not run yet: `python benchmarks/selection.py" in sections["selection"]
    assert "Not run yet: `python benchmarks/robustness.py`" in sections["robustness"]
    with pytest.raises(ValueError, match="unknown results section"):
        run_all.update_section(tmp_path, "memory", "x")


def test_differences_pair_like_with_like_on_the_same_patterns():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import accuracy
    finally:
        sys.path.remove(str(BENCHMARKS))
    from core.evalsets import ModelEvaluation
    from core.evaluation import evaluate

    def evaluation(model: str, labels: np.ndarray, right: np.ndarray) -> ModelEvaluation:
        probabilities = np.full((len(labels), 230), 1e-4)
        probabilities[np.arange(len(labels)), np.where(right, labels, 1) - 1] = 1
        return ModelEvaluation(model, "set", labels, probabilities, evaluate(labels, probabilities), 1.0)

    labels = np.random.default_rng(0).choice([14, 62, 225], 300)
    index = np.arange(300)
    evaluations = {
        ("old", "RRUFF"): evaluation("old", labels, index % 5 == 0),
        ("old (raw output)", "RRUFF"): evaluation("old", labels, index % 4 == 0),
        ("old (network only)", "RRUFF"): evaluation("old", labels, index % 10 == 0),
        ("new", "RRUFF"): evaluation("new", labels, index % 2 == 0),
        ("new (raw output)", "RRUFF"): evaluation("new", labels, index % 4 == 0),
        ("new", "COD"): evaluation("new", labels[:50], index[:50] % 2 == 0),  # no "old" on COD
        ("old", "other"): evaluation("old", labels, index % 5 == 0),
        ("new", "other"): evaluation("new", labels[::-1], index % 2 == 0),  # other patterns
    }
    rows = {(d["model"], d["against"], d["set"]): d["intervals"]
            for d in accuracy.differences(evaluations, "old")}
    assert set(rows) == {("new", "old", "RRUFF"), ("new (raw output)", "old (raw output)", "RRUFF"),
                         ("old", "old (network only)", "RRUFF")}  # what indexing adds
    assert rows["old", "old (network only)", "RRUFF"]["top1"]["estimate"] == pytest.approx(0.2 - 0.1)
    better = rows["new", "old", "RRUFF"]["top1"]
    assert better["estimate"] == pytest.approx(0.5 - 0.2) and better["low"] > 0
    same = rows["new (raw output)", "old (raw output)", "RRUFF"]["top1"]
    assert same["estimate"] == same["low"] == same["high"] == 0
    table = "\n".join(accuracy.difference_lines([{"model": "new", "against": "old", "set": "RRUFF",
                                                  "intervals": rows["new", "old", "RRUFF"]}]))
    assert f"| new | old | RRUFF | {100 * better['estimate']:+.1f} (" in table
    assert accuracy.difference_lines([]) == []


def test_selection_scores_every_model_on_the_same_held_out_rows(tiny_model, tmp_path):
    # 'tiny' trained on 'small': both models are scored on its test split only.
    result = _run(str(BENCHMARKS / "selection.py"), "--models", "tiny", "default",
                  "--datasets", "small", "--out", str(tmp_path))
    data = json.loads((tmp_path / "selection.json").read_text())
    sizes = {(e["model"], e["set"]): e["metrics"]["n"] for e in data["results"]}
    test_rows = len(tiny_model.evaluation["true"])
    assert sizes == {(model, "small test split"): test_rows
                     for model in ("tiny", "tiny (raw output)", "default", "default (raw output)")}
    text = (tmp_path / "results.md").read_text()
    section = text[text.index("<!-- selection -->"):text.index("<!-- /selection -->")]
    assert "| tiny | small test split |" in section and "Wrote" in result.stdout
    # 'default' is compared with 'tiny', the first model, like with like.
    pairs = {(d["model"], d["against"], d["set"]) for d in data["differences"]}
    assert pairs == {("default", "tiny", "small test split"),
                     ("default (raw output)", "tiny (raw output)", "small test split")}
    for entry in data["differences"]:
        model = next(e for e in data["results"] if e["model"] == entry["model"])
        against = next(e for e in data["results"] if e["model"] == entry["against"])
        top1 = entry["intervals"]["top1"]
        assert top1["estimate"] == pytest.approx(model["metrics"]["top1"] - against["metrics"]["top1"])
        assert top1["low"] <= top1["estimate"] <= top1["high"]
    assert "| default | tiny | small test split |" in section


def test_selection_can_also_score_clean_profiles_of_the_same_rows(small_dataset, tmp_path):
    _run(str(BENCHMARKS / "selection.py"), "--models", "default", "--datasets", "small",
         "--clean", "--out", str(tmp_path))
    data = json.loads((tmp_path / "selection.json").read_text())
    perturbed, clean = f"small (all {len(small_dataset)})", f"small (all {len(small_dataset)}) (clean profiles)"
    sizes = {(e["model"], e["set"]): e["metrics"]["n"] for e in data["results"]}
    assert sizes == {(model, name): len(small_dataset) for model in ("default", "default (raw output)")
                     for name in (perturbed, clean)}
    scores = {e["set"]: [e["metrics"][k] for k in ("top1", "top5", "macro_f1", "system_accuracy")]
              for e in data["results"] if e["model"] == "default"}
    assert scores[clean] != scores[perturbed]  # the clean rows are rendered differently


def test_selection_can_score_several_draws_of_the_perturbations(tiny_model, tmp_path):
    _run(str(BENCHMARKS / "selection.py"), "--models", "tiny", "default", "--datasets", "small",
         "--draws", "3", "--out", str(tmp_path))
    data = json.loads((tmp_path / "selection.json").read_text())
    test_rows = len(tiny_model.evaluation["true"])
    assert data["draws"] == 3
    assert all(e["metrics"]["n"] == 3 * test_rows and e["draws"] == 3 and e["unclassified"] == 0
               for e in data["results"])
    _run(str(BENCHMARKS / "selection.py"), "--models", "tiny", "--datasets", "small",
         "--out", str(tmp_path / "one"))
    single = json.loads((tmp_path / "one" / "selection.json").read_text())["results"][0]
    several = next(e for e in data["results"] if e["model"] == single["model"])
    assert several["confidence"] != single["confidence"]  # other draws, other probabilities
    section = (tmp_path / "results.md").read_text()
    assert "--draws 3`" in section and "under 3 draws of the perturbations" in section
    assert all(d["intervals"]["top1"]["low"] <= d["intervals"]["top1"]["high"]
               for d in data["differences"])


def test_selection_can_render_every_model_with_one_models_perturbations(tiny_model, tmp_path):
    def run(out, *extra):
        _run(str(BENCHMARKS / "selection.py"), "--models", "tiny", "default", "--datasets",
             "small", "--out", str(out), *extra)
        data = json.loads((out / "selection.json").read_text())
        return data, {e["model"]: e for e in data["results"]}

    _, own = run(tmp_path / "own")
    data, shared = run(tmp_path / "shared", "--ranges-of", "default")
    assert data["ranges_of"] == "default"
    # 'default' sees its own perturbations either way; 'tiny' (other strain ranges) does not.
    assert shared["default"]["confidence"] == own["default"]["confidence"]
    assert shared["tiny"]["confidence"] != own["tiny"]["confidence"]
    section = (tmp_path / "shared" / "results.md").read_text()
    assert "--ranges-of default`" in section and "sees default's training perturbations" in section
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "selection.py"), "--models", "tiny",
                              "--datasets", "small", "--ranges-of", "default"], cwd=PROJECT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--ranges-of must name one of --models" in refused.stderr


def test_robustness_costs_each_effect_on_the_same_held_out_rows(tiny_model, small_dataset,
                                                                 tmp_path):
    before = _repo_results()
    result = _run(str(BENCHMARKS / "robustness.py"), "--models", "tiny", "default",
                  "--datasets", "small", "--out", str(tmp_path))
    assert _repo_results() == before
    from core.augmentation import EFFECTS

    data = json.loads((tmp_path / "robustness.json").read_text())
    expected = ["none (every effect off)", *EFFECTS, "all (as in training)"]
    tiny = [e for e in data["results"] if e["model"] == "tiny"]
    default = [e for e in data["results"] if e["model"] == "default"]
    assert [e["condition"] for e in tiny] == [e["condition"] for e in default] == expected
    # 'tiny' trained on 'small' and is scored on its test split; 'default' on all of it.
    assert {(e["set"], e["metrics"]["n"]) for e in tiny} == {("small test split",
                                                              len(tiny_model.evaluation["true"]))}
    assert {(e["set"], e["metrics"]["n"]) for e in default} == {
        (f"small (all {len(small_dataset)})", len(small_dataset))}
    # 'all' renders as in training: the training run's own test evaluation (same seed).
    assert tiny[-1]["metrics"]["top1"] == pytest.approx(tiny_model.metadata.metrics["top1"])
    for entries in (tiny, default):
        quiet = entries[0]
        assert quiet["cost"]["top1"] == {"estimate": 0.0, "low": 0.0, "high": 0.0,
                                         "confidence": 0.95}
        for entry in entries[1:]:
            cost = entry["cost"]["system_accuracy"]
            assert cost["estimate"] == pytest.approx(entry["metrics"]["system_accuracy"]
                                                     - quiet["metrics"]["system_accuracy"])
            assert cost["low"] <= cost["estimate"] <= cost["high"]
    # The renderings differ, and a trained model answers differently under them.
    assert len({json.dumps(e["metrics"], sort_keys=True) for e in default}) > 5
    text = (tmp_path / "results.md").read_text()
    section = text[text.index("<!-- robustness -->"):text.index("<!-- /robustness -->")]
    assert "| impurity phase |" in section and "**tiny** on small test split" in section
    assert "Wrote" in result.stdout
    # The Home page reads the file as written.
    from ui.cards import effect_costs

    set_name, costs = effect_costs("default", tmp_path / "robustness.json")
    assert set_name == default[0]["set"] and list(costs.index) == expected
    assert list(costs["top-1 change"]) == pytest.approx(
        [100 * e["cost"]["top1"]["estimate"] for e in default])


def test_selection_uses_all_of_a_dataset_no_model_trained_on(small_dataset, tmp_path):
    _run(str(BENCHMARKS / "selection.py"), "--models", "default", "--datasets", "small",
         "--out", str(tmp_path))
    data = json.loads((tmp_path / "selection.json").read_text())
    assert {e["set"] for e in data["results"]} == {f"small (all {len(small_dataset)})"}
    assert all(e["metrics"]["n"] == len(small_dataset) for e in data["results"])


def test_selection_holds_out_each_part_of_a_model_trained_on_several_datasets(
        bundled_dataset, small_dataset, tmp_path):
    from core import dataset as store
    from core.training import TrainingConfig, train

    other = store.create("selection_other", rows_outside(small_dataset, bundled_dataset, 100),
                         command="test")
    both = store.combine([small_dataset, other])
    train(both, TrainingConfig(name="two_sets", kind="baseline_ann", epochs=1, steps_per_epoch=1,
                               batch_size=8, hyperparameters={"units": 8}, validation=0.1, test=0.2))
    _run(str(BENCHMARKS / "selection.py"), "--models", "two_sets", "--datasets", "small",
         "selection_other", "--out", str(tmp_path))
    data = json.loads((tmp_path / "selection.json").read_text())
    sizes = {e["set"]: e["metrics"]["n"] for e in data["results"] if e["model"] == "two_sets"}
    assert sizes == {f"{d.name} test split": len(store.split(d, 0.1, 0.2).test)
                     for d in (small_dataset, other)}


def test_indexing_scores_the_best_cell_of_each_real_set(tmp_path):
    before = _repo_results()
    _run(str(BENCHMARKS / "indexing.py"), "--quick", "--out", str(tmp_path))
    assert _repo_results() == before
    data = json.loads((tmp_path / "indexing.json").read_text())
    assert data["quick"] is True and data["date"]
    expected = [name for folder, name in ((RRUFF_DEV, "RRUFF rruff_dev, measured (quick run)"),
                                          (RRUFF_DEV, "RRUFF rruff_dev, DIF peak lists (quick run)"),
                                          (COD_CIFS, "COD cod_cifs, simulated (quick run)"))
                if folder.exists()]
    assert [entry["set"] for entry in data["results"]] == expected
    assert len(data["skipped"]) == (not RRUFF_DEV.exists()) + (not COD_CIFS.exists())
    for entry in data["results"]:
        assert 0 < entry["n"] <= 12
        assert entry["n"] >= entry["found"] >= entry["family_right"] >= entry["lattice_right"] >= 0
        assert entry["volume_right"] <= entry["found"]
        assert entry["convincing"]["n"] <= entry["found"]
        assert entry["lattice_right"] >= entry["absences_consistent"] >= entry["absences_most"]
        assert sum(s["n"] for s in entry["by_system"].values()) == entry["n"]
    text = (tmp_path / "results.md").read_text()
    start, end = text.index("<!-- indexing -->"), text.index("<!-- /indexing -->")
    assert "## Indexing (real data)" in text[start:end]
    assert "| Set | lattice right | true group consistent |" in text[start:end]
    assert "Not run yet: `python benchmarks/speed.py`" in text
