"""Speed benchmarks of xrd-classify, each beside its target.

Usage (from the project root)::

    python benchmarks/speed.py [--quick] [--out DIR] [--only GROUP ...]

Groups, run in this order:

* ``simulation``: structures simulated per second (pymatgen's bundled structures through
  ``core.simulation.simulate_many``) and random crystals generated and simulated per second
  (``core.generation.generate_synthetic``, pyxtal and fast engines), with 1 and 2 processes.
* ``dask``: the same random crystals on a local Dask cluster of 1 and 2 worker processes,
  reached by scheduler address as a remote cluster would be.
* ``rendering``: profiles rendered per second (fixed 0.1° FWHM, batches of 1024) and
  augmented profiles per second.
* ``training``: ``train_on_batch`` samples per second of every model kind, end-to-end
  ``core.training.train`` throughput with on-the-fly augmentation, and the "quick demo"
  training preset.
* ``classify``: per-file latency and 1,000-file throughput of the bundled model on
  RRUFF-sized CSV files, and the upload page's path (file bytes through ``classify_sources``).
* ``dataset``: loading and summarising the bundled dataset as the dataset page does.

Writes ``speed.json`` and the speed section of ``results.md`` in ``--out`` (default: this
folder). Timings use ``time.perf_counter`` after a warm-up and report the median of several
repeats; peak memory is the resident-set high-water mark from ``getrusage``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run_all  # noqa: E402 - needs HERE on the path

run_all.setup_paths()

import numpy as np  # noqa: E402

JSON_FILE = "speed.json"
GROUPS = ("simulation", "dask", "rendering", "training", "classify", "dataset")
BATCH = 128
RENDER_BATCH = 1024
RRUFF_GRID = (5.0, 90.0, 0.01)        # RRUFF's usual scan: 8,501 points
DISTINCT_FILES = 50                    # files beyond this repeat earlier contents


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does."""

    repeats: int
    structures: int          # simulate_many
    crystals: int            # generate_synthetic, process pool and Dask
    render_profiles: int
    augmented_profiles: int
    warmup_batches: int
    train_batches: int       # timed train_on_batch calls per repeat
    fit_steps: int           # core.training.train, one epoch
    demo_epochs: int
    demo_steps: int
    files: int               # classify throughput
    latency_calls: int
    upload_files: int
    indexed_files: int       # classify with indexing (the app's default), one call


FULL = Sizes(repeats=3, structures=60, crystals=40, render_profiles=8192,
             augmented_profiles=2048, warmup_batches=2, train_batches=10, fit_steps=20,
             demo_epochs=3, demo_steps=30, files=1000, latency_calls=20, upload_files=100,
             indexed_files=100)
QUICK = Sizes(repeats=1, structures=6, crystals=3, render_profiles=1024,
              augmented_profiles=128, warmup_batches=1, train_batches=1, fit_steps=3,
              demo_epochs=1, demo_steps=2, files=20, latency_calls=3, upload_files=10,
              indexed_files=6)


@dataclass(frozen=True)
class Target:
    """A requirement on a measured value: ``value op threshold``."""

    op: str           # ">=", "<=" or "<"
    threshold: float

    def met(self, value: float) -> bool:
        return {">=": value >= self.threshold, "<=": value <= self.threshold,
                "<": value < self.threshold}[self.op]


@dataclass
class Measurement:
    """One benchmark result."""

    key: str
    group: str
    label: str
    value: float
    unit: str
    details: str = ""
    target: Target | None = None
    repeats: list[float] = field(default_factory=list)   # the value of each repeat

    @property
    def status(self) -> str | None:
        if self.target is None:
            return None
        return "PASS" if self.target.met(self.value) else "MISS"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status
        return data


