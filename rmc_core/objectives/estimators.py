"""Difficulty estimators: where each training row's difficulty score comes from, before
Eq. 1 rescales it to [alpha, 1] (objectives/difficulty.py).

Each estimator is one `EstimatorSpec`, registered once: what it trains (sub-networks by
IMP, the trained teacher pruned one-shot, or nothing), which product of the run it scores
rows from (the sub-networks' predictions, the teacher's predictions or its training
dynamics, the data's annotation), the score itself, and what must hold for it to apply.
The config's `subnetworks.estimator`, the DAG, preflight, the difficulty stage and its
cache key read this registry; nothing outside a spec branches on an estimator's name.

Controls are estimators too (`control=True`): they isolate what RMC gains from its
estimate, and train the sub-networks of the estimator they control (`controls_on`), so
every premise check stays comparable with the run they control.

This module stays light (no torch): the run config imports it to validate names; the
heavy scoring code is imported where a score runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rmc_core.registry import Registry

if TYPE_CHECKING:
    from rmc_core.store import Ref, Store

# The products of a run an estimator can score rows from.
Product = Literal["subnetworks", "teacher-predictions", "teacher", "data"]
# The sub-networks an estimator trains: IMP from the base (the paper), the trained teacher
# pruned one-shot, none, or those of the estimator a control controls (`controls_on`).
Trains = Literal["imp", "oneshot", "controlled"] | None


@dataclass(frozen=True)
class Scoring:
    """What a score reads, for one split ("train" or "dev"): the artifacts of the product
    its spec names (each sub-network's predictions; the teacher's predictions; the
    teacher itself; the data), and a generator seeded by the run's seed."""

    store: Store
    split: str
    refs: list[Ref]
    rng: np.random.Generator

    def tables(self, name: str | None = None) -> list[Any]:
        """Each artifact's table of this split (or `name`)."""
        return [self.store.table(ref, name or self.split) for ref in self.refs]


@dataclass(frozen=True)
class EstimatorSpec:
    """One difficulty estimator. score(scoring) -> one float per row of the split, higher
    for harder rows. check(cfg, task) -> a refusal (why this estimator cannot run on this
    config and task) or None, asked before anything trains."""

    name: str
    summary: str
    reads: Product
    score: Callable[[Scoring], np.ndarray]
    trains: Trains = None
    control: bool = False
    # A control with the estimate's distribution of scores but none of its information about
    # which row is hard: what the claim that RMC's gain comes from its estimate is judged on.
    removes_estimate: bool = False
    # The teacher trains recording the gold-label probability of every row after each epoch.
    teacher_dynamics: bool = False
    check: Callable[[Any, Any], str | None] | None = None


ESTIMATORS: Registry[EstimatorSpec] = Registry("difficulty estimator")


def register(spec: EstimatorSpec) -> EstimatorSpec:
    if spec.control != (spec.trains == "controlled"):
        raise ValueError(f"estimator {spec.name!r}: a control trains the sub-networks it controls (trains='controlled'), "
                         "and only a control does")
    return ESTIMATORS.add(spec.name, spec)


def trained_by(estimator: str, controls_on: str) -> Trains:
    """The sub-networks a run with this estimator trains ("imp", "oneshot" or None)."""
    trains = ESTIMATORS[estimator].trains
    return ESTIMATORS[controls_on].trains if trains == "controlled" else trains


def subnetwork_estimators() -> list[str]:
    """The estimators that train sub-networks themselves: what a control can control."""
    return [name for name, spec in ESTIMATORS.items() if spec.trains in ("imp", "oneshot")]


def _loss_variance(scoring: Scoring) -> np.ndarray:
    """The paper's score: the variance of the sub-networks' per-row losses (Eq. 1's v)."""
    from rmc_core.objectives.difficulty import loss_variance

    return loss_variance(np.stack([t["loss"].to_numpy() for t in scoring.tables()]))


def _shuffled(scoring: Scoring) -> np.ndarray:
    """The sub-networks' loss variance permuted across the split's rows: the same
    distribution of scores, no information about which row is hard."""
    return scoring.rng.permutation(_loss_variance(scoring))


def _annotated(scoring: Scoring) -> np.ndarray:
    [data] = scoring.tables()
    return data["hard"].to_numpy(dtype=np.float64)


def _teacher_loss(scoring: Scoring) -> np.ndarray:
    [teacher] = scoring.tables()
    return teacher["loss"].to_numpy(dtype=np.float64)


def _cartography(scoring: Scoring) -> np.ndarray:
    from rmc_core.objectives.cartography import variability

    [dynamics] = scoring.tables(f"dynamics_{scoring.split}")
    return variability(dynamics.to_numpy().T)


def _needs_annotation(cfg: Any, task: Any) -> str | None:
    """Asked in preflight, with the task resolved (None when the config alone is checked)."""
    from rmc_core.data.registry import annotated_training_rows

    if task is None or annotated_training_rows(task, cfg.data):
        return None
    return (f"needs a hard annotation on the training rows; {task.name} has none (the synthetic task has one; a "
            "declared task with a hardness column in train; any task with data.shortcut_strength set)")


def _needs_teacher_epochs(cfg: Any, task: Any) -> str | None:
    if cfg.teacher.fine_tuned:
        return ("reads the teacher's training dynamics; a fine-tuned teacher (teacher.fine_tuned) is not trained here: "
                f"use one of {', '.join(n for n, s in ESTIMATORS.items() if not s.teacher_dynamics and not s.control)}")
    if cfg.teacher_train.epochs < 2:
        return f"measures variability over the teacher's epochs and needs teacher_train.epochs >= 2 (whole epochs), " \
               f"got {cfg.teacher_train.epochs}"
    return None


IMP = register(EstimatorSpec(
    name="imp", reads="subnetworks", trains="imp", score=_loss_variance,
    summary="the variance of the losses of sub-networks fine-tuned with IMP from the base to each sparsity (the paper)"))
ONESHOT = register(EstimatorSpec(
    name="oneshot", reads="subnetworks", trains="oneshot", score=_loss_variance,
    summary="the same variance, of the trained teacher pruned by magnitude to each sparsity (then `recovery_epochs` of "
            "fine-tuning): cheap"))
TEACHER_LOSS = register(EstimatorSpec(
    name="teacher-loss", reads="teacher-predictions", score=_teacher_loss,
    summary="the trained teacher's own per-row loss (no sub-networks)"))
CARTOGRAPHY = register(EstimatorSpec(
    name="cartography", reads="teacher", score=_cartography, teacher_dynamics=True, check=_needs_teacher_epochs,
    summary="the variability of the teacher's gold-label probability over its epochs (Swayamdipta et al. 2020; no "
            "sub-networks; at least 2 teacher epochs)"))
SHUFFLED = register(EstimatorSpec(
    name="shuffled", reads="subnetworks", trains="controlled", control=True, removes_estimate=True, score=_shuffled,
    summary="control: the controls_on sub-networks' difficulty permuted across rows"))
ANNOTATED = register(EstimatorSpec(
    name="annotated", reads="data", trains="controlled", control=True, score=_annotated, check=_needs_annotation,
    summary="control: the annotated hard rows as difficulty (the oracle: hard rows d = 1, easy ones d = alpha)"))
