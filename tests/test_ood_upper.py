"""The OOD-information upper bound (method ood-upper, objectives/ood_upper.py): its loss,
its training rows and its refusal (its run through the pipeline: test_known_bias.py's
tiny SRNets run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rmc_core import pipeline
from rmc_core.data.registry import ALLOWS, TASKS
from rmc_core.objectives.methods import METHODS, compared_methods
from rmc_core.objectives.ood_upper import label_set_loss, with_ood_rows
from rmc_core.store import Store
from tests.conftest import tiny_run_config

MNLI = TASKS["mnli"]


def test_the_loss_is_cross_entropy_on_the_ood_label_and_plain_cross_entropy_on_a_task_label():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.3, 1.2, 0.1]])
    p = logits.softmax(-1)
    non_entailment = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    by_hand = -(torch.log(p[0, 1] + p[0, 2]) + torch.log(p[1, 1] + p[1, 2])) / 2
    assert label_set_loss(logits, non_entailment).item() == pytest.approx(by_hand.item(), rel=1e-6)
    one_hot = F.one_hot(torch.tensor([0, 1]), 3).float()
    assert label_set_loss(logits, one_hot).item() == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 1])).item(), rel=1e-6)


def test_ood_rows_follow_the_training_rows_with_the_task_labels_their_ood_label_covers():
    np.testing.assert_array_equal(MNLI.ood_label_sets(), [[1, 0, 0], [0, 1, 1]])
    train = pd.DataFrame({"text_a": ["a", "b"], "text_b": ["c", "d"], "label": [2, 1], "hard": [False, True]})
    hans = pd.DataFrame({"text_a": ["e", "f"], "text_b": ["g", "h"], "label": [0, 1], "heuristic": ["x", "y"]})
    sets = MNLI.ood_label_sets()[hans["label"]]
    hans = hans.assign(**{f"{ALLOWS}{name}": sets[:, i] for i, name in enumerate(MNLI.labels)})
    rows, allowed = with_ood_rows(train, hans)
    assert list(rows.columns) == ["text_a", "text_b", "label"] and list(rows["text_a"]) == ["a", "b", "e", "f"]
    np.testing.assert_array_equal(allowed, [[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]])
    assert list(rows["label"]) == [2, 1, 0, 1], "an OOD row's label column is the first task label of its set"


def test_the_upper_bound_is_no_compared_method():
    assert METHODS["ood-upper"].upper_bound and "ood-upper" not in compared_methods()


def test_a_task_without_ood_training_rows_is_refused_before_any_compute(tmp_path):
    cfg = tiny_run_config(task="fever", methods=("vanilla", "ood-upper"))
    with pytest.raises(ValueError, match="ood-upper needs the task's OOD training rows; fever"):
        pipeline.preflight(cfg, Store(tmp_path), ["cpu"])
