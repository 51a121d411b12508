"""OOD accuracy per heuristic x gold label (HANS): the average hides ~100 % on entailed
and ~0 % on non-entailed rows."""

from __future__ import annotations

import pandas as pd

from rmc_core.evaluation.registry import EvaluationSpec, Inputs, register
from rmc_core.evaluation.tables import heuristic_breakdown


def _tables(inputs: Inputs) -> dict[str, pd.DataFrame]:
    data = inputs.data
    return {"heuristics": pd.concat(
        [heuristic_breakdown(inputs.probs[m][s], data.ood[s], inputs.task, s).assign(model=m, ood_set=s)
         for m in inputs.probs for s in data.ood if "heuristic" in data.ood[s].columns], ignore_index=True)}


HEURISTICS = register(EvaluationSpec(
    name="heuristics",
    summary="OOD accuracy per heuristic and gold label, on OOD sets annotated with heuristics (HANS)",
    columns=lambda data: [],
    tables=_tables,
    applies=lambda data: any("heuristic" in f.columns for f in data.ood.values()),
))
