"""Mask training's settings and registration (SRNets): what the run config and its form
read, without torch. The scores, the masks and their training are masked.py."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, register
from rmc_core.compression.schedule import Schedule
from rmc_core.schema import Sparsity


class MaskedConfig(CompressionConfig):
    """Masks learnt over frozen weights (SRNets), to `sparsity` of each masked matrix."""

    model_config = ConfigDict(title="Mask training (kind \"masked\")")
    kind: Literal["masked"] = Field("masked", description="learnt binary masks over frozen weights (SRNets)")
    sparsity: Sparsity = Field(0.7, description="final share of each masked matrix's weights masked out, in (0, 1)")
    warmup_from: Sparsity | None = Field(None, description="sparsity at the start of the cubic warm-up (SRNets: 0.7 to "
                                                           "0.9); empty: the final sparsity from the first step")
    init: Literal["soft", "hard"] = Field("soft", description="scores from weight magnitudes: soft |W|, hard 0 or 2 x 0.01")
    scenario: Literal[1, 2, 3] = Field(1, description="1: masks on the fine-tuned teacher; 2: the scenario-1 mask on the "
                                                      "pre-trained weights, fine-tuned; 3: on the pre-trained encoder, "
                                                      "no weight ever updated")
    schedule: Schedule = Field(Schedule(), title="Sparsity warm-up", description="when the warm-up happens during training")

    @model_validator(mode="after")
    def _warmup_below_target(self) -> MaskedConfig:
        if self.warmup_from is not None and self.warmup_from > self.sparsity:
            raise ValueError(f"warmup_from ({self.warmup_from}) must not exceed sparsity ({self.sparsity})")
        return self


def _hooks(cfg: MaskedConfig) -> list:
    from rmc_core.compression.masked import HeldMask, MaskLearning

    return [HeldMask()] if cfg.scenario == 2 else [MaskLearning(cfg)]


MASKED = register(CompressionSpec(
    kind="masked",
    summary="learnt binary masks over frozen weights, on the fine-tuned teacher or the pre-trained encoder (SRNets)",
    config=MaskedConfig,
    label=lambda cfg: f"mask{round(cfg.sparsity * 100)}" + ("" if cfg.scenario == 1 else f"s{cfg.scenario}"),
    sparsity=lambda cfg: cfg.sparsity,
    hooks=_hooks,
    starts_from=lambda cfg: "teacher" if cfg.scenario == 1 else "base",
    mask_from=lambda cfg: cfg.model_copy(update={"scenario": 1}) if cfg.scenario == 2 else None,
    architectures=("bert", "roberta"),
))
