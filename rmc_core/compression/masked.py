"""Mask training (SRNets, Liu et al. NeurIPS 2022): the weights stay frozen and a real-valued
score per weight learns which weights to keep.

Masked: Q, K, V, attention output and both FFN matrices of every layer, the pooler and the
classifier (SRNets' choice; not the embeddings). The binary mask of a matrix keeps its
highest-scoring (1 - s) share of entries, recomputed from the scores at every forward:
SRNets resets each matrix's threshold to the k-th smallest score every evaluation
interval, which holds the sparsity between resets only approximately; ranking at every
forward is that reset done at every step, so the achieved sparsity is exact. The gradient
reaches the scores straight through the binarisation (d mask / d score = 1).

The target sparsity s warms up on a cubic schedule from `warmup_from` to `sparsity` (SRNets:
70 % to 90 %), `schedule` saying when. Scores start from the weights' magnitudes: "soft",
score = |W|; "hard", 0 for the lowest-magnitude `warmup_from` share and 2 x 0.01 (twice
SRNets' threshold) for the rest.

Scenarios (where the masks are searched): 1, the fine-tuned teacher (default; the student
starts from the teacher); 2, the scenario-1 mask (searched by the same method, shared with
a scenario-1 run) put on the pre-trained weights, which are then fine-tuned with the mask
held; 3, the pre-trained encoder, with no weight update at all (the student starts from
the base model, whose classifier is random: its mask is searched too).
The masks are folded into the weights at the end, so the saved student is a plain BERT with
zeros, loaded and evaluated like every other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from rmc_core.compression.imp import prunable_linears, sparsity_report
from rmc_core.compression.masked_config import MaskedConfig
from rmc_core.compression.schedule import cubic_ramp
from rmc_core.training.hooks import Hook

HARD_INIT_THRESHOLD = 0.01


def masked_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The encoder's linear maps, the pooler's and the classifier's, by qualified name (a
    classification head of several maps, as RoBERTa's dense + out_proj, gives each)."""
    out = dict(prunable_linears(model))
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None:
        out["pooler.dense"] = pooler.dense
    head = model.classifier
    if isinstance(head, nn.Linear):
        out["classifier"] = head
    else:
        out |= {f"classifier.{name}": m for name, m in head.named_modules() if isinstance(m, nn.Linear)}
    return out


def top_mask(scores: Tensor, sparsity: float) -> Tensor:
    """1 on the highest-scoring (1 - sparsity) share of entries (ties broken by position), 0 elsewhere."""
    n = scores.numel()
    keep = n - round(sparsity * n)
    mask = torch.zeros(n, dtype=scores.dtype, device=scores.device)
    mask[torch.topk(scores.reshape(-1), keep, sorted=False).indices] = 1.0
    return mask.view_as(scores)


def straight_through(scores: Tensor, sparsity: float) -> Tensor:
    """The binary mask in the forward, the identity's gradient to the scores in the backward
    (scores - scores.detach() is exactly 0, so the forward mask is exactly binary)."""
    return top_mask(scores.detach(), sparsity) + (scores - scores.detach())


class ScoredMask(nn.Module):
    """A weight's parametrization: W -> W * mask(scores); the scores are its parameter."""

    def __init__(self, weight: Tensor, init: str, start_sparsity: float) -> None:
        super().__init__()
        magnitude = weight.detach().abs().float()
        if init == "hard":
            scores = 2 * HARD_INIT_THRESHOLD * top_mask(magnitude, start_sparsity)
        else:
            scores = magnitude.clone()
        self.scores = nn.Parameter(scores)
        self.sparsity = start_sparsity

    def forward(self, weight: Tensor) -> Tensor:
        return weight * straight_through(self.scores, self.sparsity).to(weight.dtype)


class MaskLearning(Hook):
    """Freeze every weight, attach the scores, hold each matrix's sparsity on the warm-up
    schedule, and fold the masks into the weights at the end."""

    def __init__(self, cfg: MaskedConfig) -> None:
        self.cfg = cfg
        self.start = cfg.sparsity if cfg.warmup_from is None else cfg.warmup_from
        self.total = 1
        self.masks: dict[str, ScoredMask] = {}

    def target(self, step: int) -> float:
        return self.start + (self.cfg.sparsity - self.start) * cubic_ramp(step, self.total, self.cfg.schedule)

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.model, self.total = model, total_steps
        for p in model.parameters():
            p.requires_grad_(False)
        for name, linear in masked_linears(model).items():
            self.masks[name] = ScoredMask(linear.weight, self.cfg.init, self.start)
            parametrize.register_parametrization(linear, "weight", self.masks[name])

    def on_step_end(self, step: int) -> None:
        for mask in self.masks.values():
            mask.sparsity = self.target(step)

    def on_train_end(self, model: nn.Module) -> nn.Module:
        for mask in self.masks.values():
            mask.sparsity = self.cfg.sparsity
        for linear in masked_linears(model).values():
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def report(self) -> dict[str, float]:
        return sparsity_report(self.model)


class HeldMask(Hook):
    """Fine-tuning with the zeros the model starts with kept at zero (scenario 2): their
    gradients are zeroed before clipping and the weights again after every step."""

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.model = model
        self.masks = {name: (m.weight != 0).to(m.weight.dtype) for name, m in masked_linears(model).items()}

    def on_after_backward(self, step: int) -> None:
        for name, m in masked_linears(self.model).items():
            if m.weight.grad is not None:
                m.weight.grad.mul_(self.masks[name])

    @torch.no_grad()
    def on_step_end(self, step: int) -> None:
        for name, m in masked_linears(self.model).items():
            m.weight.mul_(self.masks[name])

    def report(self) -> dict[str, float]:
        return sparsity_report(self.model)


@torch.no_grad()
def transfer_mask(masked: nn.Module, target: nn.Module) -> None:
    """Zero `target`'s weights wherever `masked` has a zero, matrix by matrix."""
    sources = masked_linears(masked)
    for name, m in masked_linears(target).items():
        m.weight.mul_((sources[name].weight != 0).to(m.weight.dtype))
