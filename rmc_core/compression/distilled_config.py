"""The distilled student's settings and registration: what the run config and its form read,
without torch. Making the smaller encoder is distilled.py."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, StudentInit, register
from rmc_core.model_spec import FAMILIES, ModelSpec
from rmc_core.schema import Int


class DistilledConfig(CompressionConfig):
    """A smaller encoder trained from the teacher's targets."""

    model_config = ConfigDict(title="Smaller encoder (kind \"distilled\")")
    kind: Literal["distilled"] = Field("distilled", description="a shallower encoder trained from the teacher")
    num_layers: Int = Field(3, ge=1, description="keep the teacher base's first num_layers encoder layers (without `model`)")
    model: ModelSpec | None = Field(None, title="Distilled student's encoder",
                                    description="another encoder instead of the truncated teacher base")


def _sparsity(cfg: DistilledConfig) -> float:
    """Unknown without the teacher when the encoder is another model: reported as nan."""
    return float("nan")


def _prepare(cfg: DistilledConfig, base: object, tokenizer: object, init: StudentInit) -> tuple:
    from rmc_core.compression.distilled import prepare

    return prepare(cfg, base, tokenizer, init)


def _check(cfg: DistilledConfig, teacher: object, labels: tuple[str, ...]) -> object:
    from rmc_core.compression.distilled import check

    return check(cfg, teacher, labels)


DISTILLED = register(CompressionSpec(
    kind="distilled",
    summary="a smaller encoder: the teacher's first layers, or another pretrained model",
    config=DistilledConfig,
    label=lambda cfg: f"L{cfg.num_layers}" if cfg.model is None else "distilled",
    sparsity=_sparsity,
    prepare=_prepare,
    check=_check,
    architectures=FAMILIES,
))
