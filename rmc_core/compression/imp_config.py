"""IMP's settings and registration: what the run config and its form read, without torch.
The pruning itself (masks, the cubic ramp's events, `MagnitudePruning`) is imp.py."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, register
from rmc_core.compression.schedule import Schedule
from rmc_core.model_spec import FAMILIES
from rmc_core.schema import Sparsity

Scope = Literal["per_matrix", "global"]


class ImpConfig(CompressionConfig):
    """Unstructured magnitude pruning of the teacher's architecture to `sparsity`, during fine-tuning."""

    model_config = ConfigDict(title="IMP (kind \"pruned\")")
    kind: Literal["pruned"] = Field("pruned", description="unstructured magnitude pruning (IMP) of the teacher's architecture")
    sparsity: Sparsity = Field(0.4, description="share of the encoder's prunable weights set to zero, in (0, 1)")
    scope: Scope = Field("per_matrix", description="per_matrix: every matrix to the same sparsity; global: one ranking")
    schedule: Schedule = Field(Schedule(), title="Pruning schedule", description="when pruning happens during training")


def _hooks(cfg: ImpConfig) -> list:
    from rmc_core.compression.imp import MagnitudePruning

    return [MagnitudePruning(cfg.sparsity, cfg.scope, cfg.schedule)]


PRUNED = register(CompressionSpec(
    kind="pruned",
    summary="iterative magnitude pruning of the encoder's linear weights during fine-tuning (the paper's students)",
    config=ImpConfig,
    label=lambda cfg: f"imp{round(cfg.sparsity * 100)}",
    sparsity=lambda cfg: cfg.sparsity,
    hooks=_hooks,
    architectures=FAMILIES,
))
