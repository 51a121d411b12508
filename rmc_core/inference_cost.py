"""What a compressed model saves when it is used: size on disk and CPU inference speed.

Unstructured sparsity leaves every matrix its full shape, so an IMP student is as large
and as slow as its teacher unless a sparse format or kernel exploits the zeros; heads and
neurons removed, or layers dropped, make the matrices themselves smaller. This table
measures every kind the same way: the same inputs, one process, one thread count, fp32,
and the median of repeated rounds in which every model runs in turn.
"""

from __future__ import annotations

import statistics
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from transformers import DataCollatorWithPadding

from rmc_core.models import load_model
from rmc_core.training import encode_pairs

WEIGHTS = "model.safetensors"


def size_figures(model: torch.nn.Module, model_dir: Path) -> dict[str, float]:
    """Parameters, non-zero parameters, and the weights file's size raw and deflated (the
    zeros of an unstructured-sparse model only shrink a compressed copy)."""
    params = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    raw = (model_dir / WEIGHTS).read_bytes()
    return {"params": params, "nonzero_params": nonzero, "weights_mb": len(raw) / 2**20,
            "weights_deflated_mb": len(zlib.compress(raw, 6)) / 2**20}


@dataclass
class Timed:
    """One model ready to time: its inputs one row at a time and in batches."""

    model: torch.nn.Module
    singles: list[dict]
    batches: list[dict]

    def pass_seconds(self, inputs: list[dict]) -> float:
        start = time.perf_counter()
        for x in inputs:
            self.model(**x)
        return time.perf_counter() - start


def prepared(model_dir: Path, rows: pd.DataFrame, max_length: int, batch_size: int) -> Timed:
    model, tokenizer = load_model(model_dir)
    encoded = encode_pairs(rows, tokenizer, max_length)
    collate = DataCollatorWithPadding(tokenizer)
    return Timed(model.float().eval(), [collate([r]) for r in encoded],
                 [collate(encoded[i : i + batch_size]) for i in range(0, len(encoded), batch_size)])


@torch.inference_mode()
def speed_figures(models: dict[str, Timed], repeats: int) -> dict[str, dict[str, float]]:
    """Median latency per row at batch 1 (ms) and rows per second in batches, over
    `repeats` rounds that each time every model once, in turn: drift in the machine's speed
    (clock, caches, other load) then lands on every model alike instead of on whichever
    was measured first."""
    for timed in models.values():
        timed.pass_seconds(timed.singles[:4] + timed.batches[:1])
    single = {name: [] for name in models}
    batched = {name: [] for name in models}
    for _ in range(repeats):
        for name, timed in models.items():
            single[name].append(timed.pass_seconds(timed.singles))
            batched[name].append(timed.pass_seconds(timed.batches))
    return {name: {"latency_b1_ms": 1000 * statistics.median(single[name]) / len(timed.singles),
                   "throughput_rows_s": len(timed.singles) / statistics.median(batched[name]),
                   "threads": torch.get_num_threads()}
            for name, timed in models.items()}


def inference_table(models: dict[str, Path], rows: pd.DataFrame, max_length: int, batch_size: int = 32,
                    repeats: int = 5) -> pd.DataFrame:
    """One row per model: its size, and its speed timed in this process alongside the others."""
    timed = {name: prepared(path, rows, max_length, batch_size) for name, path in models.items()}
    speed = speed_figures(timed, repeats)
    return pd.DataFrame([{"model": name, **size_figures(timed[name].model, path), **speed[name], "batch_size": batch_size}
                         for name, path in models.items()])