def median_seconds(run: Callable[[], object], repeats: int,
                   warmup: Callable[[], object] | None = None) -> tuple[float, list[float]]:
    """Median and list of the wall times of ``repeats`` calls of ``run``, after ``warmup``
    (default: one call of ``run``)."""
    (warmup or run)()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def rate(key: str, group: str, label: str, count: int, unit: str, seconds: list[float],
         details: str, target: Target | None = None) -> Measurement:
    """A throughput measurement: ``count`` items per median repeat time."""
    rates = [count / t for t in seconds]
    return Measurement(key, group, label, count / statistics.median(seconds), unit,
                       details, target, [round(r, 3) for r in rates])


# --- simulation ------------------------------------------------------------------------------

def bench_simulation(sizes: Sizes) -> list[Measurement]:
    from core.generation import generate_synthetic, space_groups_by_prior
    from core.simulation import simulate_many
    from core.structures import RandomCrystalSpec, bundled_structures

    bundled = bundled_structures().structures
    structures = (bundled * (sizes.structures // len(bundled) + 1))[:sizes.structures]
    groups = space_groups_by_prior(sizes.crystals, seed=0, minimum=0)
    results = []
    for processes in (1, 2):
        _, times = median_seconds(lambda: simulate_many(structures, processes=processes),
                                  sizes.repeats, warmup=lambda: simulate_many(structures[:4], processes=1))
        results.append(rate(f"simulate_bundled_{processes}p", "simulation",
                            f"Simulation: pymatgen's bundled structures, {processes} process"
                            + ("es" if processes > 1 else ""), len(structures), "structures/s",
                            times, f"{len(structures)} structures ({len(bundled)} distinct)"))
    for processes in (1, 2):
        reports = []
        _, times = median_seconds(
            lambda: reports.append(generate_synthetic(groups, seed=0, processes=processes)),
            sizes.repeats, warmup=lambda: generate_synthetic(groups[:2], seed=1, processes=1))
        results.append(rate(f"generate_synthetic_{processes}p", "simulation",
                            f"Random crystals generated + simulated, {processes} process"
                            + ("es" if processes > 1 else ""), len(groups), "crystals/s", times,
                            f"{len(groups)} crystals; {len(reports[-1].failures)} failed"))
    # The fast engine is timed on ten times as many crystals (same group draw).
    many = space_groups_by_prior(10 * sizes.crystals, seed=0, minimum=0)
    for processes in (1, 2):
        reports = []
        _, times = median_seconds(
            lambda: reports.append(generate_synthetic(many, seed=0, processes=processes,
                                                      engine="fast")),
            sizes.repeats, warmup=lambda: generate_synthetic(many[:4], seed=1, processes=1,
                                                             engine="fast"))
        results.append(rate(f"generate_fast_{processes}p", "simulation",
                            f"Random crystals, fast engine, {processes} process"
                            + ("es" if processes > 1 else ""), len(many), "crystals/s", times,
                            f"{len(many)} crystals; {len(reports[-1].failures)} failed "
                            "(found in another group after 4 draws, or did not fit)"))
    # Larger cells, as for train_v4: sites drawn from COD's counts, up to 160 atoms.
    cod_sites = RandomCrystalSpec(max_atoms=160, sites="cod")
    reports = []
    _, times = median_seconds(
        lambda: reports.append(generate_synthetic(many, seed=0, processes=2, engine="fast",
                                                  spec=cod_sites)),
        sizes.repeats, warmup=lambda: generate_synthetic(many[:4], seed=1, processes=1,
                                                         engine="fast", spec=cod_sites))
    atoms = reports[-1].rows["n_sites"].median() if len(reports[-1].rows) else 0
    results.append(rate("generate_fast_cod_sites_2p", "simulation",
                        "Random crystals, fast engine, COD-like sites (max 160 atoms), 2 processes",
                        len(many), "crystals/s", times,
                        f"{len(many)} crystals; {len(reports[-1].failures)} failed; "
                        f"median {atoms:.0f} atoms per cell"))
    return results


def bench_dask(sizes: Sizes) -> list[Measurement]:
    import logging

    from dask.distributed import LocalCluster

    from core.generation import generate_synthetic, space_groups_by_prior

    # A loaded machine makes the nanny warn when a worker is slow to stop; not a result.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    groups = space_groups_by_prior(sizes.crystals, seed=0, minimum=0)
    results = []
    for workers in (1, 2):
        started = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            startup = time.perf_counter() - started
            address = cluster.scheduler_address
            reports = []
            _, times = median_seconds(
                lambda: reports.append(generate_synthetic(groups, seed=0, processes=workers,
                                                          scheduler=address)),
                sizes.repeats,
                warmup=lambda: generate_synthetic(groups[:2 * workers], seed=1, scheduler=address))
        results.append(rate(f"dask_generate_{workers}w", "dask",
                            f"Random crystals on a local Dask cluster, {workers} worker"
                            + ("s" if workers > 1 else ""), len(groups), "crystals/s", times,
                            f"{len(groups)} crystals; {len(reports[-1].failures)} failed; "
                            f"cluster start {startup:.1f} s (not included)"))
    return results


# --- rendering -------------------------------------------------------------------------------

def _slice(sticks, start: int, stop: int):
    from core.augmentation import StickBatch

    part = slice(start, stop)
    return StickBatch(sticks.two_theta[part], sticks.intensity[part], sticks.hkl[part],
                      sticks.lattice[part], sticks.system[part])


def bench_rendering(sizes: Sizes) -> list[Measurement]:
    from core import dataset as store
    from core.augmentation import Augmentation, augment_profiles
    from core.grid import DEFAULT_GRID
    from core.rendering import render
    from core.training import stick_batch

    data = store.load("default")
    rows = np.resize(np.arange(len(data)), max(sizes.render_profiles, sizes.augmented_profiles))
    sticks = stick_batch(data, rows, 256)

    def render_all(n: int) -> None:
        for start in range(0, n, RENDER_BATCH):
            stop = min(start + RENDER_BATCH, n)
            render(sticks.two_theta[start:stop], sticks.intensity[start:stop], DEFAULT_GRID, fwhm=0.1)

    augmentation = Augmentation()

    def augment_all(n: int) -> None:
        rng = np.random.default_rng(0)
        for start in range(0, n, RENDER_BATCH):
            augment_profiles(_slice(sticks, start, min(start + RENDER_BATCH, n)), DEFAULT_GRID,
                             augmentation, rng)

    _, times = median_seconds(lambda: render_all(sizes.render_profiles), sizes.repeats,
                              warmup=lambda: render_all(RENDER_BATCH))
    grid = f"{DEFAULT_GRID.size}-point grid"
    results = [rate("render_profiles", "rendering", "Profiles rendered (fixed FWHM 0.1°)",
                    sizes.render_profiles, "profiles/s", times,
                    f"{sizes.render_profiles} profiles in batches of {RENDER_BATCH}, {grid}",
                    Target(">=", 20_000))]
    _, times = median_seconds(lambda: augment_all(sizes.augmented_profiles), sizes.repeats,
                              warmup=lambda: augment_all(min(256, sizes.augmented_profiles)))
    results.append(rate("augmented_profiles", "rendering", "Augmented profiles (default ranges)",
                        sizes.augmented_profiles, "profiles/s", times,
                        f"{sizes.augmented_profiles} profiles in batches of {RENDER_BATCH}, {grid}"))
    return results


# --- training --------------------------------------------------------------------------------

def _train_on_batch_rate(kind: str, length: int, sizes: Sizes) -> tuple[float, list[float], int]:
    import keras

    from core.models import build

    keras.backend.clear_session()
    model = build(kind, length)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, length), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 230, BATCH), 230)

    def batches(n: int) -> None:
        for _ in range(n):
            model.train_on_batch(x, y)

    seconds, times = median_seconds(lambda: batches(sizes.train_batches), sizes.repeats,
                                    warmup=lambda: batches(sizes.warmup_batches))
    count = sizes.train_batches * BATCH
    return count / seconds, [round(count / t, 1) for t in times], model.count_params()


