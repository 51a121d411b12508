"""Structured pruning's settings and registration: what the run config and its form read,
without torch. The gates, their importances and the rebuild are structured.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, register
from rmc_core.compression.schedule import Schedule
from rmc_core.schema import Real

# The encoders whose layout the gates and the rebuild know (rmc_core/pruned_bert.py's
# PRUNED_OF; a test keeps the two equal).
ARCHITECTURES = ("bert", "roberta")


class StructuredConfig(CompressionConfig):
    """Attention heads and FFN neurons removed during fine-tuning, ranked by the gradient of
    the training loss w.r.t. their gates, on IMP's cubic ramp. The model that comes out is
    physically smaller: a checkpoint with per-layer head and neuron counts that plain
    transformers loads with trust_remote_code=True."""

    model_config = ConfigDict(title="Structured heads and neurons (kind \"structured\")")
    kind: Literal["structured"] = Field("structured", description="attention heads and FFN neurons removed: a smaller model")
    heads: Real = Field(0.2, ge=0, lt=1, description="fraction of all attention heads pruned (paper Table 3: 28 of 144, ~20 %)")
    neurons: Real = Field(0.0, ge=0, lt=1, description="fraction of all FFN intermediate neurons pruned")
    schedule: Schedule = Field(Schedule(), title="Pruning schedule", description="when pruning happens during training")

    @model_validator(mode="after")
    def _prunes_something(self) -> StructuredConfig:
        if self.heads == 0 and self.neurons == 0:
            raise ValueError("structured pruning needs heads > 0 or neurons > 0")
        return self


def nominal_sparsity(cfg: StructuredConfig) -> float:
    """The share of encoder linear weights removed in BERT's layout (FFN 4x the hidden size,
    so attention holds a third of them); the achieved figure is in the training record."""
    return cfg.heads / 3 + 2 * cfg.neurons / 3


def _label(cfg: StructuredConfig) -> str:
    neurons = f"n{round(cfg.neurons * 100)}" if cfg.neurons else ""
    return f"h{round(cfg.heads * 100)}{neurons}"


def _hooks(cfg: StructuredConfig) -> list:
    from rmc_core.compression.structured import StructuredPruning

    return [StructuredPruning(cfg)]


def targets(config: Any, cfg: StructuredConfig) -> tuple[int, int]:
    """How many heads and FFN neurons the pruned model loses in all."""
    layers = config.num_hidden_layers
    return round(cfg.heads * config.num_attention_heads * layers), round(cfg.neurons * config.intermediate_size * layers)


def check_fits(cfg: StructuredConfig, config: Any, labels: tuple[str, ...] = ()) -> Any:
    """Refuse, before training, a target that would empty a layer or an encoder the gates
    and the rebuild do not know (BERT's and RoBERTa's module layout)."""
    if config.model_type not in ARCHITECTURES:
        raise ValueError(f"structured pruning supports {', '.join(ARCHITECTURES)} encoders; this one is {config.model_type!r}")
    heads, neurons = targets(config, cfg)
    layers = config.num_hidden_layers
    if heads > layers * (config.num_attention_heads - 1):
        raise ValueError(f"pruning {heads} of {layers * config.num_attention_heads} heads would leave a layer without "
                         f"heads; at most {layers * (config.num_attention_heads - 1)} can go")
    if neurons > layers * (config.intermediate_size - 1):
        raise ValueError(f"pruning {neurons} FFN neurons would leave a layer without neurons")
    return config


STRUCTURED = register(CompressionSpec(
    kind="structured",
    summary="attention heads and FFN neurons pruned during fine-tuning, rebuilt physically smaller (paper Table 3)",
    config=StructuredConfig,
    label=_label,
    sparsity=nominal_sparsity,
    hooks=_hooks,
    check=check_fits,
    architectures=ARCHITECTURES,
))
