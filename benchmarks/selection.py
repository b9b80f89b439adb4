"""Model selection on project-generated data only (never on ../shared).

Usage (from the project root)::

    python benchmarks/selection.py --models default candidate --datasets select_fast default

Scores every model on the same rows of each named dataset: the whole dataset, or, when one
of the models was trained on it, that model's held-out test split (so no model is scored on
patterns it trained on, and all are scored on the same patterns).
Both the network output and the output re-weighted to real-world frequencies are reported;
``--clean`` adds each set once more rendered as clean peaks (no perturbations);
``--draws K`` scores each simulated set under K draws of the perturbations (seeds 2 to
K + 1; one draw's luck moves top-1 by about half a point, as much as the differences a
choice often rests on), and its intervals resample crystals with all their draws.
Each model sees the perturbations it trained with, unless ``--ranges-of MODEL`` renders
every set with that model's (to compare models trained with different ranges on the
same inputs). Every
metric comes with a 95 % bootstrap interval, and every model after the first with paired
intervals of its difference from the first (the incumbent): whether the sets can tell them
apart at all.
This is how a new bundled model is chosen before ``accuracy.py`` measures it on real data.

Writes ``selection.json`` and the selection section of ``results.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402 - needs HERE on the path
import run_all  # noqa: E402

run_all.setup_paths()

import numpy as np  # noqa: E402

JSON_FILE = "selection.json"


def held_out_set(dataset, classifiers) -> accuracy.EvaluationSet:
    """The rows of ``dataset`` that none of ``classifiers`` trained on: the rows in the test
    split of every model that trained on it (every model scores the same rows), else all of it.

    Raises:
        ValueError: the models that trained on ``dataset`` share no held-out rows.
    """
    from core.evalsets import LabelledSet, held_out_test_set

    metadata = [c.metadata for c in classifiers]
    trained = [m for m in metadata if m.trained_on(dataset.name)]
    if not trained:
        rows = np.arange(len(dataset))
        labelled = LabelledSet(name=f"{dataset.name} (all)", labels=dataset.labels, dataset=dataset,
                               rows=rows)
        return accuracy.EvaluationSet(f"{dataset.name} (all {len(rows)})", labelled, 0.0)
    started = time.perf_counter()
    labelled = held_out_test_set(dataset, metadata)
    if len(labelled) == 0:
        raise ValueError(f"models {', '.join(m.name for m in trained)} trained on "
                         f"{dataset.name!r} with different splits: no common held-out rows")
    label = f"{dataset.name} test split"
    return accuracy.EvaluationSet(label, replace(labelled, name=label), time.perf_counter() - started)


def clean_version(evaluation_set: accuracy.EvaluationSet) -> accuracy.EvaluationSet:
    """The same rows rendered as clean peaks of fixed width: how well a model learnt the task
    itself, apart from the measurement effects it was trained to see through."""
    label = f"{evaluation_set.label} (clean profiles)"
    return replace(evaluation_set, label=label,
                   labelled=replace(evaluation_set.labelled, name=label, clean=True))


def markdown(data: dict) -> str:
    pct = accuracy._percent
    lines = ["## Model selection (project-generated data)", "",
             f"Run {data['date']} with `python benchmarks/selection.py --models "
             f"{' '.join(data['models'])} --datasets {' '.join(data['datasets'])}"
             f"{' --draws ' + str(data['draws']) if data.get('draws', 1) > 1 else ''}"
             f"{' --ranges-of ' + data['ranges_of'] if data.get('ranges_of') else ''}`.", "",
             "Percent. Every model is scored on the same patterns, none of which it trained on: a "
             "dataset one of the models was trained on contributes only that model's held-out "
             "test split." + (f" Each set is scored under {data['draws']} draws of the "
                              "perturbations; n counts every draw." if data.get("draws", 1) > 1
                              else "")
             + (f" Every model sees {data['ranges_of']}'s training perturbations."
                if data.get("ranges_of") else ""), "",
             "| Model | Set | n | SG top-1 | SG top-5 | Balanced acc. | Macro-F1 | "
             "System acc. | majority SG | majority system |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for entry in data["results"]:
        m = entry["metrics"]
        lines.append(f"| {entry['model']} | {entry['set']} | {m['n']} | {pct(m['top1'])} | "
                     f"{pct(m['top5'])} | {pct(m['balanced_accuracy'])} | {pct(m['macro_f1'])} | "
                     f"{pct(m['system_accuracy'])} | {pct(m['majority_top1'])} | "
                     f"{pct(m['majority_system'])} |")
    lines += accuracy.difference_lines(data.get("differences", []))
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    """The command line (also used to check the commands in scripts/reproduce_default_model.sh)."""
    p = argparse.ArgumentParser(description="Compare models on project-generated data.")
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--clean", action="store_true",
                   help="also score each set rendered as clean peaks, without perturbations")
    p.add_argument("--draws", type=int, default=1,
                   help="draws of the perturbations per simulated pattern (default 1)")
    p.add_argument("--ranges-of", metavar="MODEL",
                   help="render every set with this model's training perturbations "
                        "(default: each model its own)")
    return p


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.draws < 1:
        command_line.error("--draws must be at least 1")
    if args.ranges_of and args.ranges_of not in args.models:
        command_line.error("--ranges-of must name one of --models")
    from core import dataset as store
    from core.classify import RAW_OUTPUT, Classifier
    from core.evalsets import evaluate_model

    data = {"date": run_all.now(), "machine": run_all.machine_facts(), "models": args.models,
            "datasets": args.datasets, "draws": args.draws, "ranges_of": args.ranges_of,
            "results": []}
    classifiers = {name: Classifier.load(name, index=False) for name in args.models}
    ranges = (classifiers[args.ranges_of].metadata.training_augmentation if args.ranges_of
              else None)
    sets = [held_out_set(store.load(name), list(classifiers.values())) for name in args.datasets]
    sets = [replace(s, labelled=replace(s.labelled, draws=args.draws, augmentation=ranges))
            for s in sets]
    if args.clean:
        sets += [clean_version(s) for s in sets]
    evaluations = {}  # (variant label, set label) -> ModelEvaluation, for the differences
    for name, classifier in classifiers.items():
        raw = Classifier(classifier.model, classifier.metadata, adjust_prior=False, index=False)
        variants = [(f"{name}{RAW_OUTPUT}", raw)]
        if classifier.adjust_prior:
            variants.append((name, classifier))
        for evaluation_set in sets:
            for label, variant in variants:
                started = time.perf_counter()
                result = evaluate_model(variant, evaluation_set.labelled)
                evaluations[label, evaluation_set.label] = result
                entry = accuracy.entry_of(result, variant.metadata.kind, evaluation_set, False, label)
                data["results"].append(entry)
                m = entry["metrics"]
                print(f"  {label:<24} {entry['set']:<28} n={m['n']:<5} top-1 {accuracy._percent(m['top1']):>5} %,"
                      f" top-5 {accuracy._percent(m['top5'])} %, system "
                      f"{accuracy._percent(m['system_accuracy'])} % "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    data["differences"] = accuracy.differences(evaluations, args.models[0])
    run_all.write_json(args.out / JSON_FILE, data)
    results = run_all.update_section(args.out, "selection", markdown(data))
    print(f"Wrote {args.out / JSON_FILE} and {results}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
