"""Progressive module replacing (BERT-of-Theseus, Xu et al. 2020), one of the four families
of "Beyond Preserved Accuracy".

The fine-tuned teacher's encoder is cut into `successors` blocks of consecutive layers, and
each block gets one successor layer, initialised as a copy of one of the teacher's first
`successors` layers (the reference code's choice). At every training step each block runs
its successor with probability p (a Bernoulli draw per block and step) and its own layers
otherwise, so the successors learn to stand in for their blocks inside the teacher's
context. Only the successors train. p is constant or rises linearly; in the last
`successor_only` fraction of the steps every block runs its successor (successor-only
fine-tuning). The loss is the run's method loss, so RMC's targets apply. The student kept
is the embeddings, the successors and the head: a `successors`-layer BERT.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rmc_core.compression.theseus_config import TheseusConfig
from rmc_core.training.hooks import Hook


def replace_rate(cfg: TheseusConfig, step: int, total: int) -> float:
    """p at `step` (0-based) of `total`: 1 in the successor-only tail; before it, constant,
    or rising linearly from `replace_rate` towards 1 (p = min(1, b + k t), the reference
    code's linear scheduler, with k set so that it reaches 1 where the tail starts)."""
    replacing = round((1 - cfg.successor_only) * total)
    if step >= replacing:
        return 1.0
    if cfg.schedule == "constant":
        return cfg.replace_rate
    return min(1.0, cfg.replace_rate + (1 - cfg.replace_rate) * step / replacing)


class Block(nn.Module):
    """A block of the teacher's layers and its successor; `use_successor` picks one."""

    def __init__(self, predecessors: list[nn.Module], successor: nn.Module) -> None:
        super().__init__()
        self.predecessors = nn.ModuleList(predecessors)
        self.successor = successor
        self.use_successor = True

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.use_successor:
            return self.successor(hidden_states, *args, **kwargs)
        for layer in self.predecessors:
            hidden_states = layer(hidden_states, *args, **kwargs)
        return hidden_states


class ModuleReplacing(Hook):
    """Puts the blocks in at the start, draws each block's choice every step at the rate
    `rate(step, total_steps)`, and keeps the successors alone at the end. `successors`
    None: one per teacher layer (the 1:1 replacing of sparse progressive distillation)."""

    def __init__(self, successors: int | None, rate: Callable[[int, int], float]) -> None:
        self.successors, self.rate = successors, rate
        self.blocks: list[Block] = []
        self.total, self.draws, self.successor_draws = 1, 0, 0

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        layers = list(model.base_model.encoder.layer)
        count = self.successors or len(layers)
        size = len(layers) // count
        for p in model.parameters():
            p.requires_grad_(False)
        successors = [copy.deepcopy(layers[i]) for i in range(count)]
        for successor in successors:
            successor.requires_grad_(True)
        self.blocks = [Block(layers[i * size:(i + 1) * size], s) for i, s in enumerate(successors)]
        model.base_model.encoder.layer = nn.ModuleList(self.blocks)
        self.total = total_steps

    def on_step_begin(self, step: int) -> None:
        p = self.rate(step, self.total)
        for block in self.blocks:
            block.use_successor = bool(torch.rand(()) < p)
            self.draws += 1
            self.successor_draws += block.use_successor

    def on_loss(self, step: int, batch: dict[str, torch.Tensor], outputs: Any, loss: torch.Tensor) -> torch.Tensor:
        """A step in which every block drew its own layers has nothing to train: a zero
        term on the successors keeps the backward defined (their gradients are zero)."""
        if any(b.use_successor for b in self.blocks):
            return loss
        return loss + 0.0 * sum(p.sum() for b in self.blocks for p in b.successor.parameters())

    def on_train_end(self, model: nn.Module) -> nn.Module:
        model.base_model.encoder.layer = nn.ModuleList([b.successor for b in self.blocks])
        model.config.num_hidden_layers = len(self.blocks)
        model.requires_grad_(True)
        return model

    def report(self) -> dict[str, float]:
        return {"successor_layers": float(len(self.blocks)), "successor_share": self.successor_draws / max(1, self.draws)}


