"""What a compressed model saves when it is used: size on disk and CPU inference speed.

Unstructured sparsity leaves every matrix its full shape, so an IMP student is as large
and as slow as its teacher unless a sparse format or kernel exploits the zeros; heads and
neurons removed, or layers dropped, make the matrices themselves smaller. This table
measures every kind the same way: the same inputs, one process, one thread count, fp32,
and the median of repeated rounds in which every model runs in turn. torch and the models
are imported where the measuring is: the run config imports this registration.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from rmc_core.evaluation.registry import Column, EvaluationSpec, Measured, register
from rmc_core.evaluation.statistics import median_interval
from rmc_core.schema import Frozen, Int

WEIGHTS = "model.safetensors"


class InferenceCostConfig(Frozen):
    """The size and CPU-speed table measured once every model of a run is trained
    (rmc_core/evaluation/inference_cost.py): on the first `rows` dev rows, the median of `repeats`
    rounds in which every model runs in turn."""

    rows: Int = Field(64, ge=1, description="dev rows each model predicts per round")
    batch_size: Int = Field(32, ge=1, le=65536, description="rows per batch for the batched throughput")
    repeats: Int = Field(9, ge=1, description="rounds; speed-up intervals need at least 6")


def size_figures(model: torch.nn.Module, model_dir: Path) -> dict[str, float]:
    """Parameters, non-zero parameters, and the weights file's size raw and deflated (the
    zeros of an unstructured-sparse model only shrink a compressed copy). An int8 model's
    int8 layers count as parameters; its file holds their weights at one byte each."""
    import torch

    from rmc_core.quantization import INT8_WEIGHTS, int8_layer_tensors, is_int8

    tensors = [*model.parameters(), *int8_layer_tensors(model)]
    params = sum(t.numel() for t in tensors)
    nonzero = sum(int(torch.count_nonzero(t)) for t in tensors)
    raw = (model_dir / (INT8_WEIGHTS if is_int8(model_dir) else WEIGHTS)).read_bytes()
    return {"params": params, "nonzero_params": nonzero, "weights_mb": len(raw) / 2**20,
            "weights_deflated_mb": len(zlib.compress(raw, 6)) / 2**20}


@dataclass
class Timed:
    """One model ready to time: its inputs one row at a time and in batches (`model` is
    called on each input's items: a torch module, or an ONNX Runtime session's wrapper)."""

    model: Callable[..., object]
    singles: list[dict]
    batches: list[dict]

    def pass_seconds(self, inputs: list[dict]) -> float:
        start = time.perf_counter()
        for x in inputs:
            self.model(**x)
        return time.perf_counter() - start


def prepared(model_dir: Path, rows: pd.DataFrame, max_length: int, batch_size: int) -> Timed:
    from transformers import DataCollatorWithPadding

    from rmc_core.models import load_model
    from rmc_core.training.predict import encode_pairs

    model, tokenizer = load_model(model_dir)
    encoded = encode_pairs(rows, tokenizer, max_length)
    collate = DataCollatorWithPadding(tokenizer)
    return Timed(model.float().eval(), [collate([r]) for r in encoded],
                 [collate(encoded[i : i + batch_size]) for i in range(0, len(encoded), batch_size)])


def timed_rounds(models: dict[str, Timed], repeats: int) -> dict[str, np.ndarray]:
    """Seconds per pass over all rows, (repeats, 2): batch 1 and batched, in `repeats`
    rounds that each time every model once, in turn: drift in the machine's speed (clock,
    caches, other load) then lands on every model alike instead of on whichever was
    measured first, and each round pairs the models under the same conditions."""
    import torch

    with torch.inference_mode():
        for timed in models.values():
            timed.pass_seconds(timed.singles[:4] + timed.batches[:1])
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
        for _ in range(repeats):
            for name, timed in models.items():
                rounds[name].append((timed.pass_seconds(timed.singles), timed.pass_seconds(timed.batches)))
    return {name: np.array(r) for name, r in rounds.items()}


def speed_figures(models: dict[str, Timed], repeats: int, references: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Median latency per row at batch 1 (ms) and rows per second in batches; for each
    reference model among them (column suffix -> its name), each model's speed-up over it
    (`speedups`), from the same rounds."""
    return figures_from_rounds(timed_rounds(models, repeats), models, references)


def figures_from_rounds(rounds: dict[str, np.ndarray], models: dict[str, Timed],
                        references: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """`speed_figures` from rounds already timed (`timed_rounds`), for callers that also keep them."""
    import torch

    figures = {}
    for name, timed in models.items():
        seconds = np.median(rounds[name], axis=0)
        figures[name] = {"latency_b1_ms": 1000 * seconds[0] / len(timed.singles),
                         "throughput_rows_s": len(timed.singles) / seconds[1], "threads": torch.get_num_threads()}
        for suffix, reference in (references or {}).items():
            if reference in rounds:
                figures[name] |= speedups(rounds, name, reference, suffix)
    return figures


def speedups(rounds: dict[str, np.ndarray], name: str, reference: str, suffix: str = "") -> dict[str, float]:
    """`name`'s speed-up over `reference` at batch 1 and batched: the median of the
    per-round ratios with its distribution-free interval (`statistics.median_interval`;
    nan bounds under 6 rounds). A speed-up is resolved when its interval excludes 1."""
    out = {}
    for column, key in enumerate(("speedup_b1", "speedup_batched")):
        ratio = median_interval(rounds[reference][:, column] / rounds[name][:, column])
        out |= {f"{key}{suffix}": ratio.estimate, f"{key}{suffix}_low": ratio.low, f"{key}{suffix}_high": ratio.high}
    return out


def inference_table(models: dict[str, Path], rows: pd.DataFrame, max_length: int, batch_size: int = 32,
                    repeats: int = 9, reference: str = "teacher") -> pd.DataFrame:
    """One row per model: its size, and its speed timed in this process alongside the
    others (speed-ups over `reference` when it is one of them)."""
    timed = {name: prepared(path, rows, max_length, batch_size) for name, path in models.items()}
    speed = speed_figures(timed, repeats, {"": reference})
    return pd.DataFrame([{"model": name, **size_figures(timed[name].model, path), **speed[name], "batch_size": batch_size}
                         for name, path in models.items()])


def _measure(m: Measured) -> dict[str, pd.DataFrame]:
    """The `inference` table on the first `settings.rows` dev rows."""
    rows = m.data.dev.head(m.settings.rows)
    return {"inference": inference_table(m.models, rows, m.max_length, m.settings.batch_size, m.settings.repeats)}


INFERENCE_COST = register(EvaluationSpec(
    name="inference",
    summary="size on disk and CPU latency, throughput and speed-up over the teacher, timed together after training",
    columns=lambda data: [Column("nonzero_params", "lower"), Column("weights_mb", "lower"), Column("latency_b1_ms", "lower"),
                          Column("throughput_rows_s", "higher"), Column("speedup_b1", "higher"),
                          Column("speedup_batched", "higher")],
    needs=("models",),
    measure=_measure,
    settings=InferenceCostConfig,
    section="inference",
    # Timing every model alone, in repeated rounds, is a third of a minute to minutes of a run
    # that is about accuracy; and speed is only comparable within one quiet process, which a
    # busy run is not: asked for by name (evaluations: [..., inference]) or measured apart
    # (python -m benchmarks.inference).
    by_default=False,
))
