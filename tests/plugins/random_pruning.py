"""A throw-away compression: a random, fixed fraction of every encoder matrix pruned before
training (the control a magnitude criterion should beat). Everything it needs is here and
in its helper module (random_masks.py)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from rmc_core.compression import CompressionConfig, CompressionSpec, register
from rmc_core.compression.imp import MASK, MaskedTraining, apply_masks, prunable_linears
from rmc_core.schema import Int, Sparsity

from .random_masks import random_mask


class RandomPruningConfig(CompressionConfig):
    """Random unstructured pruning at a fixed sparsity."""

    kind: Literal["random"] = "random"
    sparsity: Sparsity = 0.4
    seed: Int = 0


class RandomPruning(MaskedTraining):
    def __init__(self, cfg: RandomPruningConfig) -> None:
        self.cfg = cfg

    @torch.no_grad()
    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.model = model
        generator = torch.Generator().manual_seed(self.cfg.seed)
        for m in prunable_linears(model).values():
            mask = random_mask(m.weight.shape, self.cfg.sparsity, generator)
            m.register_buffer(MASK, mask.to(m.weight), persistent=False)
        apply_masks(model)


RANDOM = register(CompressionSpec(
    kind="random",
    summary="random unstructured pruning at a fixed sparsity (a control for magnitude pruning)",
    config=RandomPruningConfig,
    label=lambda cfg: f"rand{round(cfg.sparsity * 100)}",
    sparsity=lambda cfg: cfg.sparsity,
    hooks=lambda cfg: [RandomPruning(cfg)],
))
