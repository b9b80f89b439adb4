"""scripts/reproduce_default_model.sh: every command is one the CLI accepts, every stage starts
from a model and datasets made earlier in the script, and the stage it bundles is the one whose
settings the bundled model records."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import subprocess

from core import cli
from tests.conftest import PROJECT

SCRIPT = PROJECT / "scripts" / "reproduce_default_model.sh"
BUNDLED = PROJECT / "models" / "default" / "metadata.json"


@functools.cache
def _commands() -> list[list[str]]:
    """The script's commands as argument lists: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", SCRIPT.read_text())
    text = re.sub(r"<<'PY'\n.*?\nPY\n", "\n", text, flags=re.S)  # the inline Python snippet
    return [words for line in text.splitlines()
            if (words := shlex.split(line, comments=True))]


def _selection_parser():
    spec = importlib.util.spec_from_file_location("selection", PROJECT / "benchmarks" / "selection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parser()


@functools.cache
def _steps():
    """(kind, parsed arguments) per python command: core subcommands and selection runs."""
    core_parser, selection_parser = cli.parser(), _selection_parser()
    steps = []
    for words in _commands():
        if words[0] != "python":
            continue
        if words[1:3] == ["-m", "core"]:
            steps.append(("core", core_parser.parse_args(words[3:])))
        elif words[1] == "benchmarks/selection.py":
            steps.append(("selection", selection_parser.parse_args(words[2:])))
    return steps


def test_the_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_command_is_one_the_cli_accepts():
    steps = _steps()
    trained = [args for kind, args in steps if kind == "core" and args.command == "train"]
    assert len(trained) >= 24
    for args in trained:
        config = cli.training_config(args)  # JSON options parse, ranges name real effects
        assert config.name == args.name
    assert any(kind == "selection" for kind, _ in steps)


def test_each_step_uses_only_what_earlier_steps_made():
    made_datasets = {"default"}  # the bundled dataset, in the repository
    made_models: set[str] = set()
    for kind, args in _steps():
        if kind == "selection":
            assert set(args.models) <= made_models, args.models
            assert set(args.datasets) <= made_datasets, args.datasets
        elif args.command == "generate":
            assert args.append == (args.name in made_datasets), args.name
            made_datasets.add(args.name)
        elif args.command == "train":
            assert set(args.dataset) <= made_datasets, (args.name, args.dataset)
            assert args.init_from is None or args.init_from in made_models, args.name
            assert args.name not in made_models, f"{args.name} trained twice"
            made_models.add(args.name)


def test_the_bundled_stage_is_the_one_the_bundled_model_records():
    copied = [words for words in _commands() if words[:2] == ["cp", "-r"]]
    assert len(copied) == 1 and copied[0][3] == "models/default"
    stage = copied[0][2].rsplit("/", 1)[-1]
    recorded = json.loads(BUNDLED.read_text())
    train = [args for kind, args in _steps()
             if kind == "core" and args.command == "train" and args.name == stage]
    assert len(train) == 1, f"no train command for {stage}"
    config = cli.training_config(train[0]).to_dict()
    settings = recorded["hyperparameters"]
    assert settings["name"] == stage
    for key, value in config.items():
        if key == "hyperparameters":  # the recorded ones add the starting model's architecture
            assert value.items() <= settings[key].items()
        else:
            assert settings[key] == json.loads(json.dumps(value)), key
    assert recorded["dataset"]["parts"] == train[0].dataset
