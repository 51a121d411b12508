"""Running an experiment: every run, then the comparisons between them, then the report.

`run_experiment` is the experiment's DAG written once, as `pipeline.run` is a run's: it
takes `run_arm` (how one run is made: the Prefect flow as a child flow run, or the plain
pipeline in this process) and `call` (how a stage executes), so the flow and the
in-process runner are the same experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pandas as pd

from rmc_core import stages
from rmc_core.evaluation.registry import DECLARED, directed_columns
from rmc_core.experiment import TEACHER, ArmRun, ExperimentConfig, Side, parse_comparison
from rmc_core.experiment_report import (
    ARTIFACT_COLUMNS,
    ARTIFACTS,
    Pair,
    by_seed_rows,
    experiment_tables,
    premise_rows,
    share_columns,
)
from rmc_core.objectives.methods import UPPER_BOUND
from rmc_core.pipeline import Call, comparison_pairs, direct, identities, task_of
from rmc_core.store import Ref, Store


class ArmOutcome(NamedTuple):
    """What one run left in the store: its summary report, its models (`ModelRecord`
    fields: what each is, its weights and predictions per seed) and its data artifact."""

    report: Ref
    models: list[dict[str, Any]]
    data: Ref


RunArm = Callable[[ArmRun], ArmOutcome]


def artifact_rows(runs: list[ArmRun], outcomes: dict[str, ArmOutcome]) -> pd.DataFrame:
    """Where each model of each run is in the store (`artifacts.csv`): what tools that work
    on an experiment's models (export, the inference benchmark) read instead of the report."""
    rows = []
    for r in runs:
        outcome = outcomes[r.label]
        data = Ref.model_validate(outcome.data)
        for m in outcome.models:
            model, predictions = (Ref.model_validate(m[k]) for k in ("model", "predictions"))
            rows.append({"run": r.label, "arm": r.arm, "seed": m["seed"], "model": m["name"],
                         "model_ref": f"model/{model.digest}", "predictions_ref": f"{predictions.kind}/{predictions.digest}",
                         "data_ref": f"{data.kind}/{data.digest}"})
    return pd.DataFrame(rows, columns=ARTIFACT_COLUMNS)


def model_of(run: ArmRun, side: Side) -> str | None:
    """The model a comparison side names in `run`: the teacher, or the student (or upper
    bound) that `side.model`'s method trains, its quantized copy where the side names one;
    None if the run trains none."""
    if side.model == TEACHER:
        return TEACHER
    quantized = f"+{side.quantize}" if side.quantize else ""
    return next((name for name, what in identities(run.config).items()
                 if what["method"] == side.model and what["role"] in ("student", UPPER_BOUND)
                 and what["compression"].partition("+")[1:] == quantized.partition("+")[1:]), None)


def experiment_pairs(exp: ExperimentConfig, runs: list[ArmRun]) -> list[Pair]:
    """Every comparison of the experiment: each run's own (RMC against its baselines,
    students against the teacher) and each declared one, in every run (same arm) or at
    every grid point (across arms) where both models exist."""
    pairs = [Pair(r.label, a, r.label, b) for r in runs for a, b in comparison_pairs(r.config)]
    at_point: dict[tuple, dict[str, ArmRun]] = {}
    for r in runs:
        at_point.setdefault(r.point, {})[r.arm] = r
    for text in exp.comparisons:
        a, b = parse_comparison(text)
        if a.arm is None:
            sides = [(r, r) for r in runs]
        else:
            sides = [(arms[a.arm], arms[b.arm]) for arms in at_point.values() if a.arm in arms and b.arm in arms]
        for run_a, run_b in sides:
            model_a, model_b = model_of(run_a, a), model_of(run_b, b)
            if model_a is not None and model_b is not None:
                pair = Pair(run_a.label, model_a, run_b.label, model_b, text)
                pairs = [p for p in pairs if (p.a_run, p.a_model, p.b_run, p.b_model) != (
                    pair.a_run, pair.a_model, pair.b_run, pair.b_model)] + [pair]
    return pairs