def _timed_training(config, data) -> tuple[float, list[float]]:
    """Wall time of ``core.training.train`` (not saved) and the time of each batch end."""
    from core.training import train

    marks: list[float] = []

    def hook(event: dict) -> None:
        if event["type"] == "batch":
            marks.append(time.perf_counter())

    started = time.perf_counter()
    train(data, config, progress=hook, save=False)
    return time.perf_counter() - started, marks


def bench_training(sizes: Sizes) -> list[Measurement]:
    from core import dataset as store
    from core.grid import DEFAULT_GRID
    from core.models import BUILDERS
    from core.rendering import DEFAULT_PADDED_LENGTH
    from core.training import TrainingConfig

    results = []
    shapes = [(kind, DEFAULT_GRID.size, "grid") for kind in BUILDERS]
    shapes += [(kind, 2 * DEFAULT_PADDED_LENGTH, "padded") for kind in BUILDERS if kind.endswith("_ann")]
    for kind, length, input_type in shapes:
        value, per_repeat, parameters = _train_on_batch_rate(kind, length, sizes)
        default_cnn = kind == "resnet1d" and input_type == "grid"
        results.append(Measurement(
            f"train_on_batch_{kind}_{length}", "training",
            f"Training, {BUILDERS[kind].label}, input {length} ({input_type})"
            + (" — default CNN" if default_cnn else ""),
            value, "samples/s",
            f"train_on_batch, batches of {BATCH}, {sizes.train_batches} timed per repeat; "
            f"{parameters:,} parameters",
            Target(">=", 1_000) if default_cnn else None, per_repeat))

    data = store.load("default")
    config = TrainingConfig(name="benchmark-fit", kind="resnet1d", epochs=1,
                            steps_per_epoch=sizes.fit_steps, batch_size=BATCH, report_every=1)
    total, marks = _timed_training(config, data)
    steady = (len(marks) - 1) * BATCH / (marks[-1] - marks[0]) if len(marks) > 1 else float("nan")
    results.append(Measurement(
        "fit_resnet1d_augmented", "training",
        "Training end to end with augmentation, resnet1d (core.training.train)", steady,
        "samples/s", f"{sizes.fit_steps} batches of {BATCH} after the first; whole call "
                     f"{total:.1f} s incl. model build, validation and test inputs"))

    config = TrainingConfig(name="quick-demo", kind="resnet1d", epochs=sizes.demo_epochs,
                            steps_per_epoch=sizes.demo_steps, batch_size=BATCH)
    total, _ = _timed_training(config, data)
    results.append(Measurement(
        "quick_demo_training", "training", "Quick demo training preset (resnet1d)", total, "s",
        f"{sizes.demo_epochs} epoch(s) × {sizes.demo_steps} batches of {BATCH} on the bundled "
        f"dataset ({len(data)} patterns), one run", Target("<", 180)))
    return results


