"""F_bias (the paper's relative bias): how much more a model loses out of distribution,
relative to its own dev accuracy, than its teacher does."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.metrics import relative_bias
from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, Paired, Resampled, register
from rmc_core.evaluation.tables import OOD_UNION, accuracies

f_bias = np.vectorize(relative_bias, otypes=[float])


def _results(inputs: Inputs) -> pd.DataFrame:
    """F_bias over the OOD union (FEVER: Sym1 + Sym2; QQP: PAWS-wiki + PAWS-qqp); nan for the teacher."""
    acc = {m: accuracies(p, inputs.data, inputs.task) for m, p in inputs.probs.items()}
    t = acc[inputs.teacher]
    return pd.DataFrame([{"model": m, "f_bias": np.nan if m == inputs.teacher else
                          relative_bias(t["dev"], t[OOD_UNION], a["dev"], a[OOD_UNION])} for m, a in acc.items()])


def _paired(r: Resampled) -> Paired:
    """From the model's and the same-seed teacher's resampled accuracies (undefined for the teacher)."""
    if r.teacher is None:
        return {}
    t, own, union = r.teacher, r.own, f"acc_{OOD_UNION}"
    return {"f_bias": tuple(f_bias(t["acc_dev"][i], t[union][i], own["acc_dev"][i], own[union][i]) for i in (0, 1))}


F_BIAS = register(EvaluationSpec(
    name="f_bias",
    summary="F_bias: (dev - OOD) / dev of the model over the teacher's (above 1: leans on shortcuts more)",
    columns=lambda data: [Column("f_bias", "lower", paired=True, label="F_bias", shown="headline", legend=(
        "F_bias: the model's relative ID-to-OOD accuracy drop, (dev - OOD) / dev, over the teacher's (above 1: it leans "
        "on shortcuts more than its teacher; lower is better). Blank for the teacher: its own drop is the reference."))],
    results=_results,
    paired=_paired,
    applies=lambda data: bool(data.ood),  # no challenge set, no OOD drop
))
