"""One fine-tuning routine for every model in the pipeline.

Teacher, sub-networks, JTT's first stage and every student differ only in their
objective and in the hooks that act alongside (IMP, gates); keeping one loop means one place
where seeding, scheduling, padding and clipping are right.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import pandas as pd
import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
    set_seed,
)

from rmc_core.data.texts import is_pair
from rmc_core.machine_peak import matmul_params
from rmc_core.training.batching import batch_sampler
from rmc_core.config import TrainConfig
from rmc_core.objectives.losses import Objective
from rmc_core.training.fast_dropout import faster_dropout
from rmc_core.training.precision import autocast, resolve_precision
from rmc_core.training.hooks import Hook

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
    # For MFU (rmc_core/costs.py): the tokens trained on, with and without each batch's
    # padding, and the parameters a token is multiplied by (the model as training began).
    tokens: int = 0
    padded_tokens: int = 0
    matmul_params: int = 0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB); with concurrent
    stages in one process it bounds, not isolates, a stage's own peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tokenize(frame: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int) -> datasets.Dataset:
    """Labelled rows -> token ids (unpadded: the collator pads each batch to its own longest row)."""
    texts = ["text_a", "text_b"] if is_pair(frame) else ["text_a"]
    columns = {**{c: frame[c].tolist() for c in texts}, "idx": list(range(len(frame))),
               "labels": frame["label"].astype(int).tolist()}
    ds = datasets.Dataset.from_dict(columns)
    return ds.map(
        lambda b: tokenizer(b["text_a"], b.get("text_b"), truncation=True, max_length=max_length),
        batched=True,
        remove_columns=texts,
    )


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in two AdamW groups: decay on matrices, none on biases and
    LayerNorm weights (the BERT recipe)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(model: PreTrainedModel, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW on `parameter_groups`, fused: one kernel over all parameters instead of a dozen
    passes (on a 2-core AVX2 CPU a MiniLM step 5 % faster,
    `python -m rmc.benchmarks.train_step_variants`)."""
    return torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr, fused=True)


def fine_tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: pd.DataFrame,
    objective: Objective,
    cfg: TrainConfig,
    hooks: Sequence[Hook] = (),
    device: str = "cpu",
    desc: str = "fine-tune",
) -> tuple[PreTrainedModel, TrainStats]:
    """Train `model` in place on `train` under `objective`, with `hooks` acting at the
    loop's events (pruning, gates, progress, stopping). Returns the model to keep: `model`
    itself, or the one the last hook's `on_train_end` returned (a structured rebuild).

    The forward runs under the resolved precision's autocast; the loss is taken on fp32
    logits, so objectives see the same dtype whatever the precision. On a CPU, dropout
    draws its masks the cheap way unless `cfg.dropout` says torch (`fast_dropout.py`)."""
    set_seed(cfg.seed)
    precision = resolve_precision(cfg.precision, device)
    ds = tokenize(train, tokenizer, cfg.max_length)
    lengths = [len(x) for x in ds["input_ids"]]
    sampler, batching = batch_sampler(lengths, train["label"].to_numpy(dtype=int), cfg.batch_size, cfg.seed, cfg.batching)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=DataCollatorWithPadding(tokenizer))
    total = max(1, round(cfg.epochs * len(loader)))
    model.to(device).train()
    for hook in hooks:
        hook.on_train_begin(model, total)
    optimizer = _optimizer(model, cfg)
    owned = [lam for hook in hooks if (lam := hook.lr_schedule(total)) is not None]
    schedule = (LambdaLR(optimizer, owned[0]) if owned
                else get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total))
    step, loss_value, start, started_at = 0, float("nan"), time.perf_counter(), time.time()
    tokens = padded_tokens = 0
    params = matmul_params(model)
    with contextlib.ExitStack() as running, tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True) as bar:
        for hook in hooks:
            running.enter_context(hook.running())
        if cfg.dropout == "fast":
            running.enter_context(faster_dropout(model, device))
        while step < total:
            for batch in loader:
                for hook in hooks:
                    hook.on_step_begin(step)
                idx, labels = batch.pop("idx"), batch.pop("labels").to(device)
                rows = [lengths[i] for i in idx.tolist()]  # from the sampler's lengths: no device sync
                tokens, padded_tokens = tokens + sum(rows), padded_tokens + max(rows) * len(rows)
                inputs = {k: v.to(device) for k, v in batch.items()}
                with autocast(precision, device):
                    outputs = model(**inputs)
                loss = objective(outputs.logits.float(), labels, idx)
                for hook in hooks:
                    loss = hook.on_loss(step, inputs, outputs, loss)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: the loss became {loss.item()} at step {step + 1} of {total} "
                                             f"(lr {cfg.lr}); nothing was saved")
                loss.backward()
                for hook in hooks:
                    hook.on_after_backward(step)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                for hook in hooks:
                    hook.on_step_end(step)
                loss_value = loss.item()
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                bar.update()
                if step >= total:
                    break
    for hook in hooks:
        model = hook.on_train_end(model)
    model.eval()
    report = {k: v for hook in hooks for k, v in hook.report().items()}
    seconds = time.perf_counter() - start
    examples = total * cfg.batch_size
    stats = TrainStats(step, seconds, examples / seconds, loss_value, report or None, started_at, time.time(), peak_rss_mb(),
                       precision, batching, tokens, padded_tokens, params)
    return model, stats
