"""Sparse progressive distillation (SPD, Huang et al. 2021).

Pruning while fine-tuning overfits, the paper argues; SPD prunes copies instead. Every layer
of the fine-tuned teacher gets a successor, a copy of itself (1:1, so all compression is
sparsity), and the successors replace their layers progressively while they are pruned and
distilled layer by layer:

- stage 1: magnitude pruning of the successors' Q, K, V, attention output and FFN weights on
  a cubic schedule (`pruning_events` updates, target reached at the stage's end) while each
  layer runs its successor with probability `replace_rate` (a draw per layer and step);
- stage 2: the rate rises linearly to 1;
- stage 3: the all-sparse model fine-tunes (every layer its successor).

Each stage has its own learning-rate schedule (linear warm-up over `warmup` of the stage,
then linear decay to zero at its end). Only the successors train. The loss is the run's
method loss (soft cross-entropy on the logits for Distil; RMC's smoothed targets in its
place for RMC, so the two combine) plus, weighted by `layerwise_weight`, SPD's layer-wise
terms against the frozen teacher (the same model with every layer its own): the MSE of
the attention scores (QK^T / sqrt(d), before the softmax) of every layer, and the MSE of the
hidden states of the embeddings and of every layer, over the rows' real tokens.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from rmc_core.compression.imp import MagnitudePruning
from rmc_core.compression.schedule import Schedule
from rmc_core.compression.spd_config import SpdConfig
from rmc_core.compression.theseus import ModuleReplacing


def boundaries(cfg: SpdConfig, total: int) -> tuple[int, int]:
    """The first step of stage 2 and of stage 3."""
    first = round(cfg.stages[0] * total)
    return first, max(first, round((cfg.stages[0] + cfg.stages[1]) * total))


def stage_of(cfg: SpdConfig, step: int, total: int) -> int:
    first, second = boundaries(cfg, total)
    return 1 if step < first else 2 if step < second else 3


def spd_rate(cfg: SpdConfig, step: int, total: int) -> float:
    """`replace_rate` in stage 1, rising linearly to 1 across stage 2, 1 in stage 3."""
    first, second = boundaries(cfg, total)
    if step < first:
        return cfg.replace_rate
    if step >= second:
        return 1.0
    return cfg.replace_rate + (1.0 - cfg.replace_rate) * (step - first) / (second - first)


def stage_lr(cfg: SpdConfig, step: int, total: int) -> float:
    """The learning-rate multiplier: each stage warms up over `warmup` of its steps, then
    decays linearly to zero at its end (transformers' linear schedule, per stage)."""
    first, second = boundaries(cfg, total)
    start, end = [(0, first), (first, second), (second, total)][stage_of(cfg, step, total) - 1]
    length, local = max(1, end - start), step - start
    warm = round(cfg.warmup * length)
    if local < warm:
        return local / warm
    return max(0.0, (length - local) / max(1, length - warm))


def attention_scores(query: torch.Tensor, key: torch.Tensor, heads: int) -> torch.Tensor:
    """QK^T / sqrt(d) per head, (batch, heads, tokens, tokens), from the query and key maps' outputs."""
    batch, tokens, width = query.shape
    d = width // heads
    q = query.view(batch, tokens, heads, d).transpose(1, 2)
    k = key.view(batch, tokens, heads, d).transpose(1, 2)
    return q @ k.transpose(-1, -2) / math.sqrt(d)


def layerwise_loss(student: Captured, teacher: Captured, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sum over layers of the attention-score MSE (over real query and key tokens, every
    head) and sum over the embeddings and every layer of the hidden-state MSE (over real
    tokens, every feature)."""
    real = attention_mask.bool()
    pairs = (real[:, None, :, None] & real[:, None, None, :]).float()
    loss = torch.zeros((), device=attention_mask.device)
    for s, t in zip(student.scores, teacher.scores):
        weights = pairs.expand_as(s)
        loss = loss + ((s - t) ** 2 * weights).sum() / weights.sum()
    tokens = real.float()[..., None]
    for s, t in zip(student.hidden, teacher.hidden):
        weights = tokens.expand_as(s)
        loss = loss + ((s - t) ** 2 * weights).sum() / weights.sum()
    return loss


@dataclass
class Captured:
    """One forward's hidden states (embeddings, then each layer) and attention scores (each layer)."""

    hidden: list[torch.Tensor] = field(default_factory=list)
    scores: list[torch.Tensor] = field(default_factory=list)


class SparseProgressive(ModuleReplacing):
    """1:1 module replacing with the successors pruned (IMP's magnitude pruning, on them
    alone) and the layer-wise distillation terms added to the loss."""

    def __init__(self, cfg: SpdConfig) -> None:
        super().__init__(None, functools.partial(spd_rate, cfg))
        self.cfg = cfg
        self.pruning = MagnitudePruning(cfg.sparsity, "per_matrix",
                                        Schedule(start=0.0, end=cfg.stages[0], events=cfg.pruning_events))
        self.captured = Captured()
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        self.queries: dict[int, torch.Tensor] = {}
        self.model: nn.Module | None = None

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        super().on_train_begin(model, total_steps)
        self.model = model
        # IMP's pruning reads `model.base_model.encoder`: shown the successors alone, it
        # prunes them and never the frozen teacher layers.
        successors = nn.Module()
        successors.encoder = nn.ModuleList([b.successor for b in self.blocks])
        view = SimpleNamespace(base_model=successors)
        self.pruning.on_train_begin(view, total_steps)
        self.handles.append(model.base_model.embeddings.register_forward_hook(lambda _m, _a, out: self._hidden(out)))
        heads = model.config.num_attention_heads
        for i, block in enumerate(self.blocks):
            self.handles.append(block.register_forward_hook(lambda _m, _a, out: self._hidden(out)))
            for layer in (*block.predecessors, block.successor):
                attention = layer.attention.self
                self.handles.append(attention.query.register_forward_hook(lambda _m, _a, out, i=i: self.queries.__setitem__(i, out)))
                self.handles.append(attention.key.register_forward_hook(
                    lambda _m, _a, out, i=i: self.captured.scores.append(attention_scores(self.queries.pop(i), out, heads))))

    def _hidden(self, out: Any) -> None:
        self.captured.hidden.append(out[0] if isinstance(out, tuple) else out)

    def on_step_begin(self, step: int) -> None:
        super().on_step_begin(step)
        self.captured = Captured()

    def on_loss(self, step: int, batch: dict[str, torch.Tensor], outputs: Any, loss: torch.Tensor) -> torch.Tensor:
        loss = super().on_loss(step, batch, outputs, loss)
        if self.cfg.layerwise_weight == 0:
            return loss
        student, teacher = self.captured, self.teacher_pass(batch)
        return loss + self.cfg.layerwise_weight * layerwise_loss(student, teacher, batch["attention_mask"])

    @torch.no_grad()
    def teacher_pass(self, batch: dict[str, torch.Tensor]) -> Captured:
        """The frozen teacher's captures for `batch`: every layer its own, dropout off."""
        chosen = [b.use_successor for b in self.blocks]
        self.captured = Captured()
        try:
            for block in self.blocks:
                block.use_successor = False
            self.model.eval()
            self.model(**batch)
            return self.captured
        finally:
            self.model.train()
            for block, use in zip(self.blocks, chosen):
                block.use_successor = use

    def on_after_backward(self, step: int) -> None:
        self.pruning.on_after_backward(step)

    def on_step_end(self, step: int) -> None:
        self.pruning.on_step_end(step)

    def on_train_end(self, model: nn.Module) -> nn.Module:
        for handle in self.handles:
            handle.remove()
        return self.pruning.on_train_end(super().on_train_end(model))

    def report(self) -> dict[str, float]:
        return super().report() | self.pruning.report()

    def lr_schedule(self, total_steps: int) -> Any:
        return functools.partial(stage_lr, self.cfg, total=total_steps)


