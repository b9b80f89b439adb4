"""Command line: ``python -m core {classify,generate,train,evaluate,models,datasets}``."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.training import TrainingConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _progress_bar(description: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="it", file=sys.stderr, dynamic_ncols=True)


def cmd_classify(args) -> int:
    from core.classify import Classifier
    from core.indexing import RERANK_M20
    from core.preprocess import Preprocessing
    from core.registry import ModelError

    try:
        classifier = Classifier.load(args.model, adjust_prior=not args.raw_output)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    preprocessing = None
    if args.background or args.smoothing:
        preprocessing = Preprocessing(background=args.background or "none",
                                      smoothing=args.smoothing or 0)
    predictions = classifier.classify_files(args.files, top=args.top, wavelength=args.wavelength,
                                            preprocessing=preprocessing, index=args.index)
    for prediction in predictions:
        if args.json:
            print(json.dumps(prediction.to_json()))
        elif prediction.error:
            print(f"{prediction.file}: ERROR {prediction.error}")
        else:
            ranked = ", ".join(f"{n} {s} ({p:.2f})" for n, s, p in prediction.space_groups)
            system, probability = prediction.crystal_systems[0]
            cell = ""
            if prediction.indexed:
                found = prediction.cell
                cell = (" | no cell" if found is None else
                        f" | cell {found.bravais_lattice} M20 {found.m20:.1f}"
                        f"{'' if found.m20 >= RERANK_M20 else ' (not used)'}")
            print(f"{prediction.file}: {ranked} | {system} ({probability:.2f}){cell}")
    return 1 if any(p.error for p in predictions) else 0


def cmd_index(args) -> int:
    from core.grid import CU_KA
    from core.indexing import index_pattern
    from core.peaks import pattern_peaks
    from core.readers import PatternReadError, read_pattern

    failed = False
    for file in args.files:
        try:
            pattern = read_pattern(file)
        except PatternReadError as exc:
            print(f"{file}: ERROR {exc}")
            failed = True
            continue
        wavelength = args.wavelength or pattern.wavelength or CU_KA
        solutions = index_pattern(pattern_peaks(pattern), wavelength, args.tolerance, top=args.top)
        if args.json:
            print(json.dumps({"file": file, "wavelength": wavelength, "cells": [
                {"system": s.system, "centring": s.centring, "bravais_lattice": s.bravais_lattice,
                 "cell": [round(v, 5) for v in s.cell], "volume": round(s.volume, 3),
                 "m20": round(s.m20, 2), "unindexed": s.n_unindexed,
                 "zero_shift": round(s.zero_shift, 4)} for s in solutions]}))
        elif not solutions:
            print(f"{file}: no cell found (cubic to triclinic searched)")
        for s in [] if args.json else solutions:
            a, b, c, alpha, beta, gamma = s.cell
            print(f"{file}: {s.system} {s.centring}  a={a:.4f} b={b:.4f} c={c:.4f} Å  "
                  f"α={alpha:.2f} β={beta:.2f} γ={gamma:.2f}°  V={s.volume:.1f} Å³  "
                  f"M20={s.m20:.1f}  unindexed {s.n_unindexed}")
    return 1 if failed else 0


def _chunk_seed(seed: int, start: int) -> int:
    """The seed of the chunk of a ``--chunk`` run that starts at crystal ``start``."""
    return seed * 1000003 + start


def _number_in(low: float, high: float, what: str):
    """An argparse type: a finite number from ``low`` to ``high``, else "'text' is not ``what``"."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


_share = _number_in(0.0, 1.0, "a share from 0 to 1")
_non_negative = _number_in(0.0, math.inf, "a number of 0 or more")


