"""Run every benchmark and rewrite ``results.md`` with all of its sections.

Usage (from the project root)::

    python benchmarks/run_all.py [--quick] [--out DIR] [--models NAME ...] [--only GROUP ...]
    python benchmarks/run_all.py --report-only     # rebuild results.md from the JSON files

This module also owns the layout of ``results.md``: a header, then one section per benchmark
script between ``<!-- name -->`` and ``<!-- /name -->`` markers, so that ``speed.py`` and
``accuracy.py`` can each replace their own section when run on their own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS_FILE = "results.md"
SECTIONS = ("speed", "accuracy", "selection", "robustness", "indexing")
SECTION_TITLES = {"speed": "Speed", "accuracy": "Accuracy",
                  "selection": "Model selection (project-generated data)",
                  "robustness": "Robustness (project-generated data)",
                  "indexing": "Indexing (real data)"}
SECTION_COMMANDS = {"speed": "python benchmarks/speed.py", "accuracy": "python benchmarks/accuracy.py",
                    "selection": "python benchmarks/selection.py --models ... --datasets ...",
                    "robustness": "python benchmarks/robustness.py",
                    "indexing": "python benchmarks/indexing.py"}

HEADER = """# Benchmark results

Written by the scripts in `benchmarks/` (`python benchmarks/run_all.py`, or `make benchmarks`);
each script replaces only its own section. Machine-readable results: `speed.json`,
`accuracy.json`. Timings are medians of several repeats after a warm-up; runs marked *quick*
use tiny sizes to test the scripts and are not representative.
"""


def setup_paths() -> None:
    """Make ``core`` and the sibling benchmark scripts importable when run as scripts."""
    for path in (str(PROJECT), str(HERE)):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def now() -> str:
    """The current time, UTC, to the second (ISO 8601)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or no version attribute
        return None


def machine_facts() -> dict:
    """CPU, memory and software versions of the machine running a benchmark."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
    }


def machine_line(facts: dict) -> str:
    """One markdown line describing ``facts`` (from :func:`machine_facts`)."""
    load = facts.get("load_average")
    return (f"Machine: {facts['usable_cpus']} of {facts['cpu_count']} CPUs ({facts['cpu_model']}), "
            f"{facts['memory_gb']} GiB RAM, {facts['platform']}; Python {facts['python']}, "
            f"TensorFlow {facts['tensorflow']}, Keras {facts['keras']}, NumPy {facts['numpy']}"
            + (f"; load average at start {load[0]:g} / {load[1]:g} / {load[2]:g}" if load else "")
            + ".")


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory so far of this process and of its largest finished child, MB."""
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10  # bytes on macOS, KiB on Linux
    return {
        "self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1),
        "children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale, 1),
    }


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def _not_run(name: str) -> str:
    return f"## {SECTION_TITLES[name]}\n\nNot run yet: `{SECTION_COMMANDS[name]}`.\n"


def compose(sections: dict[str, str]) -> str:
    """The whole ``results.md`` from section bodies (missing ones say how to run them)."""
    parts = [HEADER]
    for name in SECTIONS:
        start, end = _markers(name)
        body = sections.get(name) or _not_run(name)
        parts.append(f"{start}\n{body.strip()}\n{end}\n")
    return "\n".join(parts)


def read_sections(text: str) -> dict[str, str]:
    """Section bodies found between markers in an existing ``results.md``."""
    found = {}
    for name in SECTIONS:
        start, end = _markers(name)
        match = re.search(re.escape(start) + r"\n(.*?)\n?" + re.escape(end), text, re.DOTALL)
        if match:
            found[name] = match.group(1)
    return found


def update_section(out_dir: str | Path, name: str, body: str) -> Path:
    """Replace section ``name`` of ``out_dir/results.md``, keeping the other sections."""
    if name not in SECTIONS:
        raise ValueError(f"unknown results section {name!r}; one of {SECTIONS}")
    path = Path(out_dir) / RESULTS_FILE
    sections = read_sections(path.read_text(encoding="utf-8")) if path.exists() else {}
    sections[name] = body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(compose(sections), encoding="utf-8")
    return path


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON (NaN written as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(data), indent=2) + "\n", encoding="utf-8")


def _finite(value):
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def rewrite_results(out_dir: Path) -> Path:
    """Rebuild ``results.md`` in full from ``speed.json``, ``accuracy.json``,
    ``selection.json``, ``robustness.json`` and ``indexing.json``."""
    import accuracy
    import indexing
    import robustness
    import selection
    import speed

    sections = {}
    for name, module in (("speed", speed), ("accuracy", accuracy), ("selection", selection),
                         ("robustness", robustness), ("indexing", indexing)):
        path = out_dir / module.JSON_FILE
        if path.exists():
            sections[name] = module.markdown(json.loads(path.read_text(encoding="utf-8")))
    path = out_dir / RESULTS_FILE
    path.write_text(compose(sections), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the scripts")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the result files")
    parser.add_argument("--models", nargs="*", default=[],
                        help="saved models to evaluate besides the bundled one")
    parser.add_argument("--only", nargs="+", metavar="GROUP",
                        help="speed groups to run (see speed.py); accuracy always runs")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild results.md from the JSON files in --out")
    args = parser.parse_args(argv)
    setup_paths()
    status = 0
    if not args.report_only:
        import accuracy
        import speed

        common = (["--quick"] if args.quick else []) + ["--out", str(args.out)]
        status |= speed.main(common + (["--only", *args.only] if args.only else []))
        status |= accuracy.main(common + (["--models", *args.models] if args.models else []))
    print(f"wrote {rewrite_results(args.out)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
