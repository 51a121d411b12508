"""Iterative magnitude pruning (IMP) of an encoder's linear weights during fine-tuning.

Only the encoder's linear layers are pruned (Q, K, V, attention output, intermediate and
output of every layer); embeddings, pooler and classifier stay dense, as in the paper.
Masks are kept beside each weight (a non-persistent `weight_mask` buffer) and applied in
place: pruned weights are zeroed when pruned and again after every optimizer step, and
their gradients are zeroed before clipping, so the forward is that of `weight * mask`
without recomputing it every step (torch.nn.utils.prune's reparametrisation cost about
10 % of a step). Magnitudes are ranked on the fp32 weights. `finalize` drops the masks.
"""

from __future__ import annotations

import torch
from torch import nn

from rmc_core.compression.schedule import HOLD, Schedule, cubic_ramp
from rmc_core.training.hooks import Hook

MASK = "weight_mask"


def prunable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The encoder layers' linear maps, by qualified name."""
    return {name: module for name, module in model.base_model.named_modules()
            if isinstance(module, nn.Linear) and name.startswith(("encoder.", "transformer."))}


def mask_of(module: nn.Linear) -> torch.Tensor | None:
    return getattr(module, MASK, None)


def _pruned_count(module: nn.Linear) -> int:
    mask = mask_of(module)
    return 0 if mask is None else int((mask == 0).sum())


def _smallest_surviving(scores: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the `count` smallest |scores| among entries the mask keeps, chosen
    as torch.nn.utils.prune's L1 selection does (topk over the surviving entries in order),
    so that a run prunes the same weights it did under the reparametrised masks."""
    surviving = torch.nonzero(mask.reshape(-1), as_tuple=True)[0]
    chosen = torch.topk(scores.reshape(-1)[surviving].abs(), k=count, largest=False).indices
    return surviving[chosen]


@torch.no_grad()
def prune_to(model: nn.Module, sparsity: float, scope: str) -> None:
    """Raise the sparsity of the prunable weights to `sparsity`, by smallest current magnitude.

    Already-pruned weights stay pruned (the choice is among surviving entries), so
    repeated calls implement IMP without rewinding."""
    linears = list(prunable_linears(model).values())
    for m in linears:
        if mask_of(m) is None:
            m.register_buffer(MASK, torch.ones_like(m.weight), persistent=False)
    if scope == "global":
        total = sum(m.weight.numel() for m in linears)
        extra = round(sparsity * total) - sum(_pruned_count(m) for m in linears)
        if extra > 0:
            flat_mask = torch.cat([mask_of(m).reshape(-1) for m in linears])
            chosen = _smallest_surviving(torch.cat([m.weight.reshape(-1) for m in linears]), flat_mask, extra)
            flat_mask[chosen] = 0
            for m, part in zip(linears, torch.split(flat_mask, [m.weight.numel() for m in linears])):
                mask_of(m).copy_(part.view_as(m.weight))
    else:
        for m in linears:
            extra = round(sparsity * m.weight.numel()) - _pruned_count(m)
            if extra > 0:
                mask_of(m).view(-1)[_smallest_surviving(m.weight, mask_of(m), extra)] = 0
    apply_masks(model)


@torch.no_grad()
def apply_masks(model: nn.Module) -> None:
    """Zero every pruned weight (the optimizer's momentum moves them off zero)."""
    for m in prunable_linears(model).values():
        if (mask := mask_of(m)) is not None:
            m.weight.mul_(mask)


@torch.no_grad()
def mask_gradients(model: nn.Module) -> None:
    """Zero pruned weights' gradients, so that clipping sees the gradient of `weight * mask`."""
    for m in prunable_linears(model).values():
        if (mask := mask_of(m)) is not None and m.weight.grad is not None:
            m.weight.grad.mul_(mask)


def finalize(model: nn.Module) -> None:
    """Drop the masks (the zeros stay in the weights), so the model saves as a plain checkpoint."""
    for m in prunable_linears(model).values():
        if mask_of(m) is not None:
            delattr(m, MASK)


def sparsity_report(model: nn.Module) -> dict[str, float]:
    """Achieved sparsity, by counting exact zeros in the weights."""
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


class MaskedTraining(Hook):
    """Training with masks held in place: pruned weights' gradients zeroed before clipping,
    the weights zeroed again after every optimizer step, the masks folded in at the end.
    Any unstructured pruning hook (magnitude, random, learned masks) sets `self.model` and
    the `weight_mask` buffers in `on_train_begin`, and inherits the rest."""

    model: nn.Module

    def on_after_backward(self, step: int) -> None:
        mask_gradients(self.model)

    def on_step_end(self, step: int) -> None:
        apply_masks(self.model)

    def on_train_end(self, model: nn.Module) -> nn.Module:
        apply_masks(model)
        finalize(model)
        return model

    def report(self) -> dict[str, float]:
        return sparsity_report(self.model)


class MagnitudePruning(MaskedTraining):
    """IMP as training events: prune on the schedule after optimizer steps, keep pruned
    weights at zero, and reach the target at the end."""

    def __init__(self, sparsity: float, scope: str = "per_matrix", schedule: Schedule = Schedule()) -> None:
        self.sparsity, self.scope, self.schedule = sparsity, scope, schedule
        self.applied, self.total = 0.0, 1

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.model, self.total = model, total_steps
        self._prune_at(0)

    def on_step_end(self, step: int) -> None:
        super().on_step_end(step)
        self._prune_at(step)

    def _prune_at(self, step: int) -> None:
        target = self.sparsity * cubic_ramp(step, self.total, self.schedule)
        if target > self.applied:
            prune_to(self.model, target, self.scope)
            self.applied = target

    def on_train_end(self, model: nn.Module) -> nn.Module:
        if self.applied < self.sparsity:
            prune_to(model, self.sparsity, self.scope)
            self.applied = self.sparsity
        return super().on_train_end(model)


def hold(sparsity: float, scope: str) -> MagnitudePruning:
    """IMP at a sparsity reached before the first step and held (recovery after one-shot pruning)."""
    return MagnitudePruning(sparsity, scope, HOLD)