def cmd_generate(args) -> int:
    from core import dataset as store
    from core.generation import (datasets_with_seeds, generate_from_structures,
                                 generate_synthetic, space_groups_by_prior)
    from core.structures import RandomCrystalSpec, bundled_structures, read_cif_folder

    command = "python -m core " + shlex.join(args.argv)
    if args.pseudo_symmetry and args.engine != "fast":
        print("error: --pseudo-symmetry needs --engine fast (pyxtal places atoms itself)",
              file=sys.stderr)
        return 2
    parts = []
    if args.per_group or args.total:
        if args.per_group:
            groups = [n for n in (args.space_groups or range(1, 231)) for _ in range(args.per_group)]
        else:
            groups = space_groups_by_prior(args.total, seed=args.seed, minimum=args.minimum)
        if args.limit:
            groups = groups[:args.limit]
        spec = RandomCrystalSpec(max_atoms=args.max_atoms, sites=args.sites,
                                 positions=args.positions, pseudo_symmetry=args.pseudo_symmetry)
        chunk = args.chunk or len(groups)
        seeds = [_chunk_seed(args.seed, start) for start in range(0, len(groups), chunk)] \
            if args.chunk else [args.seed]
        if users := datasets_with_seeds(seeds, args.engine):
            print(f"warning: seed {args.seed} already made {args.engine} crystals in "
                  + ", ".join(f"{name} ({count:,})" for name, count in users.items())
                  + "; with the same settings they come out again, and datasets that share "
                    "crystals are not trained together. Another --seed gives new crystals.",
                  file=sys.stderr)
        bar = _progress_bar("crystals", len(groups))
        for start in range(0, len(groups), chunk):
            # Each chunk is saved as soon as it is done, so a long run can be interrupted.
            offset = bar.n
            report = generate_synthetic(groups[start:start + chunk],
                                        seed=_chunk_seed(args.seed, start) if args.chunk else args.seed,
                                        spec=spec, processes=args.processes, scheduler=args.scheduler,
                                        engine=args.engine,
                                        progress=lambda done, total: bar.update(offset + done - bar.n))
            print(f"synthetic: {len(report.rows)} patterns, {len(report.failures)} failed, "
                  f"{report.mismatched} detected in another space group than requested", file=sys.stderr)
            if args.chunk:
                store.append(args.name, report.rows) if (args.append or start) else \
                    store.create(args.name, report.rows, command=command, seed=args.seed)
            else:
                parts.append(report.rows)
        bar.close()
        if args.chunk and not (args.include_bundled or args.cif_folder):
            print(json.dumps(store.summarise(store.load(args.name)), indent=1))
            return 0
        args.append = args.append or bool(args.chunk)
    batches = []
    if args.include_bundled:
        batches.append(("pymatgen", bundled_structures()))
    if args.cif_folder:
        batches.append(("cif", read_cif_folder(args.cif_folder)))
    for source, batch in batches:
        for name, reason in batch.failures:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        report = generate_from_structures(batch.structures, [f"{source}-{n}" for n in batch.names],
                                          source, processes=args.processes, scheduler=args.scheduler)
        parts.append(report.rows)
    if not parts:
        print("error: nothing to generate (give --per-group, --total, --include-bundled or --cif-folder)",
              file=sys.stderr)
        return 2
    import pandas as pd

    rows = pd.concat(parts, ignore_index=True)
    if args.append:
        dataset = store.append(args.name, rows)
    else:
        dataset = store.create(args.name, rows, command=command, seed=args.seed)
    print(json.dumps(store.summarise(dataset), indent=1))
    return 0


def _augmentation(strength: float, ranges: str):
    from core.augmentation import Augmentation

    changes = json.loads(ranges) if ranges else {}
    if not isinstance(changes, dict):
        raise ValueError('--augmentation-ranges: give a JSON object such as {"lattice_strain": 0.08}')
    unknown = set(changes) - set(Augmentation.__dataclass_fields__)
    if unknown:
        raise ValueError(f"--augmentation-ranges: unknown names {sorted(unknown)}")
    return Augmentation.from_dict({**Augmentation().to_dict(), **changes, "strength": strength})


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """The :class:`~core.training.TrainingConfig` a parsed ``train`` command line asks for."""
    from core.grid import TwoThetaGrid
    from core.training import TrainingConfig

    return TrainingConfig(
        name=args.name, kind=args.model, input_type=args.input,
        grid=TwoThetaGrid(args.two_theta_min, args.two_theta_max, args.step),
        epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, class_weighting=args.class_weighting,
        augmentation=_augmentation(args.augmentation, args.augmentation_ranges), seed=args.seed,
        group_by_formula=args.group_by_formula, early_stopping_patience=args.patience,
        validation=args.validation, test=args.test,
        hyperparameters=json.loads(args.hyperparameters) if args.hyperparameters else {},
        time_limit_minutes=args.time_limit, lr_schedule=args.lr_schedule,
        initial_model=args.init_from, data_workers=args.data_workers,
        data_processes=args.data_processes, lattice_loss_weight=args.lattice_loss_weight)


def cmd_train(args) -> int:
    from core import dataset as store
    from core.training import train

    dataset = store.combine([store.load(name) for name in args.dataset])
    config = training_config(args)
    bar = _progress_bar(f"{args.model} epoch 1/{args.epochs}", total=None)

    shown_epoch = []

    def report(event: dict) -> None:
        if event["type"] == "batch":
            if shown_epoch != [event["epoch"]]:  # a fresh bar (count, clock, rate) per epoch
                shown_epoch[:] = [event["epoch"]]
                bar.set_description(f"{args.model} epoch {event['epoch'] + 1}/{event['epochs']}",
                                    refresh=False)
                bar.reset(total=event["batches"])
            bar.update(event["batch"] - bar.n)
            bar.set_postfix(loss=f"{event['logs'].get('loss', 0):.3f}",
                            acc=f"{event['logs'].get('accuracy', 0):.3f}", lr=f"{event['lr']:.1e}")
        else:
            logs = event["logs"]
            bar.write(f"epoch {event['epoch']}: " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()),
                      file=sys.stderr)

    stop = threading.Event()
    try:
        result = train(dataset, config, progress=report, stop=stop, description=args.description)
    except KeyboardInterrupt:
        stop.set()
        return 130
    finally:
        bar.close()
    print(json.dumps(result.metadata.metrics, indent=1))
    return 0


