"""The train-dev gap (SPD's overfitting claim is about it): computed from train-row predictions
that only runs evaluating it make."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rmc_core.data.registry import TASKS, TaskData
from rmc_core.evaluation.registry import EVALUATIONS, Inputs, compute


def onehot(labels: list[int], n: int = 3) -> np.ndarray:
    return np.eye(n)[labels]


def test_train_accuracy_and_gap_by_hand():
    data = TaskData(train=pd.DataFrame({"label": [0, 1, 2, 0]}), dev=pd.DataFrame({"label": [0, 1, 2, 2, 1]}), ood={})
    probs = {"teacher": {"train": onehot([0, 1, 2, 0]), "dev": onehot([0, 1, 2, 2, 1])},
             "student": {"train": onehot([0, 1, 0, 0]), "dev": onehot([0, 0, 0, 2, 1])}}
    tables = compute(EVALUATIONS["train_fit"], Inputs(task=TASKS["synthetic"], data=data, probs=probs))
    results = tables["results"].set_index("model")
    # teacher: 4/4 train, 5/5 dev; student: 3/4 train, 3/5 dev.
    assert results.loc["teacher", "acc_train"] == 1.0 and results.loc["teacher", "train_dev_gap"] == 0.0
    assert results.loc["student", "acc_train"] == 0.75
    assert results.loc["student", "train_dev_gap"] == pytest.approx(0.75 - 0.6)
    assert set(tables["columns"]["column"]) == {"acc_train", "train_dev_gap"}
