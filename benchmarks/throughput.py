"""`rmc speed`: how fast rmc trains and predicts, against a bare loop on the same batches.

One process, one run, one starting model: each setting trains a fresh copy of it on the
same rows, first through `rmc_core.training.loop.fine_tune` (seeding, schedule, clipping,
progress, IMP, objectives) and then through the bare transformers/torch loop below
(forward, cross-entropy, backward, AdamW step: nothing else), on the very batches
fine_tune's sampler draws. The ratio of the two is what rmc's loop costs over the
hardware's honest best; the settings (fp32/bf16, random/length-grouped batches, an IMP
student with its masks held at 40 %) say what each speed-up is worth. Timings are
medians over `repeats` interleaved rounds, after one warm-up step that pays one-time
kernel set-up.

MFU (model FLOP utilisation: 6 x parameters FLOPs per token trained, 2 x per token
predicted, counting the parameters a token is multiplied by, not the embedding tables it
looks up, and leaving attention's own score FLOPs out) is given against this machine's peak: on a GPU
its data sheet's dense bf16 figure; on a CPU the rate of a 1024 x 1024 matmul of the same
dtype measured in this process (rmc_core/machine_peak.py), on the real tokens (`mfu`) and on
the tokens with padding (`mfu_padded`, what the kernels actually computed). The CPU's
features (AVX2, AVX-512, native bf16, AMX, VNNI) and the path each row took (precision;
no row is compiled) head the table.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import statistics
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rmc_core.training.batching import batch_sampler
from rmc_core.compression.imp import hold
from rmc_core.config import DataConfig, ModelSpec, TrainConfig
from rmc_core.data.registry import TASKS, load_task_data
from rmc_core.objectives.losses import gold_objective
from rmc_core.models import build_base
from rmc_core.machine_peak import feature_line, matmul_params, matmul_peak, mfu
from rmc_core.training.precision import autocast, bf16_supported
from rmc_core.compression.imp import prune_to
from rmc_core.report import to_markdown
from rmc_core.training.loop import fine_tune, peak_rss_mb
from rmc_core.training.predict import encode_pairs, predict_logits

# Dense bf16 peak of the GPUs users are likely to have, for MFU (vendor data sheets, SXM parts).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12}
COLUMNS = ["stage", "loop", "student", "precision", "compiled", "batching", "batch_size", "examples", "tokens",
           "padded_tokens", "seconds", "examples_per_s", "tokens_per_s", "ratio_to_bare", "speedup_vs_fp32_random",
           "peak_flops", "mfu", "mfu_padded", "peak_rss_mb"]


def peak_flops(device: str, precision: str) -> float:
    """The FLOP rate MFU is taken against: a GPU's data-sheet bf16 peak, a CPU's measured
    matmul rate in `precision`."""
    if not device.startswith("cuda"):
        return matmul_peak(precision, device)
    name = torch.cuda.get_device_name(torch.device(device))
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), math.nan)


def padded(lengths: list[int], batches: list[list[int]]) -> int:
    """Tokens a run of these batches computes: each batch padded to its longest row."""
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def bare_train(model, tokenizer, rows: list[dict], labels: torch.Tensor, batches: list[list[int]], precision: str,
               device: str, lr: float) -> float:
    """The reference loop: the least work one fine-tuning step can do. Returns seconds."""
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    start = time.perf_counter()
    for b in batches:
        batch = tokenizer.pad([rows[i] for i in b], return_tensors="pt").to(device)
        with autocast(precision, device):
            logits = model(**batch).logits
        F.cross_entropy(logits.float(), labels[b].to(device)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - start


def measure(args: argparse.Namespace) -> pd.DataFrame:
    device = args.device
    data = load_task_data(args.task, DataConfig(data_root=args.data_root, max_train=args.rows, max_dev=args.predict_rows,
                                                max_ood=60))  # HANS: at least one row in each of its 30 subcases
    train, dev = data.train, data.dev
    spec = ModelSpec(source=args.model)
    base, tokenizer = build_base(spec, TASKS[args.task].labels, list(train.text_a) + list(train.text_b), seed=0)
    n_params = matmul_params(base)
    rows = encode_pairs(train, tokenizer, args.max_length)
    lengths = [len(r["input_ids"]) for r in rows]
    labels = torch.tensor(train.label.to_numpy(dtype=int))
    precisions = ["fp32", "bf16"] if bf16_supported(device) else ["fp32"]
    batchings = ["random", "grouped"]

    def batches_of(batching: str) -> list[list[int]]:
        sampler, _ = batch_sampler(lengths, labels.numpy(), args.batch_size, 0, batching)
        return list(itertools.islice(iter(sampler), args.steps))

    plan = {b: batches_of(b) for b in batchings}
    tokens = {b: sum(lengths[i] for batch in plan[b] for i in batch) for b in batchings}
    padded_tokens = {b: padded(lengths, plan[b]) for b in batchings}
    examples = {b: sum(len(batch) for batch in plan[b]) for b in batchings}
    epochs = args.steps / math.ceil(len(train) / args.batch_size)
    bare_train(copy.deepcopy(base), tokenizer, rows, labels, plan["random"][:1], precisions[-1], device, args.lr)

    timings: dict[tuple, list[float]] = {}
    for _ in range(args.repeats):
        for precision, batching in itertools.product(precisions, batchings):
            cfg = TrainConfig(epochs=epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                              precision=precision, batching=batching, seed=0)
            for student in ("teacher", "imp40"):
                model = copy.deepcopy(base)
                if student == "imp40":
                    prune_to(model, 0.4, "per_matrix")
                # The IMP student in its steady state: masks at 40 % and held (as for most of an IMP run),
                # so the timing shows the masks' per-step cost, not a mask update every few timed steps.
                hooks = [hold(0.4, "per_matrix")] if student == "imp40" else []
                _, stats = fine_tune(model, tokenizer, train, gold_objective(), cfg, hooks,
                                  device, desc=f"rmc {student} {precision} {batching}")
                timings.setdefault(("train", "rmc", student, precision, batching, args.batch_size), []).append(
                    (stats.seconds, peak_rss_mb()))
            seconds = bare_train(copy.deepcopy(base), tokenizer, rows, labels, plan[batching], precision, device, args.lr)
            timings.setdefault(("train", "bare", "teacher", precision, batching, args.batch_size), []).append(
                (seconds, peak_rss_mb()))
        for precision, eval_batch in itertools.product(precisions, args.eval_batch_sizes):
            start = time.perf_counter()
            predict_logits(base, tokenizer, dev, args.max_length, eval_batch, device, desc="predict", precision=precision)
            _sync(device)
            timings.setdefault(("predict", "rmc", "teacher", precision, "sorted", eval_batch), []).append(
                (time.perf_counter() - start, peak_rss_mb()))

    dev_lengths = [len(r["input_ids"]) for r in encode_pairs(dev, tokenizer, args.max_length)]
    by_length = [int(i) for i in np.argsort(dev_lengths, kind="stable")]  # predict_logits' batches
    dev_padded = {bs: padded(dev_lengths, [by_length[s:s + bs] for s in range(0, len(by_length), bs)])
                  for bs in args.eval_batch_sizes}
    peaks = {p: peak_flops(device, p) for p in precisions}
    records = []
    for (stage, loop, student, precision, batching, bs), runs in timings.items():
        seconds = statistics.median(s for s, _ in runs)
        n_ex, n_tok, n_pad = ((examples[batching], tokens[batching], padded_tokens[batching]) if stage == "train"
                              else (len(dev), sum(dev_lengths), dev_padded[bs]))
        records.append({"stage": stage, "loop": loop, "student": student, "precision": precision, "compiled": False,
                        "batching": batching, "batch_size": bs, "examples": n_ex, "tokens": n_tok,
                        "padded_tokens": n_pad, "seconds": seconds, "examples_per_s": n_ex / seconds,
                        "tokens_per_s": n_tok / seconds, "peak_flops": peaks[precision],
                        "mfu": mfu(n_params, n_tok, seconds, peaks[precision], stage == "train"),
                        "mfu_padded": mfu(n_params, n_pad, seconds, peaks[precision], stage == "train"),
                        "peak_rss_mb": max(r for _, r in runs)})
    return with_ratios(pd.DataFrame(records))


def with_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Each training row against the bare loop of its setting, and each row against rmc's fp32 random-batch one."""
    train_rows = table["stage"] == "train"
    bare = table[table["loop"] == "bare"].set_index(["precision", "batching"])["examples_per_s"]
    table["ratio_to_bare"] = [
        r.examples_per_s / bare.get((r.precision, r.batching), np.nan) if r.stage == "train" else np.nan
        for r in table.itertuples()]
    reference = table[train_rows & (table["loop"] == "rmc") & (table["precision"] == "fp32") & (table["batching"] == "random")]
    ref = reference.set_index("student")["examples_per_s"]
    first_predict = table[~train_rows & (table["precision"] == "fp32")]["examples_per_s"].iloc[0]
    table["speedup_vs_fp32_random"] = [
        r.examples_per_s / (ref.get(r.student, np.nan) if r.stage == "train" else first_predict) for r in table.itertuples()]
    return table[COLUMNS]


def run(args: argparse.Namespace) -> pd.DataFrame:
    """The `rmc speed` command (its arguments: flows/cli.py)."""
    args.device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    table = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    shown = table.drop(columns=["tokens", "padded_tokens", "seconds", "compiled", "peak_flops"])
    print(to_markdown(shown))
    peaks = ", ".join(f"{p} {f / 1e9:.1f} GFLOP/s" for p, f in table.groupby("precision")["peak_flops"].first().items())
    print(f"\n{args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}; MFU against {peaks} "
          f"({'data sheet' if args.device.startswith('cuda') else 'a 1024 x 1024 matmul measured in this process'}); "
          f"nothing compiled; table in {args.out}")
    if not args.device.startswith("cuda"):
        print(f"CPU features: {feature_line()}")
    return table
