"""Accuracy on the annotated easy and hard dev rows and their gap (the paper's Table 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, Paired, Resampled, register
from rmc_core.evaluation.tables import easy_hard


def _results(inputs: Inputs) -> pd.DataFrame:
    gold, hard = inputs.data.dev["label"].to_numpy(), inputs.data.dev["hard"].to_numpy()
    return pd.DataFrame([{"model": m, **{f"dev_{k}": v for k, v in easy_hard(np.argmax(p["dev"], axis=1), gold, hard).items()}}
                         for m, p in inputs.probs.items()])


def _paired(r: Resampled) -> Paired:
    """Accuracy on the hard rows, with the bootstrap's dev weights restricted to them. A
    resample that drew no hard row has no such accuracy: nan, which the interval leaves out."""
    hard = r.data.dev["hard"].to_numpy(dtype=bool)
    c, w = r.correct["dev"][:, hard], r.weights["dev"][:, hard]
    with np.errstate(invalid="ignore"):
        return {"dev_hard": (c.mean(axis=1), (w @ c.T) / w.sum(axis=1, keepdims=True))}


EASY_HARD = register(EvaluationSpec(
    name="easy_hard",
    summary="accuracy on the annotated easy and hard dev rows, and the gap easy - hard",
    columns=lambda data: [
        Column("dev_easy", "higher", label="dev easy", share=True, legend="dev easy / dev hard: accuracy on the annotated easy and "
                                                              "hard (bias-conflicting) dev rows."),
        Column("dev_hard", "higher", paired=True, label="dev hard", share=True),
        Column("dev_gap", "lower", label="easy-hard gap", share=True, legend="easy-hard gap: dev easy - dev hard.")],
    results=_results,
    paired=_paired,
    applies=lambda data: "hard" in data.dev.columns,
))