# --- classification --------------------------------------------------------------------------

def write_rruff_files(folder: Path, count: int) -> list[Path]:
    """``count`` RRUFF-sized CSV files (``angle,intensity``, 5–90° at 0.01°) rendered from the
    bundled dataset's patterns and scaled to 0–100 like most RRUFF files."""
    from core import dataset as store
    from core.grid import TwoThetaGrid
    from core.rendering import render
    from core.training import stick_batch

    data = store.load("default")
    grid = TwoThetaGrid(*RRUFF_GRID)
    distinct = min(count, DISTINCT_FILES, len(data))
    rows = np.random.default_rng(0).choice(len(data), distinct, replace=False)
    sticks = stick_batch(data, rows, 256)
    profiles = 100 * render(sticks.two_theta, sticks.intensity, grid, fwhm=0.1)
    angles = [f"{a:.2f}" for a in grid.angles.astype(np.float64)]
    contents = []
    for profile in profiles:
        lines = [f"{a},{v:.3f}" for a, v in zip(angles, (profile + 0.5).tolist())]
        contents.append(("angle,intensity\n" + "\n".join(lines) + "\n").encode())
    paths = []
    for index in range(count):
        path = folder / f"R9{index:05d}.csv"
        path.write_bytes(contents[index % distinct])
        paths.append(path)
    return paths


