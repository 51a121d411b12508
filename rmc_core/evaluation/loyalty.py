"""Loyalty to the teacher (Xu et al., 2021): same labels, and close probabilities."""

from __future__ import annotations

import pandas as pd

from rmc_core.evaluation.metrics import label_loyalty, probability_loyalty
from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, register


def _results(inputs: Inputs) -> pd.DataFrame:
    teacher = inputs.probs[inputs.teacher]["dev"]
    return pd.DataFrame([{"model": m, "label_loyalty": label_loyalty(teacher, p["dev"]),
                          "prob_loyalty": probability_loyalty(teacher, p["dev"])} for m, p in inputs.probs.items()])


LOYALTY = register(EvaluationSpec(
    name="loyalty",
    summary="label loyalty and probability loyalty (1 - mean Jensen-Shannon distance) to the teacher on dev",
    columns=lambda data: [
        Column("label_loyalty", "higher", label="label loyalty", shown="headline",
               legend="label loyalty: share of dev rows where the model predicts the teacher's label."),
        Column("prob_loyalty", "higher", label="prob. loyalty", shown="headline",
               legend="prob. loyalty: 1 - mean Jensen-Shannon distance to the teacher's dev probabilities (base-2 logs, "
                      "so in [0, 1]).")],
    results=_results,
))
