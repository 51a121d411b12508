"""Paired bootstrap intervals for model pairs a run's report does not compare.

A run compares RMC with each baseline; reading its results also raises other questions
(is the Vanilla student more robust than its teacher? does distilling cost OOD accuracy?).
This answers them from the run's stored predictions, with the same statistics:

    python -m rmc.benchmarks.pairs --out rmc-runs/cpu-medium-qqp --pair imp40-vanilla:teacher \
        --pair imp40-distil:imp40-vanilla --csv docs/results/cpu_medium_qqp_other_pairs.csv

Models of several runs on the same data (say an IMP and a structured student of one
teacher) are compared by giving each run's folder: `--out RUN_A --out RUN_B`.

Columns without a paired bootstrap (loyalty, the train-dev gap) are compared over seeds
only: a t-interval over the per-seed differences (`--seed-csv`); `--models-csv` writes
every model's mean and t-interval over seeds of each scored column, across the runs (and
beside it, as .md, the same table one row per model, rounded to 3 decimals).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core.data.registry import TASKS
from rmc_core.pipeline import ModelRecord
from rmc_core.report import to_markdown
from rmc_core.stages import correct_by_seed, load_data
from rmc_core.store import Ref, Store
from rmc_core.evaluation.statistics import CONFIDENCE, seed_interval
from rmc_core.evaluation.uncertainty import compare, seed_intervals, verdicts


def pair(text: str) -> tuple[str, str]:
    a, sep, b = text.partition(":")
    if not (sep and a and b):
        raise argparse.ArgumentTypeError(f"{text!r} is not MODEL_A:MODEL_B")
    return a, b


def compare_pairs(outs: list[Path], store: Store, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """(a - b) for each pair on every metric, over the examples and the runs' seeds, read from
    the predictions `rmc run --out OUT` recorded in OUT/summary.json (a model name found in
    several runs is taken from the first)."""
    data_ref: Ref | None = None
    predictions: dict[str, dict[int, Ref]] = {}
    for out in outs:
        summary = json.loads((out / "summary.json").read_text())
        run_data = Ref(**summary["artifacts"]["prepare-data"])
        if data_ref is not None and run_data != data_ref:
            raise ValueError(f"{out} scored other data than {outs[0]}: pairs across runs need the same rows")
        data_ref = run_data
        for m in map(ModelRecord.model_validate, summary["models"]):
            predictions.setdefault(m.name, {}).setdefault(m.seed, m.predictions)
    spec, data = TASKS[store.meta(data_ref)["task"]], load_data(store, data_ref)
    seeds = sorted(predictions["teacher"])
    correct = {}
    for model in {"teacher", *(m for p in pairs for m in p)}:
        missing = [s for s in seeds if s not in predictions.get(model, {})]
        if missing:
            raise ValueError(f"no predictions of {model!r} for seed {missing[0]} in "
                             f"{', '.join(str(o / 'summary.json') for o in outs)}")
        correct[model] = correct_by_seed(store, [predictions[model][seed] for seed in seeds], data, spec)
    return compare(correct, data, pairs)


def by_seed(outs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model's per-seed results across the runs (a model found in several runs is
    taken from the first) and the runs' column declarations (direction, paired)."""
    frames, declared = [], []
    for out in outs:
        frame = pd.read_csv(out / "results_by_seed.csv")
        seen = {m for f in frames for m in f["model"]}
        frames.append(frame[~frame["model"].isin(seen)])
        declared.append(pd.read_csv(out / "columns.csv"))
    columns = pd.concat(declared).drop_duplicates("column")
    return pd.concat(frames, ignore_index=True), columns


def scored(columns: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The declared columns with a direction (not descriptions) that the table has."""
    return [c for c, better in zip(columns["column"], columns["better"].fillna("")) if better and c in table]


def seed_differences(table: pd.DataFrame, columns: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """(a - b) on each scored column that has no paired bootstrap, as a t-interval over the
    per-seed differences on the seeds both models ran (resolved when it excludes 0)."""
    declared = columns.set_index("column")
    unpaired = [c for c in scored(columns, table) if not declared.loc[c, "paired"]]
    rows = []
    for a, b in pairs:
        both = table[table["model"] == a].merge(table[table["model"] == b], on="seed", suffixes=("_a", "_b"))
        if both.empty:
            raise ValueError(f"{a!r} and {b!r} share no seed in the runs given")
        for column in unpaired:
            difference = (both[f"{column}_a"] - both[f"{column}_b"]).dropna().to_numpy()
            if len(difference) == 0:
                continue
            iv = seed_interval(difference)
            resolved = bool(iv.low > 0 or iv.high < 0)
            a_better = resolved and (iv.estimate > 0) == (declared.loc[column, "better"] == "higher")
            rows.append({"a": a, "b": b, "metric": column, "a_value": both[f"{column}_a"].mean(),
                         "b_value": both[f"{column}_b"].mean(), "difference": iv.estimate, "low": iv.low, "high": iv.high,
                         "resolved": resolved, "a_better": a_better, "n_seeds": len(difference), "confidence": CONFIDENCE})
    return pd.DataFrame(rows)


def model_table(table: pd.DataFrame, columns: pd.DataFrame) -> pd.DataFrame:
    """Each model's mean and t-interval over seeds of every scored column."""
    return seed_intervals(table, scored(columns, table)).dropna(subset=["mean"])


def model_cells(intervals: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The per-model table for a page: one row per model, each metric as "mean [low, high]"
    rounded to `digits` (the mean alone with one seed)."""
    def cell(r: pd.Series) -> str:
        mean = f"{r['mean']:.{digits}f}"
        return mean if np.isnan(r["low"]) else f"{mean} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"

    cells = intervals.assign(cell=intervals.apply(cell, axis=1))
    wide = cells.pivot(index="model", columns="metric", values="cell")
    return wide.loc[intervals["model"].unique(), intervals["metric"].unique()].reset_index().fillna("")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, action="append", required=True,
                        help="the --out folder of a finished `rmc run` (repeat for models of several runs)")
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--pair", type=pair, action="append", required=True, help="MODEL_A:MODEL_B, for A - B")
    parser.add_argument("--csv", type=Path, help="where to write the table")
    parser.add_argument("--seed-csv", type=Path, help="where to write the seed-only comparisons (loyalty, train-dev gap)")
    parser.add_argument("--models-csv", type=Path, help="where to write every model's means and t-intervals over seeds")
    args = parser.parse_args(argv)
    table = compare_pairs(args.out, Store(args.store), args.pair)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print("\n".join(verdicts(table)))
    if args.seed_csv or args.models_csv:
        results, columns = by_seed(args.out)
        if args.seed_csv:
            seed_only = seed_differences(results, columns, args.pair)
            seed_only.to_csv(args.seed_csv, index=False)
            print("\n".join(verdicts(seed_only)))
        if args.models_csv:
            intervals = model_table(results, columns)
            intervals.to_csv(args.models_csv, index=False)
            args.models_csv.with_suffix(".md").write_text(to_markdown(model_cells(intervals)) + "\n")


if __name__ == "__main__":
    main()
