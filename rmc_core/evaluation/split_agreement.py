"""RMC's premise on the annotated dev split: the sub-networks' accuracy on easy vs hard
rows (the paper's Fig. 1) and the agreement of the loss-variance split with the annotated
one (82.8 % on MNLI in the paper)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.registry import EvaluationSpec, Inputs, register
from rmc_core.evaluation.tables import easy_hard, split_agreement


def _tables(inputs: Inputs) -> dict[str, pd.DataFrame]:
    from rmc_core.objectives.difficulty import variance_hard_split

    hard = inputs.data.dev["hard"].to_numpy(dtype=bool)
    gold = inputs.data.dev["label"].to_numpy()
    rows = []
    for name, probs in (inputs.subnetworks or {}).items():  # none with the teacher-loss estimator
        pred = np.argmax(probs, axis=1)
        rows.append({"subnetwork": name, "dev": float((pred == gold).mean()), **easy_hard(pred, gold, hard)})
    by_variance = variance_hard_split(inputs.difficulty, int(hard.sum())).astype(bool)
    agreement = pd.DataFrame([{
        "agreement": split_agreement(by_variance, hard),
        "chance": float(hard.mean() ** 2 + (1 - hard.mean()) ** 2),
        "n_hard": int(hard.sum()),
        "n": len(hard),
    }])
    return {"subnetworks": pd.DataFrame(rows, columns=["subnetwork", "dev", "easy", "hard", "gap"]),
            "split_agreement": agreement}


SPLIT_AGREEMENT = register(EvaluationSpec(
    name="split_agreement",
    summary="sub-networks on easy vs hard dev rows, and the variance split's agreement with the annotated one",
    columns=lambda data: [],
    tables=_tables,
    applies=lambda data: "hard" in data.dev.columns,
    needs=("difficulty", "subnetworks"),
))
