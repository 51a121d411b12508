"""The computations several evaluations share: ID/OOD accuracy (with the OOD label
mapping), HANS by heuristic and label, easy/hard accuracy, and split agreement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rmc_core.evaluation.metrics import accuracy

if TYPE_CHECKING:  # annotations only: the data registry imports the config, which imports this package
    from rmc_core.data.registry import TaskData, TaskSpec

OOD_UNION = "ood"


def ood_predictions(probs: np.ndarray, spec: TaskSpec, ood_set: str) -> np.ndarray:
    """Argmax in the task's label space, then mapped to `ood_set`'s labels (HANS: neutral
    and contradiction both count as non-entailment; FEVER: NEI is always wrong, -1)."""
    return np.asarray(spec.ood_label_ids(ood_set))[np.argmax(probs, axis=1)]


def accuracies(probs: dict[str, np.ndarray], data: TaskData, spec: TaskSpec) -> dict[str, float]:
    """Dev accuracy, each OOD set's accuracy, and their mean (`OOD_UNION`): each set counted
    once whatever its size, so that HANS's 30,000 rows do not drown SNLI-hard's 3,261."""
    out = {"dev": accuracy(np.argmax(probs["dev"], axis=1), data.dev["label"].to_numpy())}
    for name, frame in data.ood.items():
        out[name] = accuracy(ood_predictions(probs[name], spec, name), frame["label"].to_numpy())
    if data.ood:  # a task without challenge sets has ID accuracy only
        out[OOD_UNION] = float(np.mean([out[name] for name in data.ood]))
    return out


def heuristic_breakdown(probs: np.ndarray, frame: pd.DataFrame, spec: TaskSpec, ood_set: str) -> pd.DataFrame:
    """Accuracy per heuristic x gold label (HANS): the average hides ~100 % on entailed and
    ~0 % on non-entailed rows."""
    correct = ood_predictions(probs, spec, ood_set) == frame["label"].to_numpy()
    table = pd.DataFrame({
        "heuristic": frame["heuristic"].to_numpy(),
        "gold": [spec.ood_labels_of(ood_set)[i] for i in frame["label"]],
        "correct": correct,
    })
    return table.groupby(["heuristic", "gold"])["correct"].agg(accuracy="mean", n="size").reset_index()


def easy_hard(pred: np.ndarray, gold: np.ndarray, hard: np.ndarray) -> dict[str, float]:
    """Accuracy on the easy and hard parts of a split and the gap E - H."""
    hard = np.asarray(hard, dtype=bool)
    if hard.all() or not hard.any():
        raise ValueError("an easy/hard split needs both easy and hard rows")
    easy_acc, hard_acc = accuracy(pred[~hard], gold[~hard]), accuracy(pred[hard], gold[hard])
    return {"easy": easy_acc, "hard": hard_acc, "gap": easy_acc - hard_acc}


def split_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows on which two easy/hard splits agree."""
    return float((np.asarray(a, dtype=bool) == np.asarray(b, dtype=bool)).mean())
