"""Debiasing with a known bias: the setting RMC avoids. A bias-only model
(objectives/bias_model.py) scores every training row; beta is its probability of the
gold label. SRNets (Liu et al. 2022) trains its sparse subnetworks with these three
objectives, from the debiasing literature:

    PoE (Clark et al. 2019):      L_i = CE(log_softmax(z_i) + log p_bias_i, y_i)
    reweighting (Schuster et al. 2019, Utama et al. 2020):
                                  L = sum_i (1 - beta_i) CE_i / sum_i (1 - beta_i)   (per batch)
    confidence regularisation (Utama et al. 2020):
                                  s_ij = p_teacher_ij^(1 - beta_i) / sum_k p_teacher_ik^(1 - beta_i)
                                  L_i = -sum_j s_ij log q_ij

PoE adds the bias model's log-probabilities to the student's logits during training only,
so the student gains nothing from what the bias already explains; reweighting trains
mostly on the rows the bias gets wrong; confidence regularisation flattens the teacher's
targets on the rows the bias gets right, as RMC flattens them on its easy rows.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rmc_core.objectives.losses import Objective

# Bias probabilities are floored before the log, so that a bias model certain of a wrong
# label cannot make PoE's combined logits -inf.
PROBABILITY_FLOOR = 1e-6


def poe_loss(logits: Tensor, labels: Tensor, log_bias: Tensor) -> Tensor:
    return F.cross_entropy(F.log_softmax(logits, dim=-1) + log_bias, labels)


def reweighted_loss(logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """Normalised by the batch's total weight, so the loss keeps CE's scale."""
    ce = F.cross_entropy(logits, labels, reduction="none")
    return (weights * ce).sum() / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def confreg_targets(teacher_probs: np.ndarray, beta: np.ndarray) -> np.ndarray:
    scaled = np.power(np.asarray(teacher_probs, dtype=np.float64), (1.0 - np.asarray(beta, dtype=np.float64))[:, None])
    return scaled / scaled.sum(axis=1, keepdims=True)


def log_bias(bias_probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(bias_probs, PROBABILITY_FLOOR, 1.0))


def _per_row(values: np.ndarray) -> Tensor:
    return torch.tensor(np.asarray(values), dtype=torch.float32)


def poe_objective(log_bias_table: np.ndarray) -> Objective:
    table = _per_row(log_bias_table)
    return lambda logits, labels, idx: poe_loss(logits, labels, table[idx].to(logits.device))


def reweighted_objective(weights: np.ndarray) -> Objective:
    table = _per_row(weights)
    return lambda logits, labels, idx: reweighted_loss(logits, labels, table[idx].to(logits.device))


def soft_target_objective(targets: np.ndarray) -> Objective:
    table = _per_row(targets)
    return lambda logits, labels, idx: soft_cross_entropy(logits, table[idx].to(logits.device))
