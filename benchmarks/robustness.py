"""Which measurement effects cost a model accuracy? One effect at a time, on project data.

Usage (from the project root)::

    python benchmarks/robustness.py [--models default] [--datasets default] [--draws 1]

Each model scores the same held-out patterns (as in ``selection.py``: the whole of a dataset
it never trained on, else its test split) rendered

* with every perturbation switched off (:data:`core.augmentation.QUIET`),
* with one effect of :data:`core.augmentation.EFFECTS` switched on, on every pattern, at the
  size the model was trained with (:func:`core.augmentation.only`),
* with all of them, as in training.

The cost of an effect is the paired difference from the quiet rendering, with its 95 %
bootstrap interval: where a model is fragile, and so where training or preprocessing
should improve first. Network output (no prior re-weighting). Never reads ``../shared``.

Writes ``robustness.json`` and the robustness section of ``results.md`` in ``--out``.
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
import selection  # noqa: E402

run_all.setup_paths()

JSON_FILE = "robustness.json"
QUIET_LABEL = "none (every effect off)"
ALL_LABEL = "all (as in training)"
COST_METRICS = ("top1", "system_accuracy")


def conditions(ranges) -> list[tuple[str, object]]:
    """(label, Augmentation) of every rendering: quiet, each effect alone, all of them."""
    from core.augmentation import EFFECTS, QUIET, only

    return ([(QUIET_LABEL, QUIET)] + [(effect, only(effect, ranges)) for effect in EFFECTS]
            + [(ALL_LABEL, ranges)])


def score(classifier, evaluation_set, draws: int = 1) -> list[dict]:
    """One entry per condition: metrics with intervals, and the paired cost against quiet."""
    from core.evalsets import evaluate_model
    from core.intervals import difference_interval, metric_interval

    entries, quiet = [], None
    for label, augmentation in conditions(classifier.metadata.training_augmentation):
        started = time.perf_counter()
        labelled = replace(evaluation_set.labelled, augmentation=augmentation, draws=draws)
        result = evaluate_model(classifier, labelled)
        if quiet is None:  # the first rendering is the reference
            quiet = result
        entries.append({
            "model": classifier.metadata.name, "set": evaluation_set.label, "condition": label,
            "draws": result.draws, "metrics": result.metrics.to_dict(),
            "intervals": {m: metric_interval(result.labels, result.probabilities, m,
                                             draws=result.draws).to_dict() for m in COST_METRICS},
            "cost": {m: difference_interval(result.labels, result.probabilities,
                                            quiet.probabilities, m, draws=result.draws).to_dict()
                     for m in COST_METRICS},
            "seconds": round(time.perf_counter() - started, 2)})
    return entries


def markdown(data: dict) -> str:
    pct, text = accuracy._percent, accuracy.interval_text
    lines = ["## Robustness (project-generated data)", "",
             f"Run {data['date']} with `python benchmarks/robustness.py --models "
             f"{' '.join(data['models'])} --datasets {' '.join(data['datasets'])}"
             f"{' --draws ' + str(data['draws']) if data.get('draws', 1) > 1 else ''}`.", "",
             "Percent, network output. The same held-out patterns rendered with every "
             "perturbation off, with one measurement effect on (on every pattern, at the size "
             "the model trained with), and with all of them as in training. *Change* is the "
             "paired difference from the first row, with its 95 % bootstrap interval: what "
             "the effect alone costs.", ""]
    for (model, set_label) in dict.fromkeys((e["model"], e["set"]) for e in data["results"]):
        entries = [e for e in data["results"] if e["model"] == model and e["set"] == set_label]
        lines += [f"**{model}** on {set_label} (n = {entries[0]['metrics']['n']}):", "",
                  "| Rendering | SG top-1 | change | System acc. | change | SG top-5 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for e in entries:
            m, cost = e["metrics"], e["cost"]
            changes = ["—" if e["condition"] == QUIET_LABEL else text(cost[k], signed=True)
                       for k in COST_METRICS]
            lines.append(f"| {e['condition']} | {pct(m['top1'])} | {changes[0]} | "
                         f"{pct(m['system_accuracy'])} | {changes[1]} | {pct(m['top5'])} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="What each measurement effect costs a model.")
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--datasets", nargs="+", default=["default"])
    parser.add_argument("--draws", type=int, default=1,
                        help="draws of the perturbations per pattern (default 1)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    from core import dataset as store
    from core.classify import Classifier

    started = time.perf_counter()
    data = {"date": run_all.now(), "machine": run_all.machine_facts(), "models": args.models,
            "datasets": args.datasets, "draws": args.draws, "results": []}
    for name in args.models:
        classifier = Classifier.load(name, adjust_prior=False, index=False)
        for dataset in args.datasets:
            evaluation_set = selection.held_out_set(store.load(dataset), [classifier])
            for entry in score(classifier, evaluation_set, args.draws):
                data["results"].append(entry)
                m, cost = entry["metrics"], entry["cost"]["top1"]["estimate"]
                print(f"  {name:<12} {entry['set']:<24} {entry['condition']:<36} top-1 "
                      f"{accuracy._percent(m['top1']):>5} % ({100 * cost:+.1f}), system "
                      f"{accuracy._percent(m['system_accuracy'])} % ({entry['seconds']:.0f} s)",
                      flush=True)
    data["seconds"] = round(time.perf_counter() - started, 1)
    run_all.write_json(args.out / JSON_FILE, data)
    results = run_all.update_section(args.out, "robustness", markdown(data))
    print(f"Wrote {args.out / JSON_FILE} and {results}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
