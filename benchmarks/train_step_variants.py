"""What each attempt at a faster CPU training step gives, on the same batches.

`rmc speed` compares rmc's loop with a bare loop; this asks which change to a step pays on
this CPU. Each variant trains a fresh copy of the packaged MiniLM on the same
length-grouped batches of MNLI rows (forward, cross-entropy, backward, clipping, AdamW:
fine_tune's step without its hooks), one warm-up epoch (which also compiles, for the
compiled variant), then timed epochs, every variant once per round, rounds interleaved:

    python -m rmc.benchmarks.train_step_variants --rows 384 --rounds 3 --csv docs/results/train_step_variants.csv

Variants: torch's dropout (the step before fast dropout), fast dropout (today's default,
rmc_core/training/fast_dropout.py), fast dropout with a fused AdamW, with batches padded
to a multiple of 8 (kernel-friendly shapes), and, with `--compile`, under torch.compile
with batches padded to a multiple of 16 so that length grouping meets few shapes.
MFU as `rmc speed` counts it (rmc_core/machine_peak.py), against a matmul measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from rmc_core.config import DataConfig, ModelSpec
from rmc_core.data.registry import TASKS, load_task_data
from rmc_core.machine_peak import feature_line, matmul_params, matmul_peak, mfu
from rmc_core.models import build_base
from rmc_core.training.batching import batch_sampler
from rmc_core.training.fast_dropout import FastDropout, faster_dropout
from rmc_core.training.loop import parameter_groups
from rmc_core.training.predict import encode_pairs


@dataclass(frozen=True)
class Variant:
    name: str
    fast_dropout: bool = True
    fused: bool = False
    multiple: int | None = None
    compiled: bool = False


VARIANTS = [Variant("torch dropout (before)", fast_dropout=False), Variant("fast dropout (default)"),
            Variant("fast dropout + fused AdamW", fused=True), Variant("fast dropout + pad to x8", multiple=8)]
COMPILED = Variant("fast dropout + torch.compile, pad to x16", multiple=16, compiled=True)


def epoch_runner(base: torch.nn.Module, variant: Variant, tokenizer, rows: list[dict], labels: torch.Tensor,
                 batches: list[list[int]]) -> tuple[Callable[[], float], float, contextlib.ExitStack]:
    """A function that trains one epoch of `batches` and returns its seconds, the seconds
    its warm-up epoch took, and the context holding fast dropout on the model (the caller
    keeps it: a collected context manager would restore the dropouts)."""
    model = copy.deepcopy(base).train()
    swapped = contextlib.ExitStack()
    if variant.fast_dropout:
        swapped.enter_context(faster_dropout(model, "cpu"))
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=2e-5, **({"fused": True} if variant.fused else {}))
    forward = torch.compile(model, dynamic=False) if variant.compiled else model

    def epoch() -> float:
        assert variant.fast_dropout == any(isinstance(m, FastDropout) for m in model.modules())
        start = time.perf_counter()
        for b in batches:
            batch = tokenizer.pad([rows[i] for i in b], return_tensors="pt", pad_to_multiple_of=variant.multiple)
            F.cross_entropy(forward(**batch).logits.float(), labels[b]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    return epoch, epoch(), swapped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rows", type=int, default=384, help="MNLI training rows (the 9k subset's first)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="add the torch.compile variant (minutes of warm-up)")
    parser.add_argument("--csv", type=Path, default=Path("rmc-runs/speed/train_step_variants.csv"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    train = load_task_data("mnli", DataConfig(data_root=args.data_root, max_train=args.rows, max_dev=3, max_ood=30)).train
    base, tokenizer = build_base(ModelSpec(), TASKS["mnli"].labels, [], seed=0)
    rows = encode_pairs(train, tokenizer, 128)
    lengths = [len(r["input_ids"]) for r in rows]
    labels = torch.tensor(train["label"].to_numpy(dtype=int))
    batches = list(batch_sampler(lengths, labels.numpy(), 32, 0, "grouped")[0])
    variants = [*VARIANTS, *([COMPILED] if args.compile else [])]
    runners = {v: epoch_runner(base, v, tokenizer, rows, labels, batches) for v in variants}
    seconds: dict[Variant, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            seconds[v].append(runners[v][0]())
    peak, params, tokens = matmul_peak("fp32", "cpu"), matmul_params(base), sum(lengths)
    reference = statistics.median(seconds[variants[0]])
    table = pd.DataFrame([{
        "variant": v.name, "rows": len(train), "steps": len(batches), "warmup_s": round(runners[v][1], 1),
        "seconds_median": round(statistics.median(seconds[v]), 3), "seconds_rounds": " ".join(f"{s:.3f}" for s in seconds[v]),
        "examples_per_s": round(len(train) / statistics.median(seconds[v]), 2),
        "speedup_vs_torch_dropout": round(reference / statistics.median(seconds[v]), 3),
        "mfu": round(mfu(params, tokens, statistics.median(seconds[v]), peak, True), 3),
        "peak_gflops": round(peak / 1e9, 1), "threads": torch.get_num_threads(), "cpu": feature_line()} for v in variants])
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False)
    print(table.drop(columns=["cpu"]).to_string(index=False))
    print(f"CPU features: {feature_line()}; table in {args.csv}")


if __name__ == "__main__":
    main()