def cmd_evaluate(args) -> int:
    from core import dataset as store
    from core.classify import Classifier
    from core.evalsets import dataset_test_set, evaluate_model, labelled_folder, simulated_cif_folder

    classifier = Classifier.load(args.model, index=args.index)
    if args.dataset:
        labelled = dataset_test_set(store.load(args.dataset))
    elif args.cif_folder:
        labelled = simulated_cif_folder(args.cif_folder)
    else:
        labelled = labelled_folder(args.folder)
    from core.intervals import INTERVAL_METRICS, metric_interval

    result = evaluate_model(classifier, labelled)
    bounds = {metric: metric_interval(result.labels, result.probabilities, metric)
              for metric in INTERVAL_METRICS}
    intervals = {metric: [None if b.low != b.low else b.low, None if b.high != b.high else b.high]
                 for metric, b in bounds.items()}  # None: too few patterns to resample
    print(json.dumps({"model": result.model, "set": result.set_name, "seconds": round(result.seconds, 2),
                      **result.metrics.to_dict(), "interval_95": intervals}, indent=1))
    return 0


def cmd_models(args) -> int:
    from core.registry import list_models

    for meta in list_models():
        top1 = meta.metrics.get("top1")
        print(f"{meta.name:24s} {meta.kind:14s} {meta.status:8s} "
              f"{'' if top1 is None else f'test top-1 {top1:.3f}'}")
    return 0


