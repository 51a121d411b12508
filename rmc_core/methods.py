"""What each compression method trains its student with: a loss and its per-sample data.

This is the one place where RMC and the baselines differ (docs/method.md, baselines); the
training loop and the student architecture are shared, so any difference in results comes
from here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from rmc_core.config import MethodConfig
from rmc_core.losses import (
    Objective,
    distillation_objective,
    focal_objective,
    gold_objective,
    jtt_weights,
    weighted_objective,
)
from rmc_core.smoothing import smooth_probs


class LossSpec(BaseModel):
    """A loss with its scalar hyper-parameters; per-sample data travels separately."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["ce", "distillation", "focal", "weighted_ce"] = "ce"
    lam: float = 0.9
    gamma: float = 2.0


def build_objective(loss: LossSpec, per_sample: np.ndarray | None) -> Objective:
    if loss.kind == "ce":
        return gold_objective()
    if loss.kind == "focal":
        return focal_objective(loss.gamma)
    if per_sample is None:
        raise ValueError(f"a {loss.kind} loss needs per-sample data")
    if loss.kind == "distillation":
        return distillation_objective(per_sample, loss.lam)
    return weighted_objective(per_sample)


def loss_spec(method: str, cfg: MethodConfig) -> LossSpec:
    """The loss a method's student trains with (its scalar hyper-parameters only)."""
    if method == "vanilla":
        return LossSpec(kind="ce")
    if method == "focal":
        return LossSpec(kind="focal", gamma=cfg.focal_gamma)
    if method == "jtt":
        return LossSpec(kind="weighted_ce")
    if method in ("distil", "smooth", "rmc"):
        return LossSpec(kind="distillation", lam=cfg.lam)
    raise ValueError(f"unknown method {method!r}")


def per_sample_data(
    method: str,
    cfg: MethodConfig,
    teacher_probs: np.ndarray | None = None,
    difficulty: np.ndarray | None = None,
    first_stage_errors: np.ndarray | None = None,
) -> np.ndarray | None:
    """What a method's loss looks up per training sample: teacher targets (Distil: raw;
    Smooth: one global d; RMC: d from difficulty) or JTT's weights; None for the rest."""
    if method == "jtt":
        return jtt_weights(first_stage_errors, cfg.jtt_lambda_up)
    if method == "distil":
        return teacher_probs
    if method == "smooth":
        return smooth_probs(teacher_probs, cfg.smooth_d)
    if method == "rmc":
        return smooth_probs(teacher_probs, difficulty)
    return None


def needs(method: str) -> set[str]:
    """Which upstream products a method's student depends on (so a DAG wires only those)."""
    return {"vanilla": set(), "focal": set(), "jtt": {"jtt_first_stage"}, "distil": {"teacher"},
            "smooth": {"teacher"}, "rmc": {"teacher", "difficulty"}}[method]
