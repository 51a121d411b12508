"""Accuracy on the training rows and the train - dev gap: how much a model fits rows it saw
beyond rows it did not. Sparse Progressive Distillation (Huang et al. 2021) argues that
pruning during fine-tuning overfits; this is the measure its claim is about."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.metrics import accuracy
from rmc_core.evaluation.registry import Column, EvaluationSpec, Inputs, register


def _results(inputs: Inputs) -> pd.DataFrame:
    train, dev = inputs.data.train["label"].to_numpy(), inputs.data.dev["label"].to_numpy()
    rows = []
    for model, p in inputs.probs.items():
        acc_train, acc_dev = accuracy(np.argmax(p["train"], axis=1), train), accuracy(np.argmax(p["dev"], axis=1), dev)
        rows.append({"model": model, "acc_train": acc_train, "train_dev_gap": acc_train - acc_dev})
    return pd.DataFrame(rows)


TRAIN_FIT = register(EvaluationSpec(
    name="train_fit",
    summary="accuracy on the training rows and the train - dev gap (overfitting)",
    columns=lambda data: [
        Column("acc_train", None, label="train", share=True, legend="train: accuracy on the training rows the model learnt from."),
        Column("train_dev_gap", "lower", label="train-dev gap", legend="train-dev gap: train accuracy - ID dev accuracy "
                                                                       "(how much more it fits rows it saw).")],
    results=_results,
    needs=("train",),
    # Every student would predict its training rows (three times dev on MNLI) for one
    # column most runs do not read: asked for by name (evaluations: [..., train_fit]).
    by_default=False,
))
