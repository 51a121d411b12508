"""Sparse progressive distillation's settings and registration (Huang et al. 2021): what the
run config and its form read, without torch. The stages, the sparse successors and the
layer-wise terms are spd.py."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, register
from rmc_core.schema import Int, Real, Sparsity


class SpdConfig(CompressionConfig):
    """Sparse successors replaced progressively, with layer-wise distillation."""

    model_config = ConfigDict(title="Sparse progressive distillation (kind \"spd\")")
    kind: Literal["spd"] = Field("spd", description="sparse successor layers replaced progressively, distilled layer by layer")
    sparsity: Sparsity = Field(0.4, description="share of each successor matrix set to zero, in (0, 1)")
    stages: tuple[Real, Real, Real] = Field((0.5, 0.2, 0.3), description="fractions of the steps: pruning while replacing, "
                                            "rate rising to 1, all-sparse fine-tuning")
    replace_rate: Real = Field(0.8, gt=0.0, le=1.0, description="probability that a layer runs its successor in stage 1")
    pruning_events: Int = Field(12, ge=1, description="pruning updates in stage 1 (cubic schedule)")
    warmup: Real = Field(0.1, ge=0.0, lt=1.0, description="learning-rate warm-up, as a fraction of each stage")
    layerwise_weight: Real = Field(1.0, ge=0.0, description="weight of the attention-score and hidden-state MSE terms")

    @model_validator(mode="after")
    def _stages_cover_training(self) -> SpdConfig:
        if any(s < 0 for s in self.stages) or self.stages[0] <= 0 or not math.isclose(sum(self.stages), 1.0, abs_tol=1e-6):
            raise ValueError(f"stages {self.stages}: three fractions of the training steps, the first above 0, summing to 1")
        return self


def _hooks(cfg: SpdConfig) -> list:
    from rmc_core.compression.spd import SparseProgressive

    return [SparseProgressive(cfg)]


SPD = register(CompressionSpec(
    kind="spd",
    summary="sparse progressive distillation: pruned copies of the teacher's layers replace them progressively, "
            "distilled layer by layer",
    config=SpdConfig,
    label=lambda cfg: f"spd{round(cfg.sparsity * 100)}",
    sparsity=lambda cfg: cfg.sparsity,
    hooks=_hooks,
    starts_from=lambda cfg: "teacher",
    architectures=("bert", "roberta"),
))
