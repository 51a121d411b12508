"""Dataset cartography (Swayamdipta et al., EMNLP 2020): difficulty from the teacher's own
training dynamics, with no model trained beyond the teacher.

With p_e the probability the model gives a row's gold label at the end of epoch e, over
E epochs (Sec. 2 of the paper):

    confidence   mu    = (1/E) sum_e p_e
    variability  sigma = sqrt((1/E) sum_e (p_e - mu)^2)

Rows the model keeps changing its mind about (high variability) are the ambiguous ones;
rows learnt at once and kept (high confidence, low variability) are the easy ones, which
is what RMC wants to smooth: variability stands in for the sub-networks' loss variance in
Eq. 1 (docs/method.md, estimators).
"""

from __future__ import annotations

import numpy as np


def _checked(gold_probs: np.ndarray) -> np.ndarray:
    p = np.asarray(gold_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise ValueError(f"training dynamics must be (epochs >= 2, rows), got shape {p.shape}")
    return p


def confidence(gold_probs: np.ndarray) -> np.ndarray:
    """Mean gold-label probability over epochs: (epochs, rows) -> (rows,)."""
    return _checked(gold_probs).mean(axis=0)


def variability(gold_probs: np.ndarray) -> np.ndarray:
    """Population standard deviation of the gold-label probability over epochs, as in the
    paper's code (np.std): (epochs, rows) -> (rows,)."""
    return _checked(gold_probs).std(axis=0)
