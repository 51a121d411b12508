"""The compression methods: RMC and its baselines, one `MethodSpec` each (docs/method.md, baselines).

This is the one place where the methods differ; the training loop, the student and the
DAG are shared, so any difference in results comes from here. To add a method, write its
loss in `losses.py` (or its targets in `smoothing.py`), put its hyper-parameters in
`MethodConfig` below, and `register` a `MethodSpec`; the config, the pipeline, the
deployment form and the benchmark take the method list from `METHODS`.

A spec's functions say what they need by their parameter names: `loss(targets, **params)`
gets the per-sample data that `targets` made (None when it has none) and the
`MethodConfig` fields it names; `targets(**inputs, **params)` gets the upstream products
it names (`PRODUCTS`) and the fields it names. The DAG wires only what a method names, and
a student's cache key holds only the hyper-parameters its method reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rmc_core.objectives.known_bias import (
    confreg_targets,
    log_bias,
    poe_objective,
    reweighted_objective,
    soft_target_objective,
)
from rmc_core.objectives.ood_upper import label_set_objective, with_ood_rows
from rmc_core.objectives.losses import Objective, distillation_objective, focal_objective, gold_objective, jtt_weights, weighted_objective
from rmc_core.registry import Registry
from rmc_core.schema import Frozen, Real
from rmc_core.objectives.smoothing import smooth_probs

# What a method's targets can ask for, each made by an upstream stage of the DAG:
# the teacher's train-set probabilities, Eq. 1's per-sample difficulty, the
# train-set errors of a first-stage student trained `first_stage_epochs` (JTT), and the
# bias-only model's class probabilities and its probability of each gold label (beta).
PRODUCTS = ("teacher_probs", "difficulty", "first_stage_errors", "bias_probs", "bias_beta")
# The products a bias-only model stage makes (known-bias methods only).
BIAS_PRODUCTS = frozenset({"bias_probs", "bias_beta"})


class MethodConfig(Frozen):
    """Hyper-parameters of RMC and the baselines (paper defaults); each is read by the
    methods whose `loss` or `targets` name it."""

    alpha: Real | None = Field(None, gt=0, le=1, description="RMC's difficulty floor (Eq. 1), in (0, 1]; default per task")
    lam: Real = Field(0.9, ge=0, le=1, description="weight of the KL term in Eq. 3 (Distil, Smooth, RMC), in [0, 1]")
    smooth_d: Real = Field(0.9, gt=0, le=1, description="Smooth: one global smoothing exponent for every sample's targets")
    focal_gamma: Real = Field(2.0, ge=0, description="Focal: the focusing exponent (0 is plain cross-entropy)")
    jtt_lambda_up: Real = Field(2.0, ge=1, description="JTT: weight of the first-stage student's training errors")
    jtt_first_epochs: Real = Field(1.0, gt=0, description="JTT: epochs of the first-stage student whose errors are up-weighted")
    bias_model: Literal["task", "hypothesis-only", "overlap", "bag-of-words"] = Field(
        "task", description="PoE, reweight, confreg: the bias-only model (objectives/bias_model.py); task: the task's "
                            "default (hypothesis-only for NLI, claim-only for FEVER, overlap for QQP, "
                            "bag-of-words for a single-text task)")


def _parameters(fn: Callable[..., Any] | None, skip: int = 0) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)[skip:] if fn is not None else ()


@dataclass(frozen=True)
class MethodSpec:
    """One method: how its student's loss and per-sample targets are built."""

    name: str
    summary: str
    loss: Callable[..., Objective]
    targets: Callable[..., np.ndarray] | None = None
    first_stage_epochs: str | None = None
    # A control isolates one cause of another method's gain; benchmarks that compare
    # methods (Table 4, the weekly sweep) leave controls out unless asked for.
    control: bool = False
    # A known-bias method needs a model of the bias (RMC's premise is not to); benchmarks
    # that reproduce the paper's tables leave them out unless asked for, as controls.
    known_bias: bool = False
    # An upper bound trains on the task's OOD training rows as well (objectives/ood_upper.py),
    # information no method is meant to have: (training rows, OOD rows) -> (rows, per-sample
    # data for `loss`). Its student is reported in a table of its own, compared with nothing.
    ood_rows: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, np.ndarray]] | None = None
    params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        params = [p for p in (*_parameters(self.loss, skip=1), *self.target_params) if p not in PRODUCTS]
        unknown = set(params) - set(MethodConfig.model_fields)
        if unknown:
            raise ValueError(f"method {self.name!r} reads {sorted(unknown)}, which MethodConfig does not define")
        if ("first_stage_errors" in self.needs) != (self.first_stage_epochs is not None):
            raise ValueError(f"method {self.name!r}: first_stage_errors and first_stage_epochs go together")
        object.__setattr__(self, "params", tuple(dict.fromkeys(params)))

    @property
    def upper_bound(self) -> bool:
        return self.ood_rows is not None

    @property
    def needs(self) -> frozenset[str]:
        """The upstream products this method's targets read."""
        return frozenset(p for p in _parameters(self.targets) if p in PRODUCTS)

    @property
    def loss_params(self) -> tuple[str, ...]:
        return _parameters(self.loss, skip=1)

    @property
    def target_params(self) -> tuple[str, ...]:
        return tuple(p for p in _parameters(self.targets) if p not in PRODUCTS)


