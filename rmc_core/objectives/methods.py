"""The compression methods: RMC and its baselines, one `MethodSpec` each (docs/method.md, baselines).

This is the one place where the methods differ; the training loop, the student and the
DAG are shared, so any difference in results comes from here. To add a method, write its
loss in `losses.py` (or its targets in `smoothing.py`), put its hyper-parameters in
`MethodConfig` below, and `register` a `MethodSpec`; the config, the pipeline, the
deployment form and the benchmark take the method list from `METHODS`.

The run config reads this registry to validate method names and settings, and stays
torch-free: the losses and targets (losses.py, smoothing.py, known_bias.py, ood_upper.py)
are imported by the small functions below when a student trains.

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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rmc_core.registry import Registry, own_settings
from rmc_core.schema import Frozen, Real

if TYPE_CHECKING:
    from rmc_core.objectives.losses import Objective

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
    # Hyper-parameters of its own (a `Frozen` subclass), set in `RunConfig.method_settings[name]`:
    # a method registered outside rmc_core declares them without editing MethodConfig.
    settings: type | None = None
    params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        params = [p for p in (*_parameters(self.loss, skip=1), *self.target_params) if p not in PRODUCTS]
        own = set(self.settings.model_fields) if self.settings is not None else set()
        if clash := own & set(MethodConfig.model_fields):
            raise ValueError(f"method {self.name!r}: its settings redefine {sorted(clash)}, which MethodConfig defines")
        unknown = set(params) - set(MethodConfig.model_fields) - own
        if unknown:
            raise ValueError(f"method {self.name!r} reads {sorted(unknown)}, which neither MethodConfig nor its settings "
                             "define")
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


def select(names: tuple[str, ...], spec: MethodSpec, cfg: Any) -> dict[str, Any]:
    """The named hyper-parameters of a method in run config `cfg`: from `cfg.method`, or from
    the method's own settings (`cfg.method_settings`, else their defaults)."""
    own = own_settings(spec, cfg.method_settings)
    return {n: getattr(cfg.method, n) if n in MethodConfig.model_fields else getattr(own, n) for n in names}


METHODS: Registry[MethodSpec] = Registry("method")
# The role (`pipeline.identities`) of an upper bound's student: tabled apart, compared with nothing.
UPPER_BOUND = "upper-bound"


def compared_methods() -> tuple[str, ...]:
    """The paper's methods and any registered like them: not the controls, not the known-bias
    ones, not the upper bounds."""
    return tuple(name for name, spec in METHODS.items() if not (spec.control or spec.known_bias or spec.upper_bound))


def register(spec: MethodSpec) -> MethodSpec:
    return METHODS.add(spec.name, spec)


# The methods' losses and targets, each imported when a student trains (see the module's docstring).

def _gold(targets: None) -> Objective:
    from rmc_core.objectives.losses import gold_objective

    return gold_objective()


def _distillation(targets: np.ndarray, lam: float) -> Objective:
    from rmc_core.objectives.losses import distillation_objective

    return distillation_objective(targets, lam)


def _focal(targets: None, focal_gamma: float) -> Objective:
    from rmc_core.objectives.losses import focal_objective

    return focal_objective(focal_gamma)


def _weighted(targets: np.ndarray) -> Objective:
    from rmc_core.objectives.losses import weighted_objective

    return weighted_objective(targets)


def _jtt_weights(first_stage_errors: np.ndarray, jtt_lambda_up: float) -> np.ndarray:
    from rmc_core.objectives.losses import jtt_weights

    return jtt_weights(first_stage_errors, jtt_lambda_up)


def _smoothed(teacher_probs: np.ndarray, d: np.ndarray | float) -> np.ndarray:
    """Eq. 2 (objectives/smoothing.py)."""
    from rmc_core.objectives.smoothing import smooth_probs

    return smooth_probs(teacher_probs, d)


def _poe(targets: np.ndarray) -> Objective:
    from rmc_core.objectives.known_bias import poe_objective

    return poe_objective(targets)


