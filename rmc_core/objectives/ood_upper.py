"""The OOD-information upper bound of SRNets (Liu et al. 2022, section 5): a student that
sees the OOD distribution in training (for MNLI, HANS's own training set added to the MNLI
rows), with plain cross-entropy. It is not a method a user without OOD data could run:
it bounds what any debiasing method, RMC included, could reach, and is reported apart.

The OOD rows carry the OOD label set's labels (HANS: entailment / non-entailment), coarser
than the task's (entailment / neutral / contradiction). Cross-entropy is taken on the
label an OOD row has: the student's probability of the task labels that map to it (for
non-entailment, neutral plus contradiction), exactly the mapping evaluation applies to
its predictions (`TaskSpec.ood_label_map`). No task label is invented for those rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rmc_core.objectives.losses import Objective

if TYPE_CHECKING:  # the task registry imports the config, which imports the methods
    from rmc_core.data.registry import TaskSpec


def label_sets(labels: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """Per OOD row, a 0/1 row over the task's labels: those that count as its OOD label."""
    names = np.array([spec.ood_label_map[name] or "" for name in spec.labels])
    return (names[None, :] == np.array(spec.ood_labels)[np.asarray(labels)][:, None]).astype(np.float32)


def with_ood_rows(train: pd.DataFrame, ood: pd.DataFrame, spec: TaskSpec) -> tuple[pd.DataFrame, np.ndarray]:
    """The training rows followed by the OOD rows, and each row's set of allowed task labels
    (one-hot for a training row). An OOD row's `label` column holds the first task label of
    its set, for the batch sampler's label checks only: the loss reads the sets."""
    allowed = np.concatenate([np.eye(len(spec.labels), dtype=np.float32)[train["label"].to_numpy(dtype=int)],
                              label_sets(ood["label"].to_numpy(dtype=int), spec)])
    if (allowed.sum(axis=1) == 0).any():
        raise ValueError(f"{spec.name}: an OOD label maps to no task label (ood_label_map {spec.ood_label_map})")
    rows = pd.concat([train[["text_a", "text_b", "label"]],
                      ood[["text_a", "text_b"]].assign(label=allowed[len(train):].argmax(axis=1))], ignore_index=True)
    return rows, allowed


def label_set_loss(logits: Tensor, allowed: Tensor) -> Tensor:
    """-log sum over the allowed labels of the softmax: cross-entropy on the coarser label;
    with one allowed label, plain cross-entropy."""
    masked = logits.masked_fill(allowed == 0, torch.finfo(logits.dtype).min)
    return (torch.logsumexp(logits, dim=-1) - torch.logsumexp(masked, dim=-1)).mean()


def label_set_objective(allowed: np.ndarray) -> Objective:
    table = torch.as_tensor(allowed, dtype=torch.float32)

    def objective(logits: Tensor, labels: Tensor, idx: Tensor) -> Tensor:
        return label_set_loss(logits, table[idx].to(logits.device))

    return objective
