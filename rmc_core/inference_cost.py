"""What a compressed model saves when it is used: size on disk and CPU inference speed.

Unstructured sparsity leaves every matrix its full shape, so an IMP student is as large
and as slow as its teacher unless a sparse format or kernel exploits the zeros; heads and
neurons removed, or layers dropped, make the matrices themselves smaller. This table
measures both kinds the same way: every model on the same inputs, one after another in
one process at one thread count, each timing the median of repeated runs
(torch.utils.benchmark), in fp32.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd
import torch
from torch.utils import benchmark
from transformers import DataCollatorWithPadding

from rmc_core.models import load_model
from rmc_core.training import encode_pairs

WEIGHTS = "model.safetensors"


def size_figures(model_dir: Path) -> dict[str, float]:
    """Parameters, non-zero parameters, and the weights file's size raw and deflated (the
    zeros of an unstructured-sparse model only shrink a compressed copy)."""
    model, _ = load_model(model_dir)
    params = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    raw = (model_dir / WEIGHTS).read_bytes()
    return {"params": params, "nonzero_params": nonzero, "weights_mb": len(raw) / 2**20,
            "weights_deflated_mb": len(zlib.compress(raw, 6)) / 2**20}


@torch.inference_mode()
def speed_figures(model_dir: Path, rows: pd.DataFrame, max_length: int, batch_size: int, min_seconds: float) -> dict[str, float]:
    """Median latency of one row at a time (ms per row) and rows per second in batches of
    `batch_size`, over `rows` in their given order."""
    model, tokenizer = load_model(model_dir)
    model = model.float().eval()
    encoded = encode_pairs(rows, tokenizer, max_length)
    collate = DataCollatorWithPadding(tokenizer)
    singles = [collate([r]) for r in encoded]
    batches = [collate(encoded[i : i + batch_size]) for i in range(0, len(encoded), batch_size)]

    def run(inputs: list[dict]) -> None:
        for x in inputs:
            model(**x)

    threads = torch.get_num_threads()
    run(singles[:2])
    one = benchmark.Timer("run(singles)", globals={"run": run, "singles": singles}, num_threads=threads)
    many = benchmark.Timer("run(batches)", globals={"run": run, "batches": batches}, num_threads=threads)
    return {
        "latency_b1_ms": 1000 * one.blocked_autorange(min_run_time=min_seconds).median / len(singles),
        f"throughput_b{batch_size}_rows_s": len(encoded) / many.blocked_autorange(min_run_time=min_seconds).median,
        "threads": threads,
    }


def inference_table(models: dict[str, Path], rows: pd.DataFrame, max_length: int, batch_size: int = 32,
               min_seconds: float = 1.0) -> pd.DataFrame:
    """One row per model, measured one after another in this process."""
    return pd.DataFrame([{"model": name, **size_figures(path), **speed_figures(path, rows, max_length, batch_size, min_seconds)}
                         for name, path in models.items()])
