"""Smoothing the teacher's soft labels by sample difficulty (Eq. 2)."""

from __future__ import annotations

import torch

from rmc_core._arrays import same_type_out


@same_type_out
def smooth_probs(probs: torch.Tensor, d: torch.Tensor | float) -> torch.Tensor:
    """Eq. 2: s_ij = p_ij^d_i / sum_k p_ik^d_i, computed as softmax(d_i * log p_i).

    In log space a zero probability is log 0 = -inf and stays exactly 0 after the softmax
    (for d > 0), and tiny probabilities do not underflow when raised to a power. d = 1 is
    the identity; smaller d flattens towards uniform. `d` is one value per sample or a
    scalar (global smoothing); the config keeps every d in (0, 1] (Eq. 1's range, smooth_d).
    """
    d = torch.as_tensor(d, dtype=probs.dtype)
    scale = d[:, None] if d.ndim == 1 else d
    return torch.softmax(scale * torch.log(probs), dim=-1)
