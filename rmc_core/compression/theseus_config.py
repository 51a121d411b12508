"""Module replacing's settings and registration (BERT-of-Theseus): what the run config and
its form read, without torch. The successors and their replacing are theseus.py."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import ConfigDict, Field

from rmc_core.compression.registry import CompressionConfig, CompressionSpec, register
from rmc_core.schema import Int, Real


class TheseusConfig(CompressionConfig):
    """Successor layers that replace blocks of the teacher's layers during training."""

    model_config = ConfigDict(title="Module replacing (kind \"theseus\")")
    kind: Literal["theseus"] = Field("theseus", description="BERT-of-Theseus: successor layers replace blocks of the teacher's")
    successors: Int = Field(3, ge=1, description="successor layers; each replaces teacher layers / successors consecutive layers")
    replace_rate: Real = Field(0.5, gt=0.0, le=1.0,
                               description="probability that a block runs its successor at a step (for linear, at the first step)")
    schedule: Literal["constant", "linear"] = Field("constant", description="p constant, or rising linearly to 1 by the "
                                                    "start of successor-only fine-tuning")
    successor_only: Real = Field(0.3, ge=0.0, lt=1.0,
                                 description="fraction of the steps, at the end, in which every block runs its successor")


def _hooks(cfg: TheseusConfig) -> list:
    import functools

    from rmc_core.compression.theseus import ModuleReplacing, replace_rate

    return [ModuleReplacing(cfg.successors, functools.partial(replace_rate, cfg))]


def check(cfg: TheseusConfig, teacher: Any, labels: tuple[str, ...]) -> Any:
    layers = teacher.num_hidden_layers
    if cfg.successors >= layers or layers % cfg.successors:
        raise ValueError(f"student.compression.successors={cfg.successors}: the teacher's {layers} encoder layers must "
                         f"split into that many equal blocks of two or more layers (a divisor of {layers} below it)")
    student = copy.deepcopy(teacher)
    student.num_hidden_layers = cfg.successors
    return student


THESEUS = register(CompressionSpec(
    kind="theseus",
    summary="progressive module replacing (BERT-of-Theseus): successor layers learn to replace blocks of the teacher's",
    config=TheseusConfig,
    label=lambda cfg: f"theseus{cfg.successors}",
    sparsity=lambda cfg: float("nan"),
    hooks=_hooks,
    starts_from=lambda cfg: "teacher",
    check=check,
    architectures=("bert", "roberta"),
))