def _errors(predictions) -> int:
    return sum(p.error is not None for p in predictions)


def bench_classify(sizes: Sizes) -> list[Measurement]:
    from core.classify import Classifier

    results = []
    with tempfile.TemporaryDirectory(prefix="xrd-bench-") as folder:
        files = write_rruff_files(Path(folder), max(sizes.files, sizes.upload_files))
        load_started = time.perf_counter()
        indexing = Classifier.load("default")
        load_seconds = time.perf_counter() - load_started
        # The network alone (index=False) for the fast paths; the app's default indexes too.
        classifier = Classifier(indexing.model, indexing.metadata, indexing.adjust_prior,
                                index=False)
        classifier.classify_files(files[:1])   # warm-up: the first prediction traces the graph

        latencies = []
        for path in files[:sizes.latency_calls]:
            started = time.perf_counter()
            classifier.classify_files([path])
            latencies.append(1000 * (time.perf_counter() - started))
        results.append(Measurement(
            "classify_latency", "classify",
            "Classify one RRUFF-sized file, network only (model loaded)",
            statistics.median(latencies), "ms",
            f"median of {len(latencies)} single-file calls; model load {load_seconds:.1f} s "
            "(not included)", Target("<=", 100), [round(t, 1) for t in latencies]))
        results += bench_indexed(indexing, files, sizes)

        batch = files[:sizes.files]
        predictions = []
        _, times = median_seconds(lambda: predictions.append(classifier.classify_files(batch)),
                                  sizes.repeats)
        results.append(rate("classify_throughput", "classify",
                            f"Classify {len(batch):,} RRUFF-sized files in one call, network only", len(batch),
                            "files/s", times, f"{len(batch)} CSV files of 8,501 points; "
                            f"{_errors(predictions[-1])} unreadable", Target(">=", 100)))

        sources = [(path.name, path.read_bytes()) for path in files[:sizes.upload_files]]
        uploads = []
        _, times = median_seconds(lambda: uploads.append(classifier.classify_sources(sources)),
                                  sizes.repeats)
        per_100 = [t * 100 / len(sources) for t in times]
        results.append(Measurement(
            "upload_100_files", "classify",
            "Upload path: 100 files as bytes (classify_sources), network only",
            statistics.median(per_100), "s per 100 files",
            f"{len(sources)} uploads of {len(sources[0][1]) / 1e3:.0f} kB, scaled to 100; "
            f"{_errors(uploads[-1])} unreadable", Target("<=", 5),
            [round(t, 3) for t in per_100]))
        results.append(bench_peak_influence(classifier, files[:sizes.latency_calls]))
    return results


def bench_indexed(classifier, files: list[Path], sizes: Sizes) -> list[Measurement]:
    """Classification as the app does it by default: each file indexed and re-ranked."""
    latencies = []
    for path in files[:sizes.latency_calls]:
        started = time.perf_counter()
        classifier.classify_files([path])
        latencies.append(1000 * (time.perf_counter() - started))
    batch = files[:sizes.indexed_files]
    predictions = []
    _, times = median_seconds(lambda: predictions.append(classifier.classify_files(batch)), 1)
    indexed = sum(p.cell is not None for p in predictions[-1])
    return [
        Measurement("classify_indexed_latency", "classify",
                    "Classify one RRUFF-sized file, indexed (the app's default)",
                    statistics.median(latencies), "ms",
                    f"median of {len(latencies)} single-file calls, one process",
                    Target("<=", 3000), [round(t, 1) for t in latencies]),
        rate("classify_indexed_throughput", "classify",
             f"Classify {len(batch)} RRUFF-sized files in one call, indexed", len(batch),
             "files/s", times, f"{os.cpu_count()} worker processes; a cell found for "
             f"{indexed} of {len(batch)}", Target(">=", 1)),
    ]


