"""Whether an OOD set can test a robustness claim at all: the teacher's accuracy on it
against the majority-class rate (what always guessing its most common label scores).

A student cannot lose robustness its teacher never had: on MNLI -> HANS the MiniLM teacher
sits at chance, so "RMC - Vanilla on HANS" is untestable there, not unresolved. The claims
view (rmc_core/experiment_claims.py) marks such cells from this table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.registry import EvaluationSpec, Inputs, register
from rmc_core.evaluation.tables import accuracies

OOD_PREMISE = "ood_premise"
# Its premise checks in an experiment's report (experiment_report.premise_rows), per OOD set.
ABOVE_MAJORITY, OOD_MAJORITY, OOD_ROWS = "teacher_ood_above_majority", "ood_majority", "ood_rows"


def _tables(inputs: Inputs) -> dict[str, pd.DataFrame]:
    teacher = accuracies(inputs.probs[inputs.teacher], inputs.data, inputs.task)
    rows = [{"ood_set": name, "rows": len(frame), "teacher": teacher[name],
             "majority": float(np.bincount(frame["label"].to_numpy()).max() / len(frame))}
            for name, frame in inputs.data.ood.items()]
    return {OOD_PREMISE: pd.DataFrame(rows, columns=["ood_set", "rows", "teacher", "majority"])}


OOD_PREMISE_EVALUATION = register(EvaluationSpec(
    name="ood_premise",
    summary="each OOD set's majority-class rate beside the teacher's accuracy on it: is the set a test at all",
    columns=lambda data: [],
    tables=_tables,
    applies=lambda data: bool(data.ood),
))
