"""Iterative magnitude pruning (IMP) of an encoder's linear weights during fine-tuning.

Only the encoder's linear layers are pruned (Q, K, V, attention output, intermediate and
output of every layer); embeddings, pooler and classifier stay dense, as in the paper.
Masks are torch.nn.utils.prune masks: the effective weight is `weight_orig * mask`,
recomputed before every forward, so a pruned weight is exactly zero whatever the optimizer
does to its shadow copy. `finalize` folds the masks in for saving.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from rmc_core.config import PruneConfig


def prunable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The encoder layers' linear maps, by qualified name."""
    encoder = model.base_model.encoder
    return {
        f"encoder.{name}": module
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Linear)
    }


def cubic_ramp(step: int, total_steps: int, start: float, end: float, events: int) -> float:
    """Zhu & Gupta's cubic ramp from 0 to 1, quantised to `events` updates.

    0 before `start`, 1 after `end` (fractions of the training steps), and
    1 - (1 - progress)^3 on the event grid in between: pruning early, while weights are
    still plastic, and slowly near the target. Structured pruning follows the same ramp.
    """
    begin, finish = start * total_steps, end * total_steps
    if step < begin:
        return 0.0
    progress = 1.0 if finish <= begin else min(1.0, (step - begin) / (finish - begin))
    event = min(events, int(progress * events + 1e-9))
    return 1.0 - (1.0 - event / events) ** 3


def cubic_sparsity(step: int, total_steps: int, cfg: PruneConfig) -> float:
    """The sparsity IMP has reached at `step`: the target scaled by the cubic ramp."""
    return cfg.sparsity * cubic_ramp(step, total_steps, cfg.start, cfg.end, cfg.events)


def _pruned_count(module: nn.Linear) -> int:
    mask = getattr(module, "weight_mask", None)
    return 0 if mask is None else int((mask == 0).sum())


def current_weight(module: nn.Linear) -> torch.Tensor:
    """The weight as it is now. For a pruned module `module.weight` is what the forward
    hook computed before the last forward, one optimizer step old; ranking by it would
    prune by stale magnitudes."""
    if prune.is_pruned(module):
        return (module.weight_orig * module.weight_mask).detach()
    return module.weight.detach()


def prune_to(model: nn.Module, sparsity: float, scope: str) -> None:
    """Raise the sparsity of the prunable weights to `sparsity`, by smallest current magnitude.

    Already-pruned weights stay pruned (torch's PruningContainer selects among the
    surviving entries), so repeated calls implement IMP without rewinding.
    """
    linears = list(prunable_linears(model).values())
    if scope == "global":
        total = sum(m.weight.numel() for m in linears)
        extra = round(sparsity * total) - sum(_pruned_count(m) for m in linears)
        if extra > 0:
            prune.global_unstructured([(m, "weight") for m in linears], pruning_method=prune.L1Unstructured, amount=extra,
                                      importance_scores={(m, "weight"): current_weight(m) for m in linears})
        return
    for m in linears:
        extra = round(sparsity * m.weight.numel()) - _pruned_count(m)
        if extra > 0:
            prune.l1_unstructured(m, "weight", amount=extra, importance_scores=current_weight(m))


def finalize(model: nn.Module) -> None:
    """Make masks permanent (zeros in `weight`, no hooks), so the model saves as a plain checkpoint."""
    for m in prunable_linears(model).values():
        if prune.is_pruned(m):
            prune.remove(m, "weight")


def sparsity_report(model: nn.Module) -> dict[str, float]:
    """Achieved sparsity, by counting exact zeros in the effective weights."""
    linears = prunable_linears(model)
    zeros = {name: int((m.weight == 0).sum()) for name, m in linears.items()}
    total = sum(m.weight.numel() for m in linears.values())
    per = [zeros[n] / linears[n].weight.numel() for n in linears]
    return {
        "sparsity": sum(zeros.values()) / total,
        "min_matrix_sparsity": min(per),
        "max_matrix_sparsity": max(per),
        "prunable_params": float(total),
    }


class Pruner:
    """Applies the cubic schedule inside a training loop: call `step(t)` after each optimizer step."""

    def __init__(self, model: nn.Module, cfg: PruneConfig, total_steps: int) -> None:
        self.model, self.cfg, self.total_steps = model, cfg, total_steps
        self.applied = 0.0

    @torch.no_grad()
    def step(self, step: int) -> None:
        target = cubic_sparsity(step, self.total_steps, self.cfg)
        if target > self.applied:
            prune_to(self.model, target, self.cfg.scope)
            self.applied = target

    def finish(self) -> tuple[nn.Module, dict[str, float]]:
        """Reach the target if the schedule has not, fold the masks in, and report; the
        model is the same object (a structured pruner returns a rebuilt one)."""
        if self.applied < self.cfg.sparsity:
            prune_to(self.model, self.cfg.sparsity, self.cfg.scope)
            self.applied = self.cfg.sparsity
        finalize(self.model)
        return self.model, sparsity_report(self.model)
