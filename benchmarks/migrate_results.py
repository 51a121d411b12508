"""One-off: the per-seed files of the compression grids, QQP, structured MNLI and the attack
runs (made by the pairs and attack scripts, now experiment files) as experiment folders
(docs/results/experiments/<name>/), with identity columns from each arm's own
`identities`, and each source's paired envelopes keyed by run; then their reports, as
`rmc experiment --merge` writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core.data.registry import load_task_data
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import declared, directed_columns
from rmc_core.experiment import ArmRun, read_experiment
from rmc_core.experiment_report import experiment_tables, premise_rows, read_merged, write_experiment
from rmc_core.experiment_run import experiment_pairs
from rmc_core.pipeline import identities, task_of

RESULTS = Path("docs/results")
IDENTITY = ["role", "compression", "sparsity", "method"]
GRID = "compression-synthetic-0.9/"
SC = "compression-shortcut-mnli-seed2/"
# name -> arm -> per-seed file(s) of that arm (joined on model and seed where several)
SOURCES: dict[str, dict[str, list[str]]] = {
    "compression-synthetic-0.9": {arm: [f"{GRID}{stem}_results_by_seed.csv"] for arm, stem in (
        ("imp40", "imp40"), ("mask40", "mask40"), ("imp70", "imp70"), ("mask70", "mask70"), ("spd40", "spd40"),
        ("spd70", "spd70"), ("l3", "L3"), ("theseus3", "theseus3"), ("l6", "L6"), ("l3-lr2e-4", "L3-lr2e-4"),
        ("theseus3-lr2e-4", "theseus3-lr2e-4"))},
    "compression-shortcut-mnli": {arm: [f"{SC}{arm}_results_by_seed.csv"] for arm in (
        "knownbias", "imp40", "spd40", "imp70", "spd70", "mask40", "mask70")},
    "cpu-medium-qqp": {"main": ["cpu_medium_qqp_results.csv"]},
    "structured-mnli": {"structured": ["structured_mnli_results.csv:cpu-structured-mnli"],
                        "imp40": ["structured_mnli_results.csv:cpu-imp40-mnli"],
                        "l3": ["structured_mnli_results.csv:cpu-L3-mnli"]},
    "attack-synthetic-0.9": {"main": ["experiments/synthetic-0.9/by_seed.csv:main",
                                      "attack-synthetic-0.9/attack_results_by_seed.csv"]},
    "attack-fast-mnli": {"imp40": ["fast-mnli/results_imp40.csv", "attack-fast-mnli/attack_results_by_seed.csv"],
                         "theseus3-lr2e-4": ["fast-mnli/results_theseus3-lr2e-4.csv",
                                             "attack-fast-mnli/attack_results_by_seed.csv"],
                         "l3-lr2e-4": ["fast-mnli/results_L3-lr2e-4.csv", "attack-fast-mnli/attack_results_by_seed.csv"]},
    "attack-cpu-medium-mnli": {"main": ["attack-cpu-medium-mnli/run_results.csv"]},
}
# name -> (paired-interval files, the arms a model name was taken from first, as the pairs script's --out order)
ENVELOPES: dict[str, list[tuple[str, list[str]]]] = {
    "compression-synthetic-0.9": [
        *((f"{GRID}{f}_pairs.csv", ["imp40", "mask40", "imp70", "mask70", "spd40", "spd70", "l3", "theseus3", "l6"])
          for f in ("known_bias", "mask", "spd", "upper_bound")),
        (f"{GRID}families_pairs.csv", ["l6", "imp40", "l3-lr2e-4", "theseus3-lr2e-4"])],
    "compression-shortcut-mnli": [(f"{SC}{f}_pairs.csv", ["imp40", "knownbias", "mask40", "spd40", "imp70", "mask70",
                                                          "spd70"]) for f in ("kinds", "known_bias")],
    "cpu-medium-qqp": [(f, ["main"]) for f in ("cpu_medium_qqp_comparisons.csv", "cpu_medium_qqp_other_pairs.csv")],
    "structured-mnli": [("structured_mnli_pairs.csv", ["structured", "imp40", "l3"])],
    "attack-synthetic-0.9": [("attack-synthetic-0.9/attack_comparisons.csv", ["main"])],
    "attack-fast-mnli": [("attack-fast-mnli/attack_comparisons.csv", ["imp40", "theseus3-lr2e-4", "l3-lr2e-4"])],
    "attack-cpu-medium-mnli": [("attack-cpu-medium-mnli/attack_comparisons.csv", ["main"])],
}


def read_rows(source: str) -> pd.DataFrame:
    """One source file's per-model rows: `path[:run]` keeps the rows of one old run (or arm)."""
    path, _, run = source.partition(":")
    frame = pd.read_csv(RESULTS / path).rename(columns={"seeds": "seed"})
    if run:
        column = "arm" if "arm" in frame.columns else "run"
        frame = frame[frame[column] == run]
    frame = frame.drop(columns=[c for c in frame.columns if c in ("run", "arm", "data.synthetic_bias")])
    if "role" not in frame.columns:  # an old run summary: its `sparsity` is the achieved one
        frame = frame.rename(columns={"sparsity": "achieved_sparsity"})
    if "seed" not in frame.columns:
        frame["seed"] = 0
    return frame


