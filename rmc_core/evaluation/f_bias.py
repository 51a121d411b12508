"""F_bias (the paper's relative bias): how much more a model loses out of distribution,
relative to its own dev accuracy, than its teacher does."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.metrics import relative_bias
from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, Paired, Resampled, register
from rmc_core.evaluation.tables import OOD_UNION, accuracies

f_bias = np.vectorize(relative_bias, otypes=[float])


def _sets(data) -> list[str]:
    """The OOD accuracies F_bias is taken on: the mean over sets, and each set where there are several."""
    return [OOD_UNION, *(data.ood if len(data.ood) > 1 else ())]


def _name(ood: str) -> str:
    return "f_bias" if ood == OOD_UNION else f"f_bias_{ood}"


def _results(inputs: Inputs) -> pd.DataFrame:
    """F_bias on the OOD mean (FEVER: Sym1 and Sym2; QQP: PAWS-wiki and PAWS-qqp) and on each
    set of several; nan for the teacher."""
    acc = {m: accuracies(p, inputs.data, inputs.task) for m, p in inputs.probs.items()}
    t = acc[inputs.teacher]
    return pd.DataFrame([{"model": m, **{_name(o): np.nan if m == inputs.teacher else relative_bias(t["dev"], t[o], a["dev"], a[o])
                                         for o in _sets(inputs.data)}} for m, a in acc.items()])


def _paired(r: Resampled) -> Paired:
    """From the model's and the same-seed teacher's resampled accuracies (undefined for the teacher)."""
    if r.teacher is None:
        return {}
    t, own = r.teacher, r.own
    return {_name(o): tuple(f_bias(t["acc_dev"][i], t[f"acc_{o}"][i], own["acc_dev"][i], own[f"acc_{o}"][i]) for i in (0, 1))
            for o in _sets(r.data)}


LEGEND = ("the model's relative ID-to-OOD accuracy drop, (dev - OOD) / dev, over the teacher's (above 1: it leans on "
          "shortcuts more than its teacher; lower is better). Blank for the teacher: its own drop is the reference.")


def _columns(data) -> list[Column]:
    """The mean's column, and each set's where the data has several (none without data: a form)."""
    several = data is not None and len(data.ood) > 1
    mean = Column("f_bias", "lower", paired=True, label="F_bias", shown="headline",
                  legend=f"F_bias: {LEGEND}" + (" OOD is the mean of the sets' accuracies." if several else ""))
    return [mean, *(Column(_name(o), "lower", paired=True, label=f"F_bias {o}", shown="detail", legend=f"F_bias {o}: "
                           f"the same on {o} alone.") for o in (data.ood if several else ()))]


F_BIAS = register(EvaluationSpec(
    name="f_bias",
    summary="F_bias: (dev - OOD) / dev of the model over the teacher's (above 1: leans on shortcuts more)",
    columns=_columns,
    results=_results,
    paired=_paired,
    applies=lambda data: bool(data.ood),  # no challenge set, no OOD drop
))
