"""One-off: the committed per-seed files of the synthetic sweeps (synthetic 0.9 and 0.8,
shortcut-MNLI 0.7) as experiment folders, with identity columns (run, arm, grid value)
instead of the sweep's `bias` and `run` (docs/results/experiments/<name>/), and their
reports written from them as `rmc experiment --merge` writes one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rmc_core.config import DataConfig
from rmc_core.data.registry import load_task_data
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import declared
from rmc_core.experiment import read_experiment
from rmc_core.experiment_report import experiment_tables, write_experiment
from rmc_core.experiment_run import experiment_pairs
from rmc_core.pipeline import task_of

RESULTS = Path("docs/results")
SWEEPS = {"synthetic-0.9": ("synthetic-0.9", "synthetic"), "synthetic-0.8": ("synthetic-0.8-seeds01234", "synthetic"),
          "shortcut-mnli": ("shortcut-mnli-0.7-seeds012", "shortcut-mnli")}


def migrate(name: str) -> None:
    folder, prefix = SWEEPS[name]
    exp = read_experiment(Path(f"experiments/{name}.yaml"))
    runs = {r.arm: r for r in exp.runs()}
    old = pd.read_csv(RESULTS / folder / f"{prefix}_by_seed.csv")
    frames, premise = [], []
    for sweep_run, rows in old.groupby("run", sort=False):
        run = runs["main" if sweep_run == "design" else sweep_run]
        rows = rows.drop(columns=["bias", "run"])
        for i, (key, value) in enumerate({"run": run.label, **run.columns}.items()):
            rows.insert(i, key, value)
        frames.append(rows)
        teacher = rows[rows["role"] == "teacher"]
        premise.append(pd.DataFrame({"seed": teacher["seed"], "check": "teacher_dev_hard", "who": "teacher",
                                     "value": teacher["dev_hard"]}).assign(run=run.label, **run.columns))
    main = runs["main"]
    subnets = pd.read_csv(RESULTS / folder / "subnetworks_by_seed.csv")
    for part in ("easy", "hard"):
        premise.append(pd.DataFrame({"seed": subnets["seed"], "check": f"subnetwork_dev_{part}", "who": subnets["subnetwork"],
                                     "value": subnets[part]}).assign(run=main.label, **main.columns))
    split = pd.read_csv(RESULTS / folder / "split_agreement_by_seed.csv")
    for check, column in (("split_agreement", "agreement"), ("split_agreement_chance", "chance")):
        premise.append(pd.DataFrame({"seed": split["seed"], "check": check, "who": "difficulty split",
                                     "value": split[column]}).assign(run=main.label, **main.columns))
    by_seed = pd.concat(frames, ignore_index=True)
    premise_by_seed = pd.concat(premise, ignore_index=True)
    cfg = main.config
    data = load_task_data(task_of(cfg), cfg.data.model_copy(update={"data_root": Path("../shared/data")}))
    columns = pd.concat([declared(EVALUATIONS[n], data) for n in cfg.evaluations if EVALUATIONS[n].applies(data)],
                        ignore_index=True)
    metrics = [c for c in columns.loc[columns["better"] != "", "column"] if c in by_seed.columns]
    all_runs = exp.runs()
    tables = experiment_tables(all_runs, by_seed, premise_by_seed, experiment_pairs(exp, all_runs), metrics)
    out = RESULTS / "experiments" / name
    out.mkdir(parents=True, exist_ok=True)
    write_experiment(out, exp, tables | {"columns": columns}, metrics, f"rmc experiment --merge {out}")


if __name__ == "__main__":
    for name in SWEEPS:
        migrate(name)
        print("migrated", name)