def arm_rows(run: ArmRun, sources: list[str]) -> pd.DataFrame:
    """An arm's per-seed rows, its models' identities from the arm's own config (checked
    against what the old file said), the run's identity columns in front. A model a file
    lacks takes the first file's row of that name; an arm whose file has no teacher row takes
    the file's (the runs shared one teacher artifact, a cache hit)."""
    frame = read_rows(sources[0])
    if "teacher" not in set(frame["model"]):
        whole = read_rows(sources[0].partition(":")[0])
        frame = pd.concat([whole[whole["model"] == "teacher"], frame], ignore_index=True)
    for other in sources[1:]:
        extra = read_rows(other)
        extra = extra[[c for c in extra.columns if c not in frame.columns or c in ("model", "seed")]]
        frame = frame.merge(extra, on=["model", "seed"], how="left")
    ids = identities(run.config)
    frame = frame[frame["model"].isin(ids)]
    assert len(frame), (run.label, sources)
    for column in IDENTITY:
        wanted = frame["model"].map(lambda m, c=column: ids[m][c])
        if column in frame.columns and column != "sparsity":
            assert (frame[column] == wanted).all(), (run.label, column)
        frame = frame.drop(columns=[column], errors="ignore")
        frame.insert(1 + IDENTITY.index(column), column, wanted)
    frame = frame[[c for c in frame.columns if c != "seed"] + ["seed"]]
    for i, (key, value) in enumerate({"run": run.label, **run.columns}.items()):
        frame.insert(i, key, value)
    return frame.reset_index(drop=True)


def envelopes(name: str, exp, runs: list[ArmRun]) -> pd.DataFrame | None:
    """Each old paired interval keyed by the runs of its models: the experiment pair with
    those model names, from the arm the old script took each name from first."""
    pairs = experiment_pairs(exp, runs)
    frames = []
    for path, order in ENVELOPES.get(name, []):
        old = pd.read_csv(RESULTS / path)
        if "bootstrap_low" not in old.columns:  # over rows alone (one seed)
            old = old.assign(bootstrap_low=old["low"], bootstrap_high=old["high"])
        keyed = []
        for r in old.itertuples():
            found = [p for p in pairs if (p.a_model, p.b_model) == (r.a, r.b)]
            assert found, (path, r.a, r.b)
            rank = {arm: i for i, arm in enumerate(order)}
            best = min(found, key=lambda p: (rank.get(p.a_run, 99), rank.get(p.b_run, 99)))
            keyed.append((best.a_run, best.b_run))
        frames.append(old.assign(a_run=[k[0] for k in keyed], b_run=[k[1] for k in keyed]))
    if not frames:
        return None
    out = pd.concat(frames, ignore_index=True).drop_duplicates(["a_run", "a", "b_run", "b", "metric"])
    return out[["a_run", "a", "b_run", "b", "metric", "low", "high", "bootstrap_low", "bootstrap_high"]]


def columns_of(runs: list[ArmRun]) -> pd.DataFrame:
    """The declared columns of every evaluation the runs make, on each run's data."""
    frames, seen = [], set()
    for run in runs:
        cfg = run.config
        key = cfg.model_dump_json(include={"task", "data", "evaluations"})
        if key in seen:
            continue
        seen.add(key)
        data = load_task_data(task_of(cfg), cfg.data.model_copy(update={"data_root": Path("../shared/data")}))
        frames += [declared(EVALUATIONS[n], data) for n in cfg.evaluations if EVALUATIONS[n].applies(data)]
    return pd.concat(frames, ignore_index=True).drop_duplicates("column")


def migrate(name: str) -> None:
    exp = read_experiment(Path(f"experiments/{name}.yaml"))
    runs = exp.runs()
    by_seed = pd.concat([arm_rows(r, SOURCES[name][r.arm]) for r in runs], ignore_index=True)
    premise = pd.concat([premise_rows(r, {"results_by_seed": by_seed[by_seed["run"] == r.label]}) for r in runs],
                        ignore_index=True)
    columns = columns_of(runs)
    metrics = directed_columns(columns, by_seed.columns)
    env = envelopes(name, exp, runs)
    pairs = experiment_pairs(exp, runs)
    tables = experiment_tables(exp, by_seed, premise, pairs, metrics, env)
    if env is not None:  # where an old file kept the bootstrap's bounds alone, the envelope is the wider of them and the t
        compared = tables["comparisons"]
        hit = compared["interval"] == "envelope"
        compared.loc[hit, "low"] = np.fmin(compared.loc[hit, "low"], compared.loc[hit, "t_low"])
        compared.loc[hit, "high"] = np.fmax(compared.loc[hit, "high"], compared.loc[hit, "t_high"])
        tables = experiment_tables(exp, by_seed, premise, pairs, metrics, compared[hit])
    out = RESULTS / "experiments" / name
    out.mkdir(parents=True, exist_ok=True)
    write_experiment(out, exp, tables | {"columns": columns}, metrics, f"rmc experiment --merge {out}")


def retable(name: str) -> None:
    """An earlier migrated folder, its declared columns with the `share` flag they now carry,
    re-tabled as `rmc experiment --merge` does."""
    out = RESULTS / "experiments" / name
    exp, by_seed, premise, env = read_merged([out])
    columns = pd.read_csv(out / "columns.csv", keep_default_na=False)
    shares = columns_of(exp.runs()).set_index("column")["share"]
    columns["share"] = columns["column"].map(shares).fillna(False).astype(bool)
    metrics = directed_columns(columns, by_seed.columns)
    tables = experiment_tables(exp, by_seed, premise, experiment_pairs(exp, exp.runs()), metrics, env)
    write_experiment(out, exp, tables | {"columns": columns}, metrics, f"rmc experiment --merge {out}")


if __name__ == "__main__":
    for name in SOURCES:
        migrate(name)
        print("migrated", name)
    for name in ("synthetic-0.9", "synthetic-0.8", "shortcut-mnli", "cpu-medium-mnli"):
        retable(name)
        print("re-tabled", name)
