"""Training objectives: RMC's Eq. 3 and the baselines' losses.

An objective maps (student logits, gold labels, row indices) to a scalar. Indices let an
objective look up its per-sample data (teacher targets, JTT weights) without the data
loader knowing anything about the method.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Objective = Callable[[Tensor, Tensor, Tensor], Tensor]


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Vanilla: CE on gold labels."""
    return F.cross_entropy(logits, labels)


def distillation_loss(logits: Tensor, labels: Tensor, targets: Tensor, lam: float) -> Tensor:
    """Eq. 3: (1 - lam) * CE(y, q) + lam * KL(s || q), averaged over the batch.

    `targets` is s: the teacher's probabilities (Distil), globally smoothed (Smooth) or
    smoothed per sample by difficulty (RMC). kl_div uses xlogy, so s = 0 entries are safe.
    """
    log_q = F.log_softmax(logits, dim=-1)
    ce = F.nll_loss(log_q, labels, reduction="none")
    kl = F.kl_div(log_q, targets, reduction="none").sum(dim=-1)
    return ((1.0 - lam) * ce + lam * kl).mean()


def focal_loss(logits: Tensor, labels: Tensor, gamma: float) -> Tensor:
    """Focal loss with batch-normalised, detached weights (mean weight 1 in every batch).

    Normalising keeps the loss scale of plain CE, so the learning rate means the same;
    detaching makes the weights a re-weighting, not a second gradient path.
    """
    log_q_y = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
    w = (1.0 - log_q_y.exp()).pow(gamma).detach()
    w = w / w.mean().clamp_min(torch.finfo(w.dtype).tiny)
    return -(w * log_q_y).mean()


def weighted_cross_entropy(logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """CE with fixed per-sample weights (JTT's second stage)."""
    return (weights * F.cross_entropy(logits, labels, reduction="none")).mean()


def jtt_weights(errors: np.ndarray, lambda_up: float) -> np.ndarray:
    """JTT: up-weight the first-stage model's errors by lambda_up, normalised to mean 1."""
    w = np.where(np.asarray(errors, dtype=bool), lambda_up, 1.0)
    return w / w.mean()


def gold_objective() -> Objective:
    return lambda logits, labels, idx: cross_entropy(logits, labels)


def distillation_objective(targets: np.ndarray, lam: float) -> Objective:
    table = torch.tensor(targets, dtype=torch.float32)
    return lambda logits, labels, idx: distillation_loss(logits, labels, table[idx].to(logits.device), lam)


def focal_objective(gamma: float) -> Objective:
    return lambda logits, labels, idx: focal_loss(logits, labels, gamma)


def weighted_objective(weights: np.ndarray) -> Objective:
    table = torch.tensor(weights, dtype=torch.float32)
    return lambda logits, labels, idx: weighted_cross_entropy(logits, labels, table[idx].to(logits.device))
