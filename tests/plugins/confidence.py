"""A throw-away evaluation: each model's mean confidence (top-class probability) on dev,
and how far it is from its dev accuracy (over- or under-confidence)."""

from __future__ import annotations

import pandas as pd

from rmc_core.evaluation import Column, EvaluationSpec, register
from rmc_core.evaluation.registry import Inputs


def _results(inputs: Inputs) -> pd.DataFrame:
    gold = inputs.data.dev["label"].to_numpy()
    rows = []
    for model, probs in inputs.probs.items():
        confidence = float(probs["dev"].max(axis=1).mean())
        accuracy = float((probs["dev"].argmax(axis=1) == gold).mean())
        rows.append({"model": model, "dev_confidence": confidence, "overconfidence": confidence - accuracy})
    return pd.DataFrame(rows)


CONFIDENCE = register(EvaluationSpec(
    name="confidence",
    summary="mean top-class probability on dev, and its excess over dev accuracy",
    columns=lambda data: [Column("dev_confidence", None, label="confidence"), Column("overconfidence", "lower")],
    results=_results,
))
