"""ID and OOD accuracy: dev, each OOD set (mapped to its label set) and the union of OOD sets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, Paired, Resampled, register
from rmc_core.evaluation.statistics import resampled_means
from rmc_core.evaluation.tables import OOD_UNION, accuracies


def _columns(data) -> list[Column]:
    """Each OOD set's column is shown only when there are several: one set is the union."""
    shown = "detail" if len(data.ood) > 1 else "hidden"
    ood = [Column(f"acc_{name}", "higher", paired=True, label=f"OOD {name}", shown=shown, share=True,
                  legend=f"OOD {name}: accuracy on {name}.") for name in data.ood]
    dev = Column("acc_dev", "higher", paired=True, label="ID dev", shown="headline", share=True,
                 legend="ID dev: accuracy on the in-distribution dev set.")
    if not data.ood:  # a declared task without challenge sets
        return [dev]
    union = " + ".join(data.ood)
    return [dev, *ood, Column(f"acc_{OOD_UNION}", "higher", paired=True, label="OOD", shown="headline", share=True,
                              legend=f"OOD: accuracy on the out-of-distribution challenge rows ({union}).")]


def _results(inputs: Inputs) -> pd.DataFrame:
    rows = [{"model": m, **{f"acc_{k}": v for k, v in accuracies(p, inputs.data, inputs.task).items()}}
            for m, p in inputs.probs.items()]
    return pd.DataFrame(rows)


def _paired(r: Resampled) -> Paired:
    """Each split's accuracy, and the OOD union weighted by set size."""
    splits = ["dev", *r.data.ood]
    out = {f"acc_{s}": (r.correct[s].mean(axis=1), resampled_means(r.correct[s], r.weights[s])) for s in splits}
    if not r.data.ood:
        return out
    sizes = np.array([len(r.data.ood[s]) for s in r.data.ood], dtype=float)
    union = [sum(n * out[f"acc_{s}"][i] for n, s in zip(sizes, r.data.ood)) / sizes.sum() for i in (0, 1)]
    out[f"acc_{OOD_UNION}"] = (union[0], union[1])
    return out


ACCURACY = register(EvaluationSpec(
    name="accuracy", summary="accuracy on dev, on each OOD set and on their union",
    columns=_columns, results=_results, paired=_paired,
))