def select(names: tuple[str, ...], cfg: MethodConfig) -> dict[str, float]:
    return {n: getattr(cfg, n) for n in names}


METHODS: Registry[MethodSpec] = Registry("method")
# The role (`pipeline.identities`) of an upper bound's student: tabled apart, compared with nothing.
UPPER_BOUND = "upper-bound"


def compared_methods() -> tuple[str, ...]:
    """The paper's methods and any registered like them: not the controls, not the known-bias
    ones, not the upper bounds."""
    return tuple(name for name, spec in METHODS.items() if not (spec.control or spec.known_bias or spec.upper_bound))


def register(spec: MethodSpec) -> MethodSpec:
    return METHODS.add(spec.name, spec)


VANILLA = register(MethodSpec(
    name="vanilla",
    summary="cross-entropy on gold labels",
    loss=lambda targets: gold_objective(),
))
DISTIL = register(MethodSpec(
    name="distil",
    summary="Eq. 3 with the teacher's probabilities as targets",
    loss=distillation_objective,
    targets=lambda teacher_probs: teacher_probs,
))
SMOOTH = register(MethodSpec(
    name="smooth",
    summary="Eq. 3 with the teacher's probabilities smoothed by one global exponent (Eq. 2 with d = smooth_d)",
    loss=distillation_objective,
    targets=lambda teacher_probs, smooth_d: smooth_probs(teacher_probs, smooth_d),
))
FOCAL = register(MethodSpec(
    name="focal",
    summary="focal loss on gold labels, which down-weights confidently right samples",
    loss=lambda targets, focal_gamma: focal_objective(focal_gamma),
))
JTT = register(MethodSpec(
    name="jtt",
    summary="cross-entropy with the errors of a first-stage student up-weighted (Just Train Twice)",
    loss=lambda targets: weighted_objective(targets),
    targets=lambda first_stage_errors, jtt_lambda_up: jtt_weights(first_stage_errors, jtt_lambda_up),
    first_stage_epochs="jtt_first_epochs",
))
SMOOTH_MATCHED = register(MethodSpec(
    name="smooth-matched",
    summary="control: Smooth with one global exponent equal to RMC's mean per-sample exponent in the same run "
            "(RMC's average smoothing strength, without its difficulty awareness)",
    loss=distillation_objective,
    targets=lambda teacher_probs, difficulty: smooth_probs(teacher_probs, float(difficulty.mean())),
    control=True,
))
RMC = register(MethodSpec(
    name="rmc",
    summary="Eq. 3 with the teacher's probabilities smoothed per sample by difficulty (Eq. 1, Eq. 2)",
    loss=distillation_objective,
    targets=lambda teacher_probs, difficulty: smooth_probs(teacher_probs, difficulty),
))
POE = register(MethodSpec(
    name="poe",
    summary="known bias: product of experts, the bias-only model's log-probabilities added to the student's logits "
            "in training",
    loss=lambda targets: poe_objective(targets),
    targets=lambda bias_probs: log_bias(bias_probs),
    known_bias=True,
))
REWEIGHT = register(MethodSpec(
    name="reweight",
    summary="known bias: cross-entropy with each row weighted by one minus the bias-only model's gold probability",
    loss=lambda targets: reweighted_objective(targets),
    targets=lambda bias_beta: 1.0 - bias_beta,
    known_bias=True,
))
CONFREG = register(MethodSpec(
    name="confreg",
    summary="known bias: confidence regularisation, the teacher's probabilities flattened by the bias-only model's "
            "gold probability, as soft targets",
    loss=lambda targets: soft_target_objective(targets),
    targets=lambda teacher_probs, bias_beta: confreg_targets(teacher_probs, bias_beta),
    known_bias=True,
))
OOD_UPPER = register(MethodSpec(
    name="ood-upper",
    summary="upper bound, not a method: cross-entropy on the training rows plus the task's OOD training rows "
            "(MNLI: HANS train; SRNets' OOD-information setting), reported apart and compared with nothing",
    loss=lambda targets: label_set_objective(targets),
    ood_rows=with_ood_rows,
))