def _envelopes(exp: ExperimentConfig, runs: list[ArmRun], outcomes: dict[str, ArmOutcome], tables: dict[str, dict],
               pairs: list[Pair], store: Store, call: Call) -> tuple[pd.DataFrame, list[tuple[Any, dict]]]:
    """The runs' own comparisons (computed with their summaries) and, for declared pairs of
    models scored on the same rows, a compare stage per pair of runs. Returns the frame of
    the former and, for the latter, each stage's ref (or future) with its models' run and name by key."""
    own = [tables[r.label]["comparisons"].assign(a_run=r.label, b_run=r.label) for r in runs
           if not tables[r.label]["comparisons"].empty]
    by_runs: dict[tuple[str, str], list[Pair]] = {}
    for p in pairs:
        if p.declared and outcomes[p.a_run].data.digest == outcomes[p.b_run].data.digest:
            by_runs.setdefault((p.a_run, p.b_run), []).append(p)
    run_of = {r.label: r for r in runs}
    staged = []
    for (a_run, b_run), group in by_runs.items():
        # The stage names models by position; the caller maps them back to run and model.
        sides = list(dict.fromkeys(side for p in group for side in ((p.a_run, p.a_model), (p.b_run, p.b_model),
                                                                     (p.a_run, TEACHER))))
        key = {side: f"m{i}" for i, side in enumerate(sides)}
        preds = {key[(run, model)]: [next(m["predictions"] for m in outcomes[run].models
                                          if m["name"] == model and m["seed"] == seed) for seed in exp.seeds]
                 for run, model in sides}
        config = run_of[a_run].config
        ref = call(stages.compare_models, task_of(config), outcomes[a_run].data, preds,
                   [(key[(p.a_run, p.a_model)], key[(p.b_run, p.b_model)]) for p in group], key[(a_run, TEACHER)],
                   list(config.evaluations), store)
        staged.append((ref, {v: k for k, v in key.items()}))
    return (pd.concat(own, ignore_index=True) if own else pd.DataFrame()), staged


def _named(frame: pd.DataFrame, sides: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """A compare stage's table with each model's run and name in place of its position key."""
    if frame.empty:
        return frame
    return frame.assign(a_run=frame["a"].map(lambda k: sides[k][0]), a=frame["a"].map(lambda k: sides[k][1]),
                        b_run=frame["b"].map(lambda k: sides[k][0]), b=frame["b"].map(lambda k: sides[k][1]))


def run_experiment(exp: ExperimentConfig, store: Store, run_arm: RunArm, call: Call = direct,
                   resolve: Callable[[Any], Any] = lambda ref: ref) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Every run of `exp` (through `run_arm`), the declared comparisons' stages (through
    `call`; `resolve` turns what `call` returns into a Ref), and the report's tables.
    Returns the tables and the metrics they cover."""
    runs = exp.runs()
    outcomes = {r.label: run_arm(r) for r in runs}
    tables = {label: store.tables(o.report) for label, o in outcomes.items()}
    by_seed = pd.concat([by_seed_rows(r, tables[r.label]) for r in runs], ignore_index=True)
    premise = pd.concat([premise_rows(r, tables[r.label]) for r in runs], ignore_index=True)
    declared = pd.concat([t[DECLARED] for t in tables.values()], ignore_index=True).drop_duplicates("column")
    metrics = directed_columns(declared, by_seed.columns)
    pairs = experiment_pairs(exp, runs)
    own, staged = _envelopes(exp, runs, outcomes, tables, pairs, store, call)
    compared = [_named(store.table(resolve(ref), "comparisons"), sides) for ref, sides in staged]
    envelopes = pd.concat([own, *compared], ignore_index=True) if (len(own) or compared) else pd.DataFrame()
    report = experiment_tables(exp, by_seed, premise, pairs, metrics, envelopes, share_columns(declared))
    report["columns"] = declared
    report[ARTIFACTS] = artifact_rows(runs, outcomes)
    return report, metrics
