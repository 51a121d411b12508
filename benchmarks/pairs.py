"""Paired bootstrap intervals for model pairs a run's report does not compare.

A run compares RMC with each baseline; reading its results also raises other questions
(is the Vanilla student more robust than its teacher? does distilling cost OOD accuracy?).
This answers them from the run's stored predictions, with the same statistics:

    python -m rmc.benchmarks.pairs --out rmc-runs/cpu-medium-qqp --pair imp40-vanilla:teacher \
        --pair imp40-distil:imp40-vanilla --csv docs/results/cpu_medium_qqp_other_pairs.csv

Models of several runs on the same data (say an IMP and a structured student of one
teacher) are compared by giving each run's folder: `--out RUN_A --out RUN_B`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from rmc_core.data.registry import TASKS
from rmc_core.pipeline import ModelRecord
from rmc_core.stages import correct_by_seed, load_data
from rmc_core.store import Ref, Store
from rmc_core.evaluation.uncertainty import compare, verdicts


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, action="append", required=True,
                        help="the --out folder of a finished `rmc run` (repeat for models of several runs)")
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--pair", type=pair, action="append", required=True, help="MODEL_A:MODEL_B, for A - B")
    parser.add_argument("--csv", type=Path, help="where to write the table")
    args = parser.parse_args(argv)
    table = compare_pairs(args.out, Store(args.store), args.pair)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print("\n".join(verdicts(table)))


if __name__ == "__main__":
    main()
