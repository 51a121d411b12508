"""Is each OOD set a test for these models? The premise check before any robustness claim.

A student cannot lose robustness its teacher never had: where the teacher is not above an
OOD set's majority-class rate, every comparison on that set is untestable. For each model
of finished runs or experiments (first seed), this scores every OOD set the task declares
*now* (sets added since the run are scored too, on the run's own data settings), and writes
one CSV row per model and set: its accuracy with a 95 % normal interval over rows, the
set's majority-class rate, whether the model is above it, and each student's accuracy minus
the teacher's on the same rows (paired bootstrap over rows):

    python -m rmc.benchmarks.ood_sets --experiment rmc-runs/experiments/fast-mnli-structured \
        --model teacher --model imp40-vanilla --store rmc-runs/store --csv docs/results/mnli_ood_sets.csv

A set whose rows are the run's own is scored from the run's stored predictions (what its
reports read); only the sets added since are predicted, stored as the runs' own are
(cached), on the CPU in fp32.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core import stages
from rmc_core.config import TrainConfig
from rmc_core.data.registry import TaskData, task_spec
from rmc_core.evaluation.statistics import paired_accuracy_difference, proportion_half_width
from rmc_core.evaluation.tables import ood_predictions
from rmc_core.finished import Listed, add_model_arguments, chosen_models
from rmc_core.report import to_markdown
from rmc_core.store import Ref, Store


def row_interval(correct: np.ndarray) -> tuple[float, float, float]:
    """Accuracy and its 95 % normal interval over rows (the claims view's one-seed rule)."""
    p = float(correct.mean())
    half = proportion_half_width(p, len(correct))
    return p, p - half, p + half


def probabilities(m: Listed, own: dict[str, pd.DataFrame], data: TaskData, data_ref: Ref, store: Store,
                  device: str) -> dict[str, np.ndarray]:
    """Each OOD set's class probabilities for model `m`: from its run's predictions where the
    set's rows are those the run scored (`own`: the OOD sets of the run's data), else predicted
    now (fp32, cached)."""
    out = {s: stages.split_probs(store, m.predictions, s) for s, frame in data.ood.items()
           if s in own and own[s].equals(frame)}
    if missing := tuple(s for s in data.ood if s not in out):
        predict = TrainConfig(eval_batch_size=128, precision="fp32")
        ref = stages.predict(m.model, data_ref, missing, predict, store, device=device, desc=m.name)
        out |= {s: stages.split_probs(store, ref, s) for s in missing}
    return out


def check(listed: list[Listed], store: Store, device: str = "cpu") -> pd.DataFrame:
    """One row per model and OOD set of the first listed run's task and data settings."""
    first = listed[0].config
    data_ref = stages.prepare_data(first.task, first.data, store)
    data, spec = stages.load_data(store, data_ref), task_spec(first.task)
    correct: dict[str, dict[str, np.ndarray]] = {}
    runs_ood: dict[Ref, dict[str, pd.DataFrame]] = {}  # the runs of one experiment share their data
    for m in {m.model: m for m in listed}.values():
        if m.data not in runs_ood:
            runs_ood[m.data] = stages.load_data(store, m.data).ood
        probs = probabilities(m, runs_ood[m.data], data, data_ref, store, device)
        correct[m.name] = {s: ood_predictions(probs[s], spec, s) == frame["label"].to_numpy()
                           for s, frame in data.ood.items()}
    rows = []
    for s, frame in data.ood.items():
        majority = float(np.bincount(frame["label"].to_numpy()).max() / len(frame))
        for name, by_set in correct.items():
            acc, low, high = row_interval(by_set[s])
            row = {"model": name, "ood_set": s, "rows": len(frame), "majority": majority, "accuracy": acc,
                   "low": low, "high": high, "above_majority": bool(low > majority)}
            if "teacher" in correct and name != "teacher":
                diff = paired_accuracy_difference(by_set[s][None, :].astype(float), correct["teacher"][s][None, :].astype(float))
                row |= {"minus_teacher": diff.estimate, "minus_teacher_low": diff.low, "minus_teacher_high": diff.high}
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--csv", type=Path, required=True)
    args = parser.parse_args(argv)
    listed = chosen_models(parser, args)
    table = check(listed, Store(args.store), args.device)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False)
    print(to_markdown(table))
    print(f"\nwritten to {args.csv}")


if __name__ == "__main__":
    main()
