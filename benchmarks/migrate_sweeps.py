"""One-off: committed per-seed files as experiment folders (docs/results/experiments/<name>/),
with identity columns (run, arm, grid value; role, compression, sparsity, method from the
design's own `identities`) instead of the sweep's `bias` and `run`, each sub-network's
sparsity in the premise rows, and, where the per-seed files came from one run of all their
seeds, that run's paired envelopes; then their reports, as `rmc experiment --merge` writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import declared
from rmc_core.data.registry import load_task_data
from rmc_core.experiment import read_experiment
from rmc_core.experiment_report import experiment_tables, write_experiment
from rmc_core.experiment_run import experiment_pairs
from rmc_core.pipeline import identities, subnetwork_name, task_of

RESULTS = Path("docs/results")
# name -> (per-seed table, the folder of its premise tables (prefix), the run's comparisons with envelopes or None)
SOURCES = {
    "synthetic-0.9": ("synthetic-0.9/synthetic_by_seed.csv", "synthetic-0.9/", "synthetic-0.9/comparisons.csv"),
    "synthetic-0.8": ("synthetic-0.8-seeds01234/synthetic_by_seed.csv", "synthetic-0.8-seeds01234/", None),
    "shortcut-mnli": ("shortcut-mnli-0.7-seeds012/shortcut-mnli_by_seed.csv", "shortcut-mnli-0.7-seeds012/", None),
    "cpu-medium-mnli": ("cpu_medium_results_by_seed.csv", "cpu_medium_", "cpu_medium_comparisons.csv"),
}


def per_seed(name: str, runs: dict) -> pd.DataFrame:
    table, _, _ = SOURCES[name]
    old = pd.read_csv(RESULTS / table)
    if "run" not in old.columns:  # one run, without identity columns: the design's own identities
        ids = identities(runs["main"].config)
        old = old.rename(columns={"sparsity": "achieved_sparsity"}).assign(run="design")
        for column in ("role", "compression", "sparsity", "method"):
            old.insert(1 + ["role", "compression", "sparsity", "method"].index(column), column,
                       old["model"].map(lambda m, c=column: ids[m][c]))
    frames = []
    for sweep_run, rows in old.groupby("run", sort=False):
        run = runs["main" if sweep_run == "design" else sweep_run]
        rows = rows.drop(columns=[c for c in ("bias", "run") if c in rows.columns])
        for i, (key, value) in enumerate({"run": run.label, **run.columns}.items()):
            rows.insert(i, key, value)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def premise(name: str, runs: dict, by_seed: pd.DataFrame) -> pd.DataFrame:
    _, prefix, _ = SOURCES[name]
    main = runs["main"]
    rows = []
    for label, group in by_seed[by_seed["role"] == "teacher"].groupby("run", sort=False):
        rows.append(pd.DataFrame({"seed": group["seed"], "check": "teacher_dev_hard", "who": "teacher",
                                  "value": group["dev_hard"], "run": label}))
    subnets = pd.read_csv(RESULTS / f"{prefix}subnetworks_by_seed.csv")
    if "sparsity" not in subnets.columns:
        sparsity = {subnetwork_name(s): s for s in main.config.subnetworks.sparsities}
        subnets["sparsity"] = subnets["subnetwork"].map(sparsity)
    for part in ("easy", "hard"):
        rows.append(pd.DataFrame({"seed": subnets["seed"], "check": f"subnetwork_dev_{part}", "who": subnets["subnetwork"],
                                  "sparsity": subnets["sparsity"], "value": subnets[part], "run": main.label}))
    split = pd.read_csv(RESULTS / f"{prefix}split_agreement_by_seed.csv")
    for check, column in (("split_agreement", "agreement"), ("split_agreement_chance", "chance")):
        rows.append(pd.DataFrame({"seed": split["seed"], "check": check, "who": "difficulty split", "value": split[column],
                                  "run": main.label}))
    out = pd.concat(rows, ignore_index=True)
    columns = {r.label: r.columns for r in runs.values()}
    for key in next(iter(columns.values())):
        out[key] = out["run"].map(lambda label, k=key: columns[label][k])
    return out[["seed", "check", "who", "sparsity", "value", "run", *next(iter(columns.values()))]]


def envelopes(name: str, runs: dict) -> pd.DataFrame | None:
    """The run's own paired intervals (envelope of the bootstrap over examples and seeds and
    the t-interval), for its own pairs; an older file keeps the bootstrap's bounds alone,
    which are widened to the t-interval as the claims table did."""
    _, _, source = SOURCES[name]
    if source is None:
        return None
    old = pd.read_csv(RESULTS / source)
    label = runs["main"].label
    if "bootstrap_low" not in old.columns:
        old = old.assign(bootstrap_low=old["low"], bootstrap_high=old["high"])
    return old.assign(a_run=label, b_run=label)[["a_run", "a", "b_run", "b", "metric", "low", "high", "bootstrap_low",
                                                 "bootstrap_high"]]


def migrate(name: str) -> None:
    exp = read_experiment(Path(f"experiments/{name}.yaml"))
    runs = {r.arm: r for r in exp.runs()}
    by_seed = per_seed(name, runs)
    premise_by_seed = premise(name, runs, by_seed)
    cfg = runs["main"].config
    data = load_task_data(task_of(cfg), cfg.data.model_copy(update={"data_root": Path("../shared/data")}))
    columns = pd.concat([declared(EVALUATIONS[n], data) for n in cfg.evaluations if EVALUATIONS[n].applies(data)],
                        ignore_index=True)
    metrics = [c for c in columns.loc[columns["better"] != "", "column"] if c in by_seed.columns]
    env = envelopes(name, runs)
    tables = experiment_tables(exp, by_seed, premise_by_seed, experiment_pairs(exp, exp.runs()), metrics, env)
    if env is not None:  # an old file's bootstrap bounds: the envelope is the wider of them and the t-interval
        compared = tables["comparisons"]
        hit = compared["interval"] == "envelope"
        compared.loc[hit, "low"] = np.fmin(compared.loc[hit, "low"], compared.loc[hit, "t_low"])
        compared.loc[hit, "high"] = np.fmax(compared.loc[hit, "high"], compared.loc[hit, "t_high"])
        compared["resolved"] = (compared["n_seeds"] > 1) & ((compared["low"] > 0) | (compared["high"] < 0))
        tables = experiment_tables(exp, by_seed, premise_by_seed, experiment_pairs(exp, exp.runs()), metrics, compared[hit])
    out = RESULTS / "experiments" / name
    out.mkdir(parents=True, exist_ok=True)
    write_experiment(out, exp, tables | {"columns": columns}, metrics, f"rmc experiment --merge {out}")


if __name__ == "__main__":
    for name in SOURCES:
        migrate(name)
        print("migrated", name)
