"""The adversarial attack on the models of finished runs, without retraining them.

Runs made before the attack existed, or with it off, hold every trained model in the store;
this attacks each of them with the run's own prediction settings, through the same stage
and evaluation as `rmc run --set attack.examples=N` (rmc_core/evaluation/attack.py), and
compares accuracy under attack with the same paired statistics:

    python -m rmc.benchmarks.attack_runs --out rmc-runs/synthetic-sweep-controls/run-0.9 \
        --config rmc-runs/synthetic-sweep-controls/synthetic_config_0.9.json --examples 200 \
        --csv-dir docs/results/attack-synthetic-0.9

Models of several runs on the same data (one teacher, students of several compressions)
are attacked together by giving each run's folder: `--out RUN_A --out RUN_B` (a model
name found in several runs is taken from the first; the first run's config is used).

Pairs: RMC against each baseline, and each student against the teacher. Each model's
attack is an artifact in the store, listed with the model it attacked in
CSV_DIR/attack_runs.json (provenance, and how a rerun finds it: an interrupted run resumes).
Writes attack_results_by_seed.csv, attack_results_interval.csv, attack_comparisons.csv,
attack_costs.csv (seconds per 100 rows per model) and attack_examples.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core import stages
from rmc_core.config import AttackConfig, RunConfig, TrainConfig
from rmc_core.data.registry import TASKS
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import CORRECT, Inputs
from rmc_core.evaluation.uncertainty import compare, seed_intervals, verdicts
from rmc_core.overrides import load_config
from rmc_core.pipeline import ModelRecord, resolve_precisions
from rmc_core.store import Ref, Store

ATTACK = EVALUATIONS["attack"]
INDEX = "attack_runs.json"


def predict_config(cfg: RunConfig, model: ModelRecord) -> TrainConfig:
    """How the run predicted with this model: the teacher's or the students' settings,
    fp32 on the CPU for int8 models (as the run's own int8 predictions)."""
    if model.role == "teacher":
        return cfg.teacher_train
    if "int8" in model.compression:
        return cfg.student.train.model_copy(update={"precision": "fp32"})
    return cfg.student.train


def attack_models(models: list[ModelRecord], cfg: RunConfig, data_ref: Ref, settings: AttackConfig, store: Store,
                  index_path: Path) -> tuple[dict[tuple[str, int], Ref], pd.DataFrame]:
    """Each model's attack artifact, computed once: the index maps (model digest, settings,
    prediction settings) to the artifact, so a rerun skips what is done."""
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    refs, costs = {}, []
    for m in models:
        predict = predict_config(cfg, m)
        key = json.dumps([m.model.digest, settings.model_dump(mode="json"), predict.model_dump(mode="json")])
        if key in index and store.exists(Ref(**index[key]["ref"])):
            refs[m.name, m.seed] = Ref(**index[key]["ref"])
            costs.append({"model": m.name, "seed": m.seed, "seconds": index[key]["seconds"]})
            continue
        start = time.perf_counter()
        ref = stages.query_model("attack", m.model, data_ref, cfg.task, settings, predict, store,
                                 device="cpu", desc=f"{m.name}-s{m.seed}")
        seconds = time.perf_counter() - start
        index[key] = {"ref": ref.model_dump(mode="json"), "seconds": seconds}
        index_path.write_text(json.dumps(index, indent=1))
        refs[m.name, m.seed] = ref
        costs.append({"model": m.name, "seed": m.seed, "seconds": seconds})
    cost = pd.DataFrame(costs)
    cost["seconds_per_100_rows"] = 100 * cost["seconds"] / settings.examples
    return refs, cost


def pairs_of(models: list[ModelRecord]) -> list[tuple[str, str]]:
    """RMC against each other student of the same compression, and each student against the teacher."""
    students = {m.name: (m.compression, m.sparsity, m.method) for m in models if m.role == "student"}
    against = [(r, n) for r, (kind, sparsity, method) in students.items() if method == "rmc"
               for n, other in students.items() if n != r and other[:2] == (kind, sparsity)]
    return against + [(n, "teacher") for n in students]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, action="append", required=True,
                        help="the --out folder of a finished `rmc run` (repeat for models of several runs on the same data)")
    parser.add_argument("--config", type=Path, required=True, help="the (first) run's config (JSON)")
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--examples", type=int, default=200, help="dev rows attacked per model")
    parser.add_argument("--set", action="append", default=[], help="another attack setting, e.g. max_changed=0.2")
    parser.add_argument("--models", nargs="*", help="only these models (default: every model of the run)")
    parser.add_argument("--csv-dir", type=Path, required=True, help="where the tables and attack_examples.md go")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    cfg = resolve_precisions(load_config(args.config, [f"attack.examples={args.examples}",
                                                       *(f"attack.{s}" for s in args.set)]), "cpu")
    settings = cfg.attack
    store = Store(args.store)
    data_ref, found = None, {}
    for out in args.out:
        summary = json.loads((out / "summary.json").read_text())
        run_data = Ref(**summary["artifacts"]["prepare-data"])
        if data_ref is not None and run_data != data_ref:
            parser.error(f"{out} scored other data than {args.out[0]}: models are compared on the same rows")
        data_ref = run_data
        for m in map(ModelRecord.model_validate, summary["models"]):
            found.setdefault((m.name, m.seed), m)
    models = [m for m in found.values() if m.role != "subnetwork" and (not args.models or m.name in args.models)]
    args.csv_dir.mkdir(parents=True, exist_ok=True)
    refs, costs = attack_models(models, cfg, data_ref, settings, store, args.csv_dir / INDEX)

    task, data = TASKS[cfg.task], stages.load_data(store, data_ref)
    seeds = sorted({m.seed for m in models})
    names = list(dict.fromkeys(m.name for m in models))
    by_seed = []
    for seed in seeds:
        queried = {n: store.tables(refs[n, seed]) for n in names}
        inputs = Inputs(task=task, data=data, probs={}, queried=queried)
        frame = ATTACK.results(inputs)
        frame.insert(1, "seed", seed)
        by_seed.append(frame)
        if seed == seeds[0]:
            examples = ATTACK.tables(inputs)
    by_seed = pd.concat(by_seed, ignore_index=True)
    metrics = [c.name for c in ATTACK.columns(data) if c.better is not None]

    predictions = {(m.name, m.seed): m.predictions for m in models}
    correct = {}
    for n in names:
        correct[n] = stages.correct_by_seed(store, [predictions[n, seed] for seed in seeds], data, task)
        correct[n]["attack"] = np.stack([store.table(refs[n, seed], CORRECT)["attack"].to_numpy() for seed in seeds])
    comparisons = compare(correct, data, pairs_of(models), ("accuracy", "attack"))
    comparisons["seeds"] = ",".join(map(str, seeds))

    by_seed.to_csv(args.csv_dir / "attack_results_by_seed.csv", index=False)
    seed_intervals(by_seed, metrics).to_csv(args.csv_dir / "attack_results_interval.csv", index=False)
    comparisons.to_csv(args.csv_dir / "attack_comparisons.csv", index=False)
    costs.to_csv(args.csv_dir / "attack_costs.csv", index=False)
    (args.csv_dir / "attack_examples.md").write_text(ATTACK.documents(examples)["attack_examples.md"] + "\n")
    print(by_seed.groupby("model", sort=False)[metrics].mean().round(3).to_string())
    print("\n".join(verdicts(comparisons[comparisons["metric"] == "attack_accuracy"])))
    print(f"seconds per 100 rows per model: median {costs['seconds_per_100_rows'].median():.1f} "
          f"(range {costs['seconds_per_100_rows'].min():.1f}-{costs['seconds_per_100_rows'].max():.1f})")


if __name__ == "__main__":
    main()
