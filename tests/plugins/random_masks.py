"""The random pruning plugin's helper (tests/plugins/random_pruning.py): a module of the
plugin's own outside rmc_core, whose edits recompute that plugin's stages too."""

from __future__ import annotations

import torch


def random_mask(shape: torch.Size, sparsity: float, generator: torch.Generator) -> torch.Tensor:
    """1 for kept weights, 0 for a random `sparsity` share of them."""
    count = shape.numel()
    mask = torch.ones(count)
    mask[torch.randperm(count, generator=generator)[:round(sparsity * count)]] = 0
    return mask.view(shape)
