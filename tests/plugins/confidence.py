"""A throw-away evaluation: each model's mean confidence (top-class probability) on dev,
how far it is from its dev accuracy (over- or under-confidence), and the share of dev rows
it is confident of beyond a threshold: a setting of its own, declared here."""

from __future__ import annotations

import pandas as pd
from pydantic import Field

from rmc_core.evaluation import Column, EvaluationSpec, register
from rmc_core.evaluation.registry import Inputs
from rmc_core.schema import Frozen, Real


class ConfidenceSettings(Frozen):
    threshold: Real = Field(0.9, gt=0, le=1, description="a row counts as confident at this top-class probability")


def _results(inputs: Inputs) -> pd.DataFrame:
    gold = inputs.data.dev["label"].to_numpy()
    rows = []
    for model, probs in inputs.probs.items():
        top = probs["dev"].max(axis=1)
        accuracy = float((probs["dev"].argmax(axis=1) == gold).mean())
        rows.append({"model": model, "dev_confidence": float(top.mean()), "overconfidence": float(top.mean()) - accuracy,
                     "confident_share": float((top >= inputs.settings.threshold).mean())})
    return pd.DataFrame(rows)


CONFIDENCE = register(EvaluationSpec(
    name="confidence",
    summary="mean top-class probability on dev, its excess over dev accuracy, and the share of confident rows",
    columns=lambda data: [Column("dev_confidence", None, label="confidence"), Column("overconfidence", "lower"),
                          Column("confident_share", None, label="confident rows")],
    results=_results,
    settings=ConfidenceSettings,
))