def bench_peak_influence(classifier, files: list[Path]) -> Measurement:
    """The Classify page's "Which peaks decided it?" for one file: every peak of the model
    input taken out in turn, one batch of predictions."""
    from core.explain import peak_influence

    predictions = classifier.classify_files(files)
    latencies, peaks = [], []
    for prediction in predictions:
        group = prediction.space_groups[0][0]
        started = time.perf_counter()
        influences = peak_influence(classifier, prediction.preprocessed.profile, group)
        latencies.append(1000 * (time.perf_counter() - started))
        peaks.append(len(influences))
    return Measurement(
        "peak_influence", "classify", "Which peaks decided it: one RRUFF-sized file",
        statistics.median(latencies), "ms",
        f"median of {len(latencies)} files, median {statistics.median(peaks):.0f} peaks each",
        Target("<=", 500), [round(t, 1) for t in latencies])


# --- dataset page ----------------------------------------------------------------------------

def dataset_overview_figures() -> Callable | None:
    """The dataset page's overview figures as ``build(dataset) -> list of figures`` (the
    same calls as ``pages/dataset.py``); None when ``ui/figures_dataset.py`` is absent."""
    try:
        from ui import figures_dataset as fig
    except ModuleNotFoundError as exc:
        if exc.name not in ("ui.figures_dataset", "ui"):
            raise
        return None

    def build(data) -> list:
        summary = fig.summarise_table(data.table)
        return [fig.space_group_figure(summary["class_counts"]),
                fig.crystal_system_figure(summary["systems"]),
                fig.pattern_size_figure(summary["peaks"], summary["visible_peaks"]),
                fig.lattice_figure(data.table), fig.volume_figure(summary["volumes"]),
                fig.periodic_table_figure(summary["elements"])]

    return build


def bench_dataset(sizes: Sizes) -> list[Measurement]:
    from core import dataset as store

    figures = dataset_overview_figures()
    built: list[int] = []

    def page() -> None:
        data = store.load("default")
        store.summarise(data)
        if figures is not None:
            # Serialised as st.plotly_chart does before sending a figure to the browser.
            built.append(len([f.to_json() for f in figures(data)]))

    seconds, times = median_seconds(page, max(sizes.repeats, 2))
    details = ("ui/figures_dataset.py not present: load + summarise only" if figures is None
               else f"load + summarise + {built[-1]} overview figures built and serialised")
    return [Measurement("dataset_page", "dataset", "Dataset page: load + summarise the bundled "
                        "dataset and build its figures", seconds, "s", details, Target("<", 2),
                        [round(t, 3) for t in times])]


BENCHMARKS: dict[str, Callable[[Sizes], list[Measurement]]] = {
    "simulation": bench_simulation, "dask": bench_dask, "rendering": bench_rendering,
    "training": bench_training, "classify": bench_classify, "dataset": bench_dataset,
}


# --- reporting -------------------------------------------------------------------------------