def cmd_datasets(args) -> int:
    from core import dataset as store

    for name in store.list_datasets():
        summary = store.summarise(store.load(name))
        print(f"{name:24s} {summary['patterns']:7d} patterns {summary['space_groups']:4d} groups")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="xrd-classify command line")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("classify", help="rank space groups for measured pattern files")
    c.add_argument("files", nargs="+")
    c.add_argument("--model", default="default")
    c.add_argument("--top", type=int, default=5)
    c.add_argument("--json", action="store_true", help="one JSON object per file, per line")
    c.add_argument("--wavelength", type=float, default=None, help="Å (default: file's or Cu Kα)")
    c.add_argument("--background", choices=("none", "snip", "arpls", "modpoly"), default=None)
    c.add_argument("--smoothing", type=int, default=0)
    c.add_argument("--raw-output", action="store_true",
                   help="the network's own probabilities, not re-weighted to real-world "
                        "space-group frequencies")
    c.add_argument("--index", action=argparse.BooleanOptionalAction, default=True,
                   help="index each pattern and, where the cell is convincing, favour the space "
                        "groups of its lattice whose systematic absences explain its lines "
                        "(about a second per file, several at once; default: on). --no-index "
                        "gives the network alone")
    c.set_defaults(func=cmd_classify)

    x = sub.add_parser("index", help="find unit cells that index a pattern's first 20 peaks")
    x.add_argument("files", nargs="+")
    x.add_argument("--wavelength", type=float, default=None, help="Å (default: file's or Cu Kα)")
    x.add_argument("--tolerance", type=_number_in(0.001, 0.5, "a 2θ tolerance from 0.001 to 0.5°"),
                   default=0.03, help="largest 2θ misfit of an indexed line, degrees")
    x.add_argument("--top", type=int, default=3)
    x.add_argument("--json", action="store_true", help="one JSON object per file, per line")
    x.set_defaults(func=cmd_index)

    g = sub.add_parser("generate", help="make or grow a dataset")
    g.add_argument("--name", required=True)
    g.add_argument("--per-group", type=int, default=0, help="random crystals per space group")
    g.add_argument("--space-groups", type=int, nargs="*", help="only these groups (with --per-group)")
    g.add_argument("--total", type=int, default=0, help="crystals drawn by the real-world group prior")
    g.add_argument("--minimum", type=int, default=1, help="with --total: at least this many per group")
    g.add_argument("--max-atoms", type=int, default=72)
    # core.structures.SITE_PLANS, written out: importing it would load pymatgen for every command.
    g.add_argument("--sites", default="few", choices=("few", "cod", "cod-system", "cod-cells"),
                   help="independent sites per crystal: few (1-2 per species), cod (drawn "
                        "from COD's counts, larger cells; use with --max-atoms 160), "
                        "cod-system (COD's counts for the crystal's own system) or cod-cells "
                        "(sites and atoms per cell of a COD structure of the same system)")
    # core.structures.POSITION_PLANS, written out for the same reason.
    g.add_argument("--positions", default="prefer-general", choices=("prefer-general", "cod-system"),
                   help="Wyckoff position of each site: prefer-general (general position 3x as "
                        "likely as each special one) or cod-system (as often as COD's "
                        "structures of the crystal's system use each site symmetry)")
    g.add_argument("--engine", default="pyxtal", choices=("pyxtal", "fast"),
                   help="random crystals from pyxtal, or core.fast_crystals (15-25 times faster)")
    g.add_argument("--pseudo-symmetry", type=_share, default=0.0, metavar="SHARE",
                   help="share of crystals (0-1) with atoms near the points of a grid, slightly "
                        "distorted from a more symmetric arrangement as real crystals often "
                        "are (fast engine only)")
    g.add_argument("--include-bundled", action="store_true", help="add pymatgen's bundled structures")
    g.add_argument("--cif-folder", help="add every CIF of this folder")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--processes", type=int, default=None)
    g.add_argument("--scheduler", default=None, help="Dask scheduler address, or 'local'")
    g.add_argument("--append", action="store_true")
    g.add_argument("--chunk", type=int, default=0, help="save after every CHUNK crystals")
    g.add_argument("--limit", type=int, default=0,
                   help="make only the first LIMIT crystals of the planned draw")
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="train a model and save it under models/")
    t.add_argument("--name", required=True)
    t.add_argument("--dataset", nargs="+", default=["default"], metavar="NAME",
                   help="one or more datasets; each keeps its own validation/test split")
    t.add_argument("--model", default="resnet1d", choices=("baseline_ann", "optimised_ann", "report_cnn", "resnet1d"))
    t.add_argument("--input", default="grid", choices=("grid", "padded"))
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--steps", type=int, default=None, help="batches per epoch")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument("--class-weighting", default="sqrt", choices=("none", "balanced", "sqrt"))
    t.add_argument("--lattice-loss-weight", type=_non_negative, default=0.0, metavar="W",
                   help="add W x the crystal-system and Bravais-lattice cross-entropies to the "
                        "loss (credits a wrong space group of the right lattice; default 0)")
    t.add_argument("--augmentation", type=float, default=1.0, help="strength, 0 = off")
    t.add_argument("--augmentation-ranges", default="",
                   help='perturbation ranges to change, as JSON, e.g. \'{"lattice_strain": 0.08}\' '
                        "(names as in core.augmentation.Augmentation)")
    t.add_argument("--two-theta-min", type=float, default=5.0)
    t.add_argument("--two-theta-max", type=float, default=90.0)
    t.add_argument("--step", type=float, default=0.04)
    t.add_argument("--patience", type=int, default=8)
    t.add_argument("--lr-schedule", default="plateau", choices=("plateau", "cosine"),
                   help="halve the rate on a plateau, or cosine decay over epochs x steps")
    t.add_argument("--validation", type=float, default=0.1,
                   help="fraction of the patterns held out for validation (checked every epoch)")
    t.add_argument("--test", type=float, default=0.1, help="fraction held out for the final test")
    t.add_argument("--group-by-formula", action="store_true")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--hyperparameters", default="", help='builder settings as JSON, e.g. \'{"width": 16}\'')
    t.add_argument("--description", default="", help="text for the model card")
    t.add_argument("--init-from", default=None, metavar="MODEL",
                   help="continue from this saved model's weights (same kind, input and grid)")
    t.add_argument("--time-limit", type=float, default=None, help="minutes; stop after the epoch past it")
    t.add_argument("--data-workers", type=int, default=1,
                   help="threads making augmented batches (more where a GPU runs the network)")
    t.add_argument("--data-processes", action="store_true",
                   help="make the batches in DATA_WORKERS processes instead of threads "
                        "(same batches; for a many-core machine feeding a GPU)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics of a model on a labelled set, with 95 %% "
                                        "bootstrap intervals")
    e.add_argument("--model", default="default")
    where = e.add_mutually_exclusive_group(required=True)
    where.add_argument("--dataset", help="a dataset's test split")
    where.add_argument("--folder", help="measured patterns with labels.csv or DIF files")
    where.add_argument("--cif-folder", help="CIFs with labels.csv, simulated realistically")
    e.add_argument("--index", action=argparse.BooleanOptionalAction, default=True,
                   help="index each pattern and re-rank as classify does (about a second a "
                        "pattern; default: on). --no-index scores the network alone")
    e.set_defaults(func=cmd_evaluate)

    sub.add_parser("models", help="list saved models").set_defaults(func=cmd_models)
    sub.add_parser("datasets", help="list datasets").set_defaults(func=cmd_datasets)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv  # recorded with what a command makes, to say how it was made
    from core.dataset import DatasetError
    from core.registry import ModelError

    try:
        return args.func(args)
    except (DatasetError, ModelError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
