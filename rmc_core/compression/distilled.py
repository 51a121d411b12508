"""A smaller encoder as the student: the teacher's base cut to its first layers (the cheap
distilled student), or another encoder altogether (e.g. MiniLM for a BERT-base teacher)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, StudentInit, register
from rmc_core.model_spec import FAMILIES, ModelSpec
from rmc_core.models import build_base, check_labels, encoder_config, truncate_layers
from rmc_core.schema import Int


class DistilledConfig(CompressionConfig):
    """A smaller encoder trained from the teacher's targets."""

    model_config = ConfigDict(title="Smaller encoder (kind \"distilled\")")
    kind: Literal["distilled"] = Field("distilled", description="a shallower encoder trained from the teacher")
    num_layers: Int = Field(3, ge=1, description="keep the teacher base's first num_layers encoder layers (without `model`)")
    model: ModelSpec | None = Field(None, title="Distilled student's encoder",
                                    description="another encoder instead of the truncated teacher base")


def prepare(cfg: DistilledConfig, base: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            init: StudentInit) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if cfg.model is not None:
        return build_base(cfg.model, init.labels, init.texts, init.seed)
    return truncate_layers(base, cfg.num_layers), tokenizer


def check(cfg: DistilledConfig, teacher: PretrainedConfig, labels: tuple[str, ...]) -> PretrainedConfig:
    if cfg.model is not None:
        check_labels(cfg.model, labels, "student")
        return encoder_config(cfg.model)
    if cfg.num_layers > teacher.num_hidden_layers:
        raise ValueError(f"student.compression.num_layers={cfg.num_layers}: the teacher has only "
                         f"{teacher.num_hidden_layers} encoder layers to keep")
    return teacher


def _sparsity(cfg: DistilledConfig) -> float:
    """Unknown without the teacher when the encoder is another model: reported as nan."""
    return float("nan")


DISTILLED = register(CompressionSpec(
    kind="distilled",
    summary="a smaller encoder: the teacher's first layers, or another pretrained model",
    config=DistilledConfig,
    label=lambda cfg: f"L{cfg.num_layers}" if cfg.model is None else "distilled",
    sparsity=_sparsity,
    prepare=prepare,
    check=check,
    architectures=FAMILIES,
))