def _number(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cell(text) -> str:
    """Text safe inside a markdown table cell."""
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def _target_text(target: dict | None, unit: str) -> str:
    if not target:
        return "—"
    op = {">=": "≥", "<=": "≤", "<": "<"}[target["op"]]
    return f"{op} {_number(target['threshold'])} {unit}"


def print_measurement(m: Measurement) -> None:
    target = _target_text(asdict(m.target) if m.target else None, m.unit)
    status = f"  {m.status}" if m.status else ""
    print(f"  {m.label:<72} {_number(m.value):>9} {m.unit:<16} target {target}{status}", flush=True)


def markdown(data: dict) -> str:
    """The speed section of ``results.md`` for a ``speed.json`` document."""
    quick = " **Quick run: tiny sizes, to test the script; not representative.**" if data.get("quick") else ""
    lines = [
        "## Speed", "",
        f"Run {data['date']} with `python benchmarks/speed.py{' --quick' if data.get('quick') else ''}`"
        f" in {data.get('total_seconds', 0):.0f} s.{quick}",
        "", run_all.machine_line(data["machine"]), "",
    ]
    if data.get("kept_groups"):
        lines += [f"Groups kept from earlier runs (see when each finished below): "
                  f"{', '.join(data['kept_groups'])}.", ""]
    lines += [
        "| Benchmark | Result | Target | Status | Details |",
        "|---|---:|---|---|---|",
    ]
    for m in data["results"]:
        lines.append(f"| {m['label']} | {_number(m['value'])} {m['unit']} | "
                     f"{_target_text(m.get('target'), m['unit'])} | {m.get('status') or '—'} | "
                     f"{_cell(m['details'])} |")
    met = [m for m in data["results"] if m.get("status")]
    lines += ["", f"Targets met: {sum(m['status'] == 'PASS' for m in met)} of {len(met)}.", "",
              "Peak resident memory after each group (high-water marks since the start of the run; "
              "children: the largest finished subprocess):", "",
              "| Group | Finished | Quick | Seconds | This process | Children | Error |",
              "|---|---|---|---:|---:|---:|---|"]
    for name, group in data["groups"].items():
        memory = group.get("memory", {})
        lines.append(f"| {name} | {group.get('date', '')} | {'yes' if group.get('quick') else 'no'} | "
                     f"{group.get('seconds', 0):.1f} | {memory.get('self_mb', 0):,.0f} MB | "
                     f"{memory.get('children_mb', 0):,.0f} MB | {_cell(group.get('error'))} |")
    return "\n".join(lines) + "\n"


def _merge(previous: dict, current: dict) -> dict:
    """Keep groups of ``previous`` that this run did not measure."""
    ran = set(current["groups"])
    current["kept_groups"] = [k for k in previous.get("groups", {}) if k not in ran]
    groups = {k: v for k, v in previous.get("groups", {}).items() if k not in ran}
    groups.update(current["groups"])
    kept = [m for m in previous.get("results", []) if m["group"] not in ran]
    order = {name: i for i, name in enumerate(GROUPS)}
    current["groups"] = dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], 99)))
    current["results"] = sorted(kept + current["results"], key=lambda m: order.get(m["group"], 99))
    return current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Speed benchmarks of xrd-classify.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the script")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for speed.json and results.md")
    parser.add_argument("--only", nargs="+", choices=GROUPS, metavar="GROUP",
                        help=f"run only these groups ({', '.join(GROUPS)}); others are kept "
                             "from an existing speed.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    selected = [g for g in GROUPS if not args.only or g in args.only]
    data = {"date": run_all.now(), "quick": args.quick, "machine": run_all.machine_facts(),
            "sizes": asdict(sizes), "groups": {}, "results": []}
    print(f"Speed benchmarks{' (quick)' if args.quick else ''}: {', '.join(selected)}", flush=True)
    started, failed = time.perf_counter(), False
    for name in selected:
        print(f"[{name}]", flush=True)
        group_started = time.perf_counter()
        error = None
        try:
            measurements = BENCHMARKS[name](sizes)
        except Exception as exc:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            measurements, error, failed = [], f"{exc.__class__.__name__}: {exc}", True
        for m in measurements:
            print_measurement(m)
            data["results"].append(m.to_dict())
        data["groups"][name] = {"date": run_all.now(), "quick": args.quick,
                                "seconds": round(time.perf_counter() - group_started, 2),
                                "memory": run_all.peak_memory_mb(), "error": error}
    data["total_seconds"] = round(time.perf_counter() - started, 1)
    data["peak_memory"] = run_all.peak_memory_mb()
    path = args.out / JSON_FILE
    if args.only and path.exists():
        data = _merge(json.loads(path.read_text(encoding="utf-8")), data)
    run_all.write_json(path, data)
    results = run_all.update_section(args.out, "speed", markdown(data))
    statuses = [m["status"] for m in data["results"] if m.get("status")]
    peak = data["peak_memory"]
    print(f"Targets met: {statuses.count('PASS')} of {len(statuses)}. Peak memory: "
          f"{peak['self_mb']:,.0f} MB (children {peak['children_mb']:,.0f} MB). "
          f"Wrote {path} and {results} in {data['total_seconds']:.0f} s.", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
