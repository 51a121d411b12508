"""How hard a training sample is: the variance of sub-networks' losses on it (Eq. 1).

Sub-networks pruned to different sparsities agree on easy (shortcut) samples and disagree
on hard ones, so a low loss variance marks a sample the compressed model would learn
mostly as a shortcut.
"""

from __future__ import annotations

import torch

from rmc_core._arrays import same_type_out


@same_type_out
def loss_variance(losses: torch.Tensor) -> torch.Tensor:
    """Population variance over models: (n_models, n_samples) -> (n_samples,)."""
    if losses.ndim != 2 or losses.shape[0] < 2:
        raise ValueError(f"losses must be (n_models >= 2, n_samples), got shape {tuple(losses.shape)}")
    return losses.var(dim=0, unbiased=False)


@same_type_out
def difficulty_scores(variance: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 1: d = alpha + (1 - alpha) * (v - v_min) / (v_max - v_min), in [alpha, 1].

    When every variance is equal no sample is easier than another, so every d is 1 and
    the teacher's targets pass through unsmoothed (RMC degrades to plain distillation)
    rather than all being smoothed by an arbitrary amount. alpha is in (0, 1] by the
    config's validation (MethodConfig.alpha, the task defaults).
    """
    lo, hi = variance.min(), variance.max()
    if hi == lo:
        return torch.ones_like(variance)
    return alpha + (1.0 - alpha) * (variance - lo) / (hi - lo)


@same_type_out
def variance_hard_split(variance: torch.Tensor, n_hard: int | None = None) -> torch.Tensor:
    """The variance-based split: the n_hard highest-variance samples are hard (1.0).

    n_hard defaults to half; pass the size of a reference split to compare splits of equal
    size, so that agreement is not inflated by a size mismatch. Ties break by position.
    """
    n = variance.shape[0]
    k = n // 2 if n_hard is None else n_hard
    order = torch.argsort(variance, descending=True, stable=True)
    hard = torch.zeros(n, dtype=torch.float64)
    hard[order[:k]] = 1.0
    return hard
