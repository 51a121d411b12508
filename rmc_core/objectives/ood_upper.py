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

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rmc_core.objectives.losses import Objective


def with_ood_rows(train: pd.DataFrame, ood: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The training rows followed by the OOD rows, and each row's set of allowed task labels:
    one-hot for a training row, an OOD row's `allows_<label>` columns (written with the data,
    `registry.load_ood_train`) for it. An OOD row's `label` column becomes the first task
    label of its set, for the batch sampler's label checks only: the loss reads the sets."""
    sets = ood[[c for c in ood.columns if c.startswith("allows_")]].to_numpy(dtype=np.float32)
    if (sets.sum(axis=1) == 0).any():
        raise ValueError("an OOD training row's label covers no task label")
    allowed = np.concatenate([np.eye(sets.shape[1], dtype=np.float32)[train["label"].to_numpy(dtype=int)], sets])
    texts = ["text_a", "text_b"] if "text_b" in train.columns else ["text_a"]
    rows = pd.concat([train[[*texts, "label"]], ood[texts].assign(label=sets.argmax(axis=1))], ignore_index=True)
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
