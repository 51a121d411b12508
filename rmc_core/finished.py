"""The models of finished runs and experiments, read from their output folders: what tools
that work on trained models (the inference benchmark, the OOD-set check) take, without
the report and without parsing model names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from rmc_core.config import RunConfig
from rmc_core.experiment import ExperimentConfig
from rmc_core.experiment_report import ARTIFACTS, DESIGN
from rmc_core.store import Ref


class Listed(NamedTuple):
    """One model of a finished run: its name there, the run, its artifacts in the store and
    the run's config (its task and data)."""

    name: str
    run: str
    model: Ref
    predictions: Ref
    data: Ref
    config: RunConfig


def as_ref(text: str) -> Ref:
    """"model/<digest>" as a Ref."""
    kind, _, digest = text.partition("/")
    return Ref(kind=kind, digest=digest)


def run_models(run: Path) -> list[Listed]:
    """A finished `rmc run`'s models (its first seed's), from its summary.json."""
    summary = json.loads((run / "summary.json").read_text())
    config = RunConfig.model_validate_json((run / "config.json").read_text())
    first_seed = min(m["seed"] for m in summary["models"])
    data = Ref(**summary["artifacts"]["prepare-data"])
    return [Listed(m["name"], run.name, Ref(**m["model"]), Ref(**m["predictions"]), data, config)
            for m in summary["models"] if m["seed"] == first_seed]


def experiment_models(folder: Path) -> list[Listed]:
    """A finished `rmc experiment`'s models (each run's first seed's), from its artifacts.csv."""
    if not (folder / f"{ARTIFACTS}.csv").is_file():
        raise FileNotFoundError(f"{folder} has no {ARTIFACTS}.csv: rerun the experiment (its stages are cached) to list its models")
    configs = {r.label: r.config for r in ExperimentConfig.model_validate_json((folder / DESIGN).read_text()).runs()}
    listed = pd.read_csv(folder / f"{ARTIFACTS}.csv")
    listed = listed[listed["seed"] == listed.groupby("run")["seed"].transform("min")]
    return [Listed(r.model, r.run, as_ref(r.model_ref), as_ref(r.predictions_ref), as_ref(r.data_ref), configs[r.run])
            for r in listed.itertuples()]


def listed_models(runs: list[Path], experiments: list[Path]) -> list[Listed]:
    """The models of every run and experiment folder named, in that order."""
    return [m for run in runs for m in run_models(run)] + [m for e in experiments for m in experiment_models(e)]


def add_model_arguments(parser: argparse.ArgumentParser, pick: bool = True) -> None:
    """A tool's --run and --experiment folders (and, with `pick`, --model names)."""
    parser.add_argument("--run", type=Path, action="append", default=[], help="the --out folder of a finished `rmc run`")
    parser.add_argument("--experiment", type=Path, action="append", default=[],
                        help="the --out folder of a finished `rmc experiment`")
    if pick:
        parser.add_argument("--model", action="append", default=[], help="only these models (default: every one)")


def chosen_models(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Listed]:
    """The models `add_model_arguments` named, or the parser's error naming what is missing."""
    if not args.run and not args.experiment:
        parser.error("name at least one --run or --experiment folder")
    listed = listed_models(args.run, args.experiment)
    wanted = getattr(args, "model", [])
    unknown = sorted(set(wanted) - {m.name for m in listed})
    if unknown:
        parser.error(f"no model {', '.join(unknown)} in those folders: {', '.join(sorted({m.name for m in listed}))}")
    return [m for m in listed if not wanted or m.name in wanted]
