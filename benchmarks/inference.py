"""Size and CPU speed of the models of several finished runs, measured together.

A run measures its own models when it finishes; comparing kinds of compression (IMP,
structured, truncated) across runs needs them measured in one process, one after another,
on the same rows, with nothing else running. This does that for the models listed in each
run's summary.json (each distinct model once) and writes one CSV:

    python -m rmc.benchmarks.inference --run rmc-runs/cpu-structured-mnli --run rmc-runs/cpu-imp40-mnli \
        --csv docs/results/structured_mnli_inference.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from rmc_core.evaluation.inference_cost import inference_table
from rmc_core.report import to_markdown
from rmc_core.store import Ref, Store


def run_models(run: Path) -> tuple[dict[str, str], Ref, pd.DataFrame]:
    """A finished run's models (name -> model/<digest>), its data artifact and its results table."""
    summary = json.loads((run / "summary.json").read_text())
    first_seed = min(m["seed"] for m in summary["models"])
    models = {m["name"]: f"model/{m['model']['digest']}" for m in summary["models"] if m["seed"] == first_seed}
    return models, Ref(**summary["artifacts"]["prepare-data"]), pd.read_csv(run / "results.csv")


def measure(runs: list[Path], store: Store, rows: int, max_length: int, repeats: int) -> pd.DataFrame:
    """One row per distinct model of `runs`, with the dev accuracy its run reported; the
    rows timed are the first `rows` dev rows of the first run's data."""
    models: dict[str, tuple[str, str, float]] = {}
    data = None
    for run in runs:
        refs, data_ref, results = run_models(run)
        data = data or data_ref
        accuracy = results.set_index("model")["acc_dev"]
        for name, ref in refs.items():
            taken = any(n == name for n, _, _ in models.values())
            models.setdefault(ref, (f"{name} ({run.name})" if taken else name, run.name, float(accuracy[name])))
    dev = store.table(data, "dev").head(rows)
    paths = {name: store.path(Ref(kind="model", digest=ref.removeprefix("model/"))) for ref, (name, _, _) in models.items()}
    table = inference_table(paths, dev, max_length, repeats=repeats)
    table.insert(1, "run", [run for _, run, _ in models.values()])
    table.insert(2, "acc_dev", [acc for _, _, acc in models.values()])
    table["ref"] = list(models)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append", required=True, help="the --out folder of a finished `rmc run`")
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--rows", type=int, default=256, help="dev rows timed (the first ones)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9, help="rounds in which every model runs in turn; medians are reported")
    parser.add_argument("--csv", type=Path, required=True)
    args = parser.parse_args(argv)
    table = measure(args.run, Store(args.store), args.rows, args.max_length, args.repeats)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False)
    print(to_markdown(table.drop(columns="ref")))
    print(f"\n{torch.get_num_threads()} torch threads; written to {args.csv}")


if __name__ == "__main__":
    main()
