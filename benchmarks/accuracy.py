"""Accuracy of saved models on real and held-out patterns, beside naive baselines.

Usage (from the project root)::

    python benchmarks/accuracy.py [--quick] [--out DIR] [--models NAME ...]

Evaluates the bundled model ``default`` (and any saved models named with ``--models``) on:

* ``../shared/data/rruff_dev``: 222 measured RRUFF patterns with their space groups, and
  the same minerals' DIF peak lists (computed from each refined structure, drawn as clean
  peaks): the gap between the two is the measurement's share of the RRUFF errors, the rest
  the crystals';
* ``../shared/data/cod_cifs``: 704 real COD structures, simulated with the realistic
  perturbations (fixed seed 0) and rendered at a 0.01° step, as a measured file would be;
  and, for information, the same structures without any perturbation: what is left of the
  COD errors there is the crystals', not the measurement's;
* the bundled dataset's test split (the split the model was trained with, when it was
  trained on that dataset).

For each: space-group top-1, top-5 and balanced accuracy, macro-F1 and crystal-system
accuracy, beside the majority-class and class-frequency baselines, plus accuracy within each
crystal system. Each model is evaluated as the app uses it (each pattern indexed and the
ranking re-weighted by a convincing cell's lattice and systematic absences,
:mod:`core.absences`; probabilities re-weighted to real space-group frequencies,
:mod:`core.prior`), as ``<name> (network only)`` (no indexing) and, when it records its
training prior, as ``<name> (raw output)`` (neither). The ``../shared`` sets are skipped,
with a note, where that folder is absent (a fresh clone). ``--quick`` uses 20 RRUFF patterns, 20 COD structures and 50 test-split
rows, to test the script.

Every metric comes with its 95 % bootstrap interval (:mod:`core.intervals`); each model named
with ``--models`` also gets paired intervals of its difference from the bundled model on the
``../shared`` sets, which tell whether those sets can tell the two apart at all.

Writes ``accuracy.json`` (read by the model cards of the app) and the accuracy section of
``results.md`` in ``--out`` (default: this folder).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run_all  # noqa: E402 - needs HERE on the path

run_all.setup_paths()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

JSON_FILE = "accuracy.json"
SHARED = run_all.PROJECT.parent / "shared" / "data"
RRUFF_DEV = SHARED / "rruff_dev"
COD_CIFS = SHARED / "cod_cifs"
RRUFF_LABEL = "RRUFF rruff_dev (222 real patterns)"
# The same minerals from their DIF peak lists (computed from each refined structure, drawn as
# clean peaks): what is left of the RRUFF gap without the measurement is the crystals'.
DIF_LABEL = "DIF peak lists of the rruff_dev minerals (222, no measurement)"
COD_LABEL = "COD cod_cifs (704 structures, simulated)"
COD_CLEAN_LABEL = "COD cod_cifs (704 structures, simulated without perturbations)"
BUNDLED_MODELS = ("default",)
QUICK_PATTERNS = 20         # RRUFF patterns and COD structures in --quick
QUICK_TEST_ROWS = 50
DIFFERENCE_METRICS = ("top1", "top5", "system_accuracy")


@dataclass
class EvaluationSet:
    """A labelled set and the label its results are filed under."""

    label: str
    labelled: object            # core.evalsets.LabelledSet
    build_seconds: float
    note: str = ""


def subset_folder(folder: Path, column: str, count: int, target: Path) -> Path:
    """A folder holding only a ``labels.csv`` that lists ``count`` rows of ``folder``'s
    (seeded sample) by absolute path, so that the data files are read in place."""
    table = pd.read_csv(folder / "labels.csv")
    table = table.sample(n=min(count, len(table)), random_state=0).sort_index()
    table[column] = [str((folder / name).resolve()) for name in table[column]]
    target.mkdir(parents=True, exist_ok=True)
    table.to_csv(target / "labels.csv", index=False)
    return target


def shared_sets(quick: bool, scratch: Path) -> tuple[list[EvaluationSet], list[dict]]:
    """The RRUFF and COD sets, or notes saying why each was skipped."""
    from core.augmentation import NO_AUGMENTATION, Augmentation
    from core.evalsets import labelled_folder, rendered_cif_set, simulate_cif_folder

    sets, skipped = [], []
    if RRUFF_DEV.is_dir():
        for column, label, quick_label in (
                ("pattern_file", RRUFF_LABEL,
                 f"RRUFF rruff_dev ({QUICK_PATTERNS} of 222 real patterns, quick run)"),
                ("structure_file", DIF_LABEL,
                 f"DIF peak lists of {QUICK_PATTERNS} rruff_dev minerals (quick run)")):
            folder = RRUFF_DEV
            if quick:
                folder = subset_folder(RRUFF_DEV, column, QUICK_PATTERNS, scratch / column)
                label = quick_label
            started = time.perf_counter()
            labelled = labelled_folder(folder, name=label, column=column)
            sets.append(EvaluationSet(label, labelled, time.perf_counter() - started,
                                      f"{len(labelled.skipped)} files unreadable"
                                      if labelled.skipped else ""))
    else:
        skipped.append({"set": RRUFF_LABEL, "reason": f"{RRUFF_DEV} not present"})
    if COD_CIFS.is_dir():
        folder = COD_CIFS
        if quick:
            folder = subset_folder(COD_CIFS, "file", QUICK_PATTERNS, scratch / "cod")

        def progress(done: int, total: int) -> None:
            if done % 100 == 0 or done == total:
                print(f"  simulated {done} of {total} COD structures", flush=True)

        started = time.perf_counter()
        simulated = simulate_cif_folder(folder, progress=progress)  # once, for both renderings
        for label, augmentation, how in ((COD_LABEL, Augmentation(), "simulated"),
                                         (COD_CLEAN_LABEL, NO_AUGMENTATION,
                                          "simulated without perturbations")):
            if quick:
                label = f"COD cod_cifs ({QUICK_PATTERNS} of 704 structures, {how}, quick run)"
            labelled = rendered_cif_set(simulated, name=label, seed=0, augmentation=augmentation)
            sets.append(EvaluationSet(label, labelled, time.perf_counter() - started,
                                      f"{len(labelled.skipped)} CIFs could not be simulated"
                                      if labelled.skipped else ""))
            started = time.perf_counter()
    else:
        skipped += [{"set": label, "reason": f"{COD_CIFS} not present"}
                    for label in (COD_LABEL, COD_CLEAN_LABEL)]
    return sets, skipped


def test_split_set(dataset, metadata, quick: bool) -> EvaluationSet:
    """The dataset's test split as the model's own training run drew it (same fractions,
    seed and grouping) when the model was trained on this dataset; the default split otherwise."""
    from core.evalsets import LabelledSet, model_test_rows

    trained = metadata.trained_on(dataset.name)
    started = time.perf_counter()
    rows = model_test_rows(dataset, metadata)
    label = f"{dataset.name} test split"
    if quick:
        rows = rows[:QUICK_TEST_ROWS]
        label += f" (first {len(rows)} rows, quick run)"
    labelled = LabelledSet(name=label, labels=dataset.labels[rows], dataset=dataset, rows=rows)
    note = "" if trained else (f"model trained on {(metadata.dataset or {}).get('name', '?')!r}, "
                               "not on this dataset: default 10 % split")
    return EvaluationSet(label, labelled, time.perf_counter() - started, note)


def entry_of(result, kind: str, evaluation_set: EvaluationSet, quick: bool,
             label: str | None = None) -> dict:
    """The results entry of a :class:`core.evalsets.ModelEvaluation`: its metrics with 95 %
    bootstrap intervals, per-system accuracy, confidence and timing (``n`` counts every
    draw of a set scored under several; ``draws`` says how many)."""
    from core.classify import LOW_CONFIDENCE
    from core.evaluation import confidence_record, per_system_accuracy
    from core.intervals import INTERVAL_METRICS, metric_interval
    from core.symmetry import CRYSTAL_SYSTEMS, system_index_of_numbers

    counts = np.bincount(system_index_of_numbers(result.labels), minlength=7)
    return {
        "model": label or result.model,
        "kind": kind,
        "set": evaluation_set.label,
        "metrics": result.metrics.to_dict(),
        "intervals": {metric: metric_interval(result.labels, result.probabilities, metric,
                                              draws=result.draws).to_dict()
                      for metric in INTERVAL_METRICS},
        "draws": result.draws,
        "seconds": round(result.seconds, 2),
        "set_seconds": round(evaluation_set.build_seconds, 2),
        "unclassified": int(len(evaluation_set.labelled) - result.metrics.n // result.draws),
        "skipped_files": len(evaluation_set.labelled.skipped),
        "per_system_accuracy": per_system_accuracy(result.labels, result.probabilities),
        "per_system_count": {s: int(c) for s, c in zip(CRYSTAL_SYSTEMS, counts)},
        "confidence": confidence_record(result.labels, result.probabilities, LOW_CONFIDENCE),
        "note": evaluation_set.note,
        "quick": quick,
    }


# --- reporting -------------------------------------------------------------------------------

def _percent(value) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f}"


METRIC_LABELS = {"top1": "SG top-1", "top5": "SG top-5", "balanced_accuracy": "Balanced acc.",
                 "macro_f1": "Macro-F1", "system_accuracy": "System acc."}


def interval_text(interval: dict | None, signed: bool = False) -> str:
    """``12.3 (8.1 to 16.7)`` in percent from an :class:`core.intervals.Interval` dict
    (``+1.4 (-2.3 to +5.0)`` when ``signed``, for differences)."""
    if not interval:
        return "n/a"
    number = "{:+.1f}" if signed else "{:.1f}"
    text = number.format(100 * interval["estimate"])
    if interval["low"] != interval["low"]:  # NaN: too few patterns to resample
        return text
    return f"{text} ({number.format(100 * interval['low'])} to {number.format(100 * interval['high'])})"


def differences(evaluations: dict, first: str) -> list[dict]:
    """Each model's paired differences from the first model on every set, comparing like with
    like (raw output with raw output, network with network, indexed with indexed), and the
    first model indexed against its network alone."""
    from core.classify import NETWORK_ONLY, RAW_OUTPUT
    from core.intervals import difference_interval

    rows = []
    for (label, set_label), result in evaluations.items():
        suffix = next((s for s in (RAW_OUTPUT, NETWORK_ONLY) if label.endswith(s)), "")
        against = f"{first}{NETWORK_ONLY}" if label == first else f"{first}{suffix}"
        if label == against or (against, set_label) not in evaluations:
            continue
        reference = evaluations[against, set_label]
        if reference.draws != result.draws or not np.array_equal(reference.labels, result.labels):
            continue  # not the same patterns (some did not fit one model's range)
        rows.append({"model": label, "against": against, "set": set_label, "intervals": {
            metric: difference_interval(result.labels, result.probabilities,
                                        reference.probabilities, metric,
                                        draws=result.draws).to_dict()
            for metric in DIFFERENCE_METRICS}})
    return rows


def difference_lines(differences: list[dict]) -> list[str]:
    """Markdown lines of a table of paired differences (:func:`differences`); none if empty."""
    if not differences:
        return []
    lines = ["", "Paired differences (points; 95 % bootstrap interval, the same patterns "
             "resampled for both): each model minus the first model used the same way, and "
             "the first model as the app uses it (indexed) minus its network alone. An "
             "interval that does not contain 0 means the set tells the two apart.", "",
             "| Model | minus | Set | top-1 | top-5 | system acc. |",
             "|---|---|---|---:|---:|---:|"]
    for entry in differences:
        cells = [interval_text(entry["intervals"][metric], signed=True)
                 for metric in DIFFERENCE_METRICS]
        lines.append(f"| {entry['model']} | {entry['against']} | {entry['set']} | "
                     + " | ".join(cells) + " |")
    return lines


def markdown(data: dict) -> str:
    """The accuracy section of ``results.md`` for an ``accuracy.json`` document."""
    from core.symmetry import CRYSTAL_SYSTEMS

    quick = data.get("quick")
    lines = [
        "## Accuracy", "",
        f"Run {data['date']} with `python benchmarks/accuracy.py{' --quick' if quick else ''}`"
        f" in {data.get('total_seconds', 0):.0f} s."
        + (" **Quick run: small subsets, to test the script; not representative.**" if quick else ""),
        "", run_all.machine_line(data["machine"]), "",
        "Percent. Baselines from each set's own labels: *majority* always predicts its most "
        "common class; *frequency* guesses at random with its class frequencies. Balanced "
        "accuracy is the mean recall over the space groups present.", "",
        "| Model | Set | n | SG top-1 | majority | frequency | SG top-5 | majority top-5 | "
        "Balanced acc. | Macro-F1 | System acc. | majority | frequency | Seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in data["results"]:
        m = entry["metrics"]
        lines.append(
            f"| {entry['model']} | {entry['set']} | {m['n']} | {_percent(m['top1'])} | "
            f"{_percent(m['majority_top1'])} | {_percent(m['frequency_top1'])} | "
            f"{_percent(m['top5'])} | {_percent(m['majority_top5'])} | "
            f"{_percent(m['balanced_accuracy'])} | {_percent(m['macro_f1'])} | "
            f"{_percent(m['system_accuracy'])} | {_percent(m['majority_system'])} | "
            f"{_percent(m['frequency_system'])} | {entry['seconds']:.1f} |")
    rruff = [e for e in data["results"] if "rruff_dev" in e["set"]]
    if rruff:
        lines += ["", "Crystal-system accuracy within each true crystal system on the RRUFF "
                  "minerals, measured and from their DIF peak lists (percent, with the number "
                  "of patterns):", "",
                  "| Model | Set | " + " | ".join(CRYSTAL_SYSTEMS) + " |",
                  "|---|---|" + "---:|" * len(CRYSTAL_SYSTEMS)]
        for entry in rruff:
            cells = [f"{_percent(entry['per_system_accuracy'][s])} ({entry['per_system_count'][s]})"
                     for s in CRYSTAL_SYSTEMS]
            lines.append(f"| {entry['model']} | {entry['set']} | " + " | ".join(cells) + " |")
    bounded = [e for e in data["results"] if e.get("intervals")]
    if bounded:
        from core.intervals import RESAMPLES

        lines += ["", "How precisely each set measures it: every metric with its 95 % bootstrap "
                  f"interval over the set's patterns ({RESAMPLES:,} resamples; percent). Models "
                  "whose intervals overlap may still differ reliably: the paired differences "
                  "below (with `--models`) and in `selection.py` say.", "",
                  "| Model | Set | " + " | ".join(METRIC_LABELS.values()) + " |",
                  "|---|---|" + "---:|" * len(METRIC_LABELS)]
        for entry in bounded:
            cells = [interval_text(entry["intervals"].get(metric)) for metric in METRIC_LABELS]
            lines.append(f"| {entry['model']} | {entry['set']} | " + " | ".join(cells) + " |")
    confident = [e for e in data["results"] if e.get("confidence")]
    if confident:
        threshold = confident[0]["confidence"]["threshold"]
        lines += ["", f"Confidence: the share of patterns whose top space-group probability is "
                  f"at least {100 * threshold:.0f} % (below it the Classify page flags a "
                  "prediction as low confidence), top-1 accuracy on each side, and the expected "
                  "calibration error (patterns-weighted mean gap between top probability and "
                  "accuracy in 10 bins; 0 when calibrated). Percent.", "",
                  "| Model | Set | confident share | top-1 when confident | top-1 when flagged | "
                  "calibration error (SG) | calibration error (system) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for entry in confident:
            c = entry["confidence"]
            lines.append(
                f"| {entry['model']} | {entry['set']} | {_percent(c['share'])} | "
                f"{_percent(c['accuracy_above'])} | {_percent(c['accuracy_below'])} | "
                f"{_percent(c['ece_space_group'])} | {_percent(c['ece_crystal_system'])} |")
    lines += difference_lines(data.get("differences", []))
    notes = [f"{s['set']}: skipped, {s['reason']}." for s in data.get("skipped", [])]
    notes += ["Indexed rows (a model's own name) re-weight each pattern's ranking by its "
              "indexed cell, as the app does by default. Simulated COD patterns are rendered "
              "at a 0.01° step, as a measured file would be, and indexed from that profile "
              "(the network reads it resampled to its grid); a test split's rows are indexed "
              "from their own draw of the perturbations at a 0.01° step."]
    notes += [f"{f['model']}: failed on {f.get('set') or 'loading'}: {f['error']}"
              for f in data.get("failed", [])]
    notes += [f"{e['model']} on {e['set']}: {e['note']}." for e in data["results"] if e.get("note")]
    notes += [f"{e['model']} on {e['set']}: {e['unclassified']} patterns could not be classified."
              for e in data["results"] if e.get("unclassified")]
    notes += [f"Preparing {label}: {seconds:.1f} s."
              for label, seconds in data.get("set_seconds", {}).items()]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Accuracy of saved models on real and held-out patterns.")
    parser.add_argument("--quick", action="store_true", help="small subsets, to test the script")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for accuracy.json and results.md")
    parser.add_argument("--models", nargs="*", default=[],
                        help="saved models to evaluate besides the bundled one")
    args = parser.parse_args(argv)
    from core import dataset as store
    from core.classify import NETWORK_ONLY, RAW_OUTPUT, Classifier
    from core.evalsets import evaluate_model

    names = list(dict.fromkeys([*BUNDLED_MODELS, *args.models]))
    data = {"date": run_all.now(), "quick": args.quick, "machine": run_all.machine_facts(),
            "models": names, "results": [], "skipped": [], "failed": [], "set_seconds": {}}
    print(f"Accuracy{' (quick)' if args.quick else ''}: models {', '.join(names)}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xrd-accuracy-") as scratch:
        sets, data["skipped"] = shared_sets(args.quick, Path(scratch))
    for note in data["skipped"]:
        print(f"  skipped {note['set']}: {note['reason']}", flush=True)
    data["set_seconds"] = {s.label: round(s.build_seconds, 2) for s in sets}
    dataset = store.load("default")
    evaluations = {}  # (variant label, set label) -> ModelEvaluation on the shared sets
    for name in names:
        try:
            classifier = Classifier.load(name)
        except Exception as exc:  # a missing or broken model is reported, the rest still run
            data["failed"].append({"model": name, "set": None, "error": f"{exc.__class__.__name__}: {exc}"})
            print(f"  {name}: cannot be loaded: {exc}", flush=True)
            continue
        # As the app uses it (indexed), the network alone, and its raw output (no prior).
        variants = [(name, classifier), (f"{name}{NETWORK_ONLY}", Classifier(
            classifier.model, classifier.metadata, classifier.adjust_prior, index=False))]
        if classifier.adjust_prior:
            variants.append((f"{name}{RAW_OUTPUT}", Classifier(
                classifier.model, classifier.metadata, adjust_prior=False, index=False)))
        test_split = test_split_set(dataset, classifier.metadata, args.quick)
        for (label, variant), evaluation_set in itertools.product(variants, [*sets, test_split]):
            try:
                result = evaluate_model(variant, evaluation_set.labelled)
                entry = entry_of(result, variant.metadata.kind, evaluation_set, args.quick, label)
            except Exception as exc:
                traceback.print_exc()
                data["failed"].append({"model": label, "set": evaluation_set.label,
                                       "error": f"{exc.__class__.__name__}: {exc}"})
                continue
            data["results"].append(entry)
            if evaluation_set in sets:  # the same patterns for every model: comparable in pairs
                evaluations[label, evaluation_set.label] = result
            m = entry["metrics"]
            print(f"  {label:<12} {entry['set']:<62} n={m['n']:<4} top-1 {_percent(m['top1']):>5} % "
                  f"(majority {_percent(m['majority_top1'])}), top-5 {_percent(m['top5'])} %, "
                  f"system {_percent(m['system_accuracy'])} % (majority {_percent(m['majority_system'])})",
                  flush=True)
    data["differences"] = differences(evaluations, names[0])
    data["total_seconds"] = round(time.perf_counter() - started, 1)
    path = args.out / JSON_FILE
    run_all.write_json(path, data)
    results = run_all.update_section(args.out, "accuracy", markdown(data))
    print(f"Wrote {path} and {results} in {data['total_seconds']:.0f} s.", flush=True)
    return 1 if data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
