"""Does the speed cost accuracy? Fine-tune the MNLI teacher under each precision/batching.

`python -m rmc.benchmarks.teacher_accuracy` trains the packaged MiniLM on the shared 9k MNLI
training subset (2 epochs, lr 5e-5, batch 32, `--seed`, default 0) once per setting and scores
dev-matched (9,815 rows) and HANS (30,000), appending one CSV row per setting as soon as
it is scored, so an interrupted run keeps what it finished. `--score DIGEST` scores a
teacher already in the store instead of training one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from rmc_core import stages
from rmc_core.config import DataConfig, ModelSpec, TrainConfig
from rmc_core.data.registry import TASKS
from rmc_core.evaluation.tables import accuracies, ood_predictions
from rmc_core.store import Ref, Store


def score(model: Ref, data_ref: Ref, store: Store, device: str) -> dict:
    """Dev-matched and HANS accuracy of one stored teacher, with how it was trained."""
    spec, data = TASKS["mnli"], stages.load_data(store, data_ref)
    stats = store.record(model, stages.TRAIN_STATS)
    cfg = TrainConfig(eval_batch_size=128, precision=stats["precision"])
    pred = stages.predict(model, data_ref, ("dev", *data.ood), cfg, store, device=device, desc=model.digest[:8])
    probs = {s: stages.split_probs(store, pred, s) for s in ("dev", *data.ood)}
    acc = accuracies(probs, data, spec)
    hans, gold = ood_predictions(probs["hans"], spec, "hans"), data.ood["hans"]["label"].to_numpy()
    return {"precision": stats["precision"], "batching": stats["batching"], "steps": stats["steps"],
            "train_seconds": stats["seconds"], "examples_per_s": stats["examples_per_s"], "dev_matched": acc["dev"],
            "hans": acc["hans"], "hans_entailed": float((hans[gold == 0] == 0).mean()),
            "hans_non_entailed": float((hans[gold == 1] == 1).mean()), "model": model.digest}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--settings", nargs="*", default=["bf16:auto", "fp32:auto", "fp32:random"],
                        help="PRECISION:BATCHING pairs to train, e.g. bf16:auto fp32:random")
    parser.add_argument("--score", nargs="*", default=[], metavar="DIGEST", help="stored teachers to score, untrained")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0, help="training seed (head initialisation, batch order, dropout)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("rmc-runs/speed/teacher_accuracy.csv"))
    args = parser.parse_args(argv)

    store = Store(args.store)
    data_ref = stages.prepare_data("mnli", DataConfig(data_root=args.data_root), store)
    models = [Ref(kind="model", digest=d) for d in args.score]
    if args.settings:
        base = stages.prepare_base(ModelSpec(), data_ref, args.seed, store)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for setting in [*args.settings, *models]:
        seed = args.seed if isinstance(setting, str) else None
        if isinstance(setting, str):
            precision, batching = setting.split(":")
            cfg = TrainConfig(epochs=args.epochs, lr=5e-5, batch_size=32, precision=precision, batching=batching,
                              seed=args.seed)
            setting = stages.train(base, data_ref, cfg, store, device=args.device, desc=f"teacher {precision}:{batching}")
        row = pd.DataFrame([{"seed": seed, **score(setting, data_ref, store, args.device)}])
        row.to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
        print(row.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
