"""ID and OOD accuracy: dev, each OOD set (mapped to its label set) and the mean of the OOD sets.

Each OOD set is a test of its own (HANS of the lexical-overlap bias, SNLI-hard of the
hypothesis-only one), so each is a headline column where there are several, and the mean
over sets (each counted once, whatever its size) is a summary beside them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, Paired, Resampled, register
from rmc_core.evaluation.statistics import resampled_means
from rmc_core.evaluation.tables import OOD_UNION, accuracies


def _columns(data) -> list[Column]:
    """Each OOD set's column is shown only when there are several: one set is the mean."""
    several = len(data.ood) > 1
    ood = [Column(f"acc_{name}", "higher", paired=True, label=f"OOD {name}", shown="headline" if several else "hidden",
                  share=True, legend=f"OOD {name}: accuracy on {name}.") for name in data.ood]
    dev = Column("acc_dev", "higher", paired=True, label="ID dev", shown="headline", share=True,
                 legend="ID dev: accuracy on the in-distribution dev set.")
    if not data.ood:  # a declared task without challenge sets
        return [dev]
    union = Column(f"acc_{OOD_UNION}", "higher", paired=True, label="OOD mean" if several else "OOD",
                   shown="detail" if several else "headline", share=True,
                   legend=f"OOD mean: the mean of the accuracies on {', '.join(data.ood)}, each set counted once." if several
                   else f"OOD: accuracy on the out-of-distribution challenge rows ({next(iter(data.ood))}).")
    return [dev, *ood, union]


def _results(inputs: Inputs) -> pd.DataFrame:
    rows = [{"model": m, **{f"acc_{k}": v for k, v in accuracies(p, inputs.data, inputs.task).items()}}
            for m, p in inputs.probs.items()]
    return pd.DataFrame(rows)


def _paired(r: Resampled) -> Paired:
    """Each split's accuracy, and the mean over OOD sets (each set counted once)."""
    splits = ["dev", *r.data.ood]
    out = {f"acc_{s}": (r.correct[s].mean(axis=1), resampled_means(r.correct[s], r.weights[s])) for s in splits}
    if not r.data.ood:
        return out
    out[f"acc_{OOD_UNION}"] = tuple(np.mean([out[f"acc_{s}"][i] for s in r.data.ood], axis=0) for i in (0, 1))
    return out


ACCURACY = register(EvaluationSpec(
    name="accuracy", summary="accuracy on dev, on each OOD set and their mean",
    columns=_columns, results=_results, paired=_paired,
))
