"""One fine-tuning routine for every model in the pipeline, and batched inference.

Teacher, sub-networks, JTT's first stage and every student differ only in their
objective and in whether IMP runs alongside; keeping one loop means one place where
seeding, scheduling, padding and pruning are right.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import datasets
import numpy as np
import pandas as pd
import torch
from scipy.special import log_softmax, softmax
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
    set_seed,
)

from rmc_core.batching import batch_sampler
from rmc_core.config import PruneConfig, StructuredPruneConfig, TrainConfig
from rmc_core.losses import Objective
from rmc_core.precision import autocast, resolve_precision
from rmc_core.pruning import Pruner
from rmc_core.stopping import check, stoppable
from rmc_core.structured import StructuredPruner

datasets.disable_progress_bars()


@dataclass(frozen=True)
class TrainStats:
    steps: int
    seconds: float
    examples_per_s: float
    final_loss: float
    sparsity: dict[str, float] | None
    started_at: float
    finished_at: float
    peak_rss_mb: float = float("nan")
    precision: str = "fp32"
    batching: str = "random"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB); with concurrent
    stages in one process it bounds, not isolates, a stage's own peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tokenize(frame: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int) -> datasets.Dataset:
    """Labelled rows -> token ids (unpadded: the collator pads each batch to its own longest row)."""
    columns = {"text_a": frame["text_a"].tolist(), "text_b": frame["text_b"].tolist(), "idx": list(range(len(frame))),
               "labels": frame["label"].astype(int).tolist()}
    ds = datasets.Dataset.from_dict(columns)
    return ds.map(
        lambda b: tokenizer(b["text_a"], b["text_b"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=["text_a", "text_b"],
    )


def encode_pairs(frame: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int) -> list[dict]:
    """Each row's token ids as its own dict, unpadded, for a collator to batch in any order."""
    encoded = tokenizer(frame["text_a"].tolist(), frame["text_b"].tolist(), truncation=True, max_length=max_length)
    return [dict(zip(encoded.keys(), values)) for values in zip(*encoded.values())]


def _optimizer(model: PreTrainedModel, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW without decay on biases and LayerNorm weights (the BERT recipe)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def fine_tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: pd.DataFrame,
    objective: Objective,
    cfg: TrainConfig,
    prune: PruneConfig | StructuredPruneConfig | None = None,
    device: str = "cpu",
    desc: str = "fine-tune",
    on_progress: Callable[[float], None] | None = None,
) -> tuple[PreTrainedModel, TrainStats]:
    """Train `model` in place on `train` under `objective`; with `prune`, prune alongside
    (IMP, or heads and neurons). Returns the model to keep: `model` itself, or under
    structured pruning its physically smaller rebuild.

    The forward runs under the resolved precision's autocast; the loss is taken on fp32
    logits, so objectives see the same dtype whatever the precision. `on_progress`
    receives the finished fraction about every 5 % (a UI progress bar)."""
    set_seed(cfg.seed)
    precision = resolve_precision(cfg.precision, device)
    ds = tokenize(train, tokenizer, cfg.max_length)
    lengths = [len(x) for x in ds["input_ids"]]
    sampler, batching = batch_sampler(lengths, train["label"].to_numpy(dtype=int), cfg.batch_size, cfg.seed, cfg.batching)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=DataCollatorWithPadding(tokenizer))
    total = max(1, round(cfg.epochs * len(loader)))
    model.to(device).train()
    optimizer = _optimizer(model, cfg)
    schedule = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    pruner = (StructuredPruner if isinstance(prune, StructuredPruneConfig) else Pruner)(model, prune, total) if prune is not None else None
    if pruner:
        pruner.step(0)
    step, loss_value, start, started_at = 0, float("nan"), time.perf_counter(), time.time()
    with stoppable(), tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True) as bar:
        while step < total:
            for batch in loader:
                check(desc, step)
                idx, labels = batch.pop("idx"), batch.pop("labels").to(device)
                with autocast(precision, device):
                    logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
                loss = objective(logits.float(), labels, idx)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: the loss became {loss.item()} at step {step + 1} of {total} "
                                             f"(lr {cfg.lr}); nothing was saved")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if pruner:
                    pruner.step(step)
                loss_value = loss.item()
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                bar.update()
                if on_progress and (step % max(1, total // 20) == 0 or step == total):
                    on_progress(step / total)
                if step >= total:
                    break
    model, sparsity = pruner.finish() if pruner else (model, None)
    model.eval()
    seconds = time.perf_counter() - start
    examples = total * cfg.batch_size
    stats = TrainStats(step, seconds, examples / seconds, loss_value, sparsity, started_at, time.time(), peak_rss_mb(), precision,
                       batching)
    return model, stats


@torch.inference_mode()
def predict_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    frame: pd.DataFrame,
    max_length: int,
    batch_size: int,
    device: str = "cpu",
    desc: str = "predict",
    precision: str = "auto",
) -> np.ndarray:
    """Logits for every row, in row order; batches are formed by length to pad less."""
    precision = resolve_precision(precision, device)
    rows = encode_pairs(frame, tokenizer, max_length)
    order = np.argsort([len(r["input_ids"]) for r in rows], kind="stable")
    collate = DataCollatorWithPadding(tokenizer)
    model.to(device).eval()
    out = np.empty((len(frame), model.config.num_labels), dtype=np.float32)
    with stoppable():
        for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", dynamic_ncols=True):
            check(desc, start // batch_size)
            idx = order[start : start + batch_size]
            batch = collate([rows[i] for i in idx])
            with autocast(precision, device):
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            out[idx] = logits.float().cpu().numpy()
    return out


def probs_from_logits(logits: np.ndarray) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64), axis=1)


def per_sample_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row's gold label: the l of Eq. 1 when the model is a sub-network."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return -logp[np.arange(len(labels)), np.asarray(labels, dtype=int)]
