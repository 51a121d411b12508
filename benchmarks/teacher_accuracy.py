"""Does the speed cost accuracy? Fine-tune the MNLI teacher under each precision/batching/dropout.

`python -m rmc.benchmarks.teacher_accuracy` trains the packaged MiniLM on the shared 9k MNLI
training subset (2 epochs, lr 5e-5, batch 32, `--seed`, default 0) once per setting and scores
dev-matched (9,815 rows) and HANS (30,000; `--dev-only` skips it), appending one CSV row per
setting as soon as it is scored, so an interrupted run keeps what it finished. A setting is
PRECISION:BATCHING[:DROPOUT] (dropout fast, the default, or torch). Each setting after the
first is compared with the first on the same dev rows: the paired accuracy difference with
its 95 % bootstrap interval over rows. `--score DIGEST` scores a teacher already in the
store instead of training one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core import stages
from rmc_core.config import DataConfig, ModelSpec, TrainConfig
from rmc_core.data.registry import TASKS
from rmc_core.evaluation.statistics import paired_accuracy_difference
from rmc_core.evaluation.tables import accuracies, ood_predictions
from rmc_core.store import Ref, Store


def score(model: Ref, data_ref: Ref, store: Store, device: str, ood: bool = True) -> tuple[dict, np.ndarray]:
    """Dev-matched (and HANS) accuracy of one stored teacher, with how it was trained, and
    which dev rows it got right (for paired comparisons)."""
    spec, data = TASKS["mnli"], stages.load_data(store, data_ref)
    stats = store.record(model, stages.TRAIN_STATS)
    splits = ("dev", *data.ood) if ood else ("dev",)
    cfg = TrainConfig(eval_batch_size=128, precision=stats["precision"])
    pred = stages.predict(model, data_ref, splits, cfg, store, device=device, desc=model.digest[:8])
    probs = {s: stages.split_probs(store, pred, s) for s in splits}
    correct = (probs["dev"].argmax(axis=1) == data.dev["label"].to_numpy()).astype(float)
    row = {"precision": stats["precision"], "batching": stats["batching"], "steps": stats["steps"],
           "train_seconds": stats["seconds"], "examples_per_s": stats["examples_per_s"], "dev_matched": correct.mean()}
    if ood:
        acc = accuracies(probs, data, spec)
        hans, gold = ood_predictions(probs["hans"], spec, "hans"), data.ood["hans"]["label"].to_numpy()
        row |= {"hans": acc["hans"], "hans_entailed": float((hans[gold == 0] == 0).mean()),
                "hans_non_entailed": float((hans[gold == 1] == 1).mean())}
    return row | {"model": model.digest}, correct


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--settings", nargs="*", default=["bf16:auto", "fp32:auto", "fp32:random"],
                        help="PRECISION:BATCHING[:DROPOUT] settings to train, e.g. bf16:auto fp32:random fp32:auto:torch")
    parser.add_argument("--score", nargs="*", default=[], metavar="DIGEST", help="stored teachers to score, untrained")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0, help="training seed (head initialisation, batch order, dropout)")
    parser.add_argument("--max-train", type=int, default=None, help="train on this many of the 9k rows (default: all)")
    parser.add_argument("--dev-only", action="store_true", help="score dev-matched only (HANS's 30,000 rows take minutes)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("rmc-runs/speed/teacher_accuracy.csv"))
    args = parser.parse_args(argv)

    store = Store(args.store)
    data_ref = stages.prepare_data("mnli", DataConfig(data_root=args.data_root, max_train=args.max_train), store)
    models = [Ref(kind="model", digest=d) for d in args.score]
    if args.settings:
        base = stages.prepare_base(ModelSpec(), data_ref, args.seed, store)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    first: np.ndarray | None = None
    for setting in [*args.settings, *models]:
        seed = dropout = None  # a stored teacher's: not known here
        if isinstance(setting, str):
            seed = args.seed
            precision, batching, *rest = setting.split(":")
            dropout = rest[0] if rest else "fast"
            cfg = TrainConfig(epochs=args.epochs, lr=5e-5, batch_size=32, precision=precision, batching=batching,
                              dropout=dropout, seed=args.seed)
            setting = stages.train(base, data_ref, cfg, store, device=args.device, desc=f"teacher {setting}")
        figures, correct = score(setting, data_ref, store, args.device, ood=not args.dev_only)
        first = correct if first is None else first
        diff = paired_accuracy_difference(correct[None, :], first[None, :])  # the first setting: 0 [0, 0]
        frame = pd.DataFrame([{"seed": seed, "dropout": dropout, **figures, "dev_minus_first": diff.estimate,
                               "dev_minus_first_low": diff.low, "dev_minus_first_high": diff.high}])
        frame.to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
        print(frame.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