def _log_bias(bias_probs: np.ndarray) -> np.ndarray:
    from rmc_core.objectives.known_bias import log_bias

    return log_bias(bias_probs)


def _reweighted(targets: np.ndarray) -> Objective:
    from rmc_core.objectives.known_bias import reweighted_objective

    return reweighted_objective(targets)


def _soft_targets(targets: np.ndarray) -> Objective:
    from rmc_core.objectives.known_bias import soft_target_objective

    return soft_target_objective(targets)


def _confreg(teacher_probs: np.ndarray, bias_beta: np.ndarray) -> np.ndarray:
    from rmc_core.objectives.known_bias import confreg_targets

    return confreg_targets(teacher_probs, bias_beta)


def _label_set(targets: np.ndarray) -> Objective:
    from rmc_core.objectives.ood_upper import label_set_objective

    return label_set_objective(targets)


def _with_ood_rows(train: pd.DataFrame, ood: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    from rmc_core.objectives.ood_upper import with_ood_rows

    return with_ood_rows(train, ood)


VANILLA = register(MethodSpec(
    name="vanilla",
    summary="cross-entropy on gold labels",
    loss=_gold,
))
DISTIL = register(MethodSpec(
    name="distil",
    summary="Eq. 3 with the teacher's probabilities as targets",
    loss=_distillation,
    targets=lambda teacher_probs: teacher_probs,
))
SMOOTH = register(MethodSpec(
    name="smooth",
    summary="Eq. 3 with the teacher's probabilities smoothed by one global exponent (Eq. 2 with d = smooth_d)",
    loss=_distillation,
    targets=lambda teacher_probs, smooth_d: _smoothed(teacher_probs, smooth_d),
))
FOCAL = register(MethodSpec(
    name="focal",
    summary="focal loss on gold labels, which down-weights confidently right samples",
    loss=_focal,
))
JTT = register(MethodSpec(
    name="jtt",
    summary="cross-entropy with the errors of a first-stage student up-weighted (Just Train Twice)",
    loss=_weighted,
    targets=_jtt_weights,
    first_stage_epochs="jtt_first_epochs",
))
SMOOTH_MATCHED = register(MethodSpec(
    name="smooth-matched",
    summary="control: Smooth with one global exponent equal to RMC's mean per-sample exponent in the same run "
            "(RMC's average smoothing strength, without its difficulty awareness)",
    loss=_distillation,
    targets=lambda teacher_probs, difficulty: _smoothed(teacher_probs, float(difficulty.mean())),
    control=True,
))
RMC = register(MethodSpec(
    name="rmc",
    summary="Eq. 3 with the teacher's probabilities smoothed per sample by difficulty (Eq. 1, Eq. 2)",
    loss=_distillation,
    targets=lambda teacher_probs, difficulty: _smoothed(teacher_probs, difficulty),
))
POE = register(MethodSpec(
    name="poe",
    summary="known bias: product of experts, the bias-only model's log-probabilities added to the student's logits "
            "in training",
    loss=_poe,
    targets=_log_bias,
    known_bias=True,
))
REWEIGHT = register(MethodSpec(
    name="reweight",
    summary="known bias: cross-entropy with each row weighted by one minus the bias-only model's gold probability",
    loss=_reweighted,
    targets=lambda bias_beta: 1.0 - bias_beta,
    known_bias=True,
))
CONFREG = register(MethodSpec(
    name="confreg",
    summary="known bias: confidence regularisation, the teacher's probabilities flattened by the bias-only model's "
            "gold probability, as soft targets",
    loss=_soft_targets,
    targets=_confreg,
    known_bias=True,
))
OOD_UPPER = register(MethodSpec(
    name="ood-upper",
    summary="upper bound, not a method: cross-entropy on the training rows plus the task's OOD training rows "
            "(MNLI: HANS train; SRNets' OOD-information setting), reported apart and compared with nothing",
    loss=_label_set,
    ood_rows=_with_ood_rows,
))
