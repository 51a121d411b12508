"""The cartography estimator: variability of the teacher's gold-label probability over its
epochs (Swayamdipta et al. 2020), recorded during the teacher's own training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from rmc_core import stages
from rmc_core.config import SubnetworkConfig, TrainConfig
from rmc_core.objectives.cartography import confidence, variability
from rmc_core.store import Store
from rmc_core.training.dynamics import TrainingDynamics
from rmc_core.training.predict import predict_logits, probs_from_logits
from rmc_core.models import load_model
from tests.conftest import FAST, TINY_SPARSITIES, tiny_data_and_base, tiny_run_config


def test_confidence_and_variability_by_hand():
    p = np.array([[0.2, 0.9, 0.5], [0.6, 0.9, 0.1], [0.4, 0.9, 0.9]])
    np.testing.assert_allclose(confidence(p), [0.4, 0.9, 0.5])
    np.testing.assert_allclose(variability(p), [np.sqrt(0.08 / 3), 0.0, np.sqrt(0.32 / 3)])
    with pytest.raises(ValueError, match="epochs >= 2"):
        variability(p[:1])


def test_a_teacher_of_fewer_than_two_epochs_is_refused_at_the_edge():
    subnets = SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST, estimator="cartography")
    with pytest.raises(ValidationError, match="needs teacher_train.epochs >= 2 .*got 1.5"):
        tiny_run_config(subnetworks=subnets, teacher_train=FAST.model_copy(update={"epochs": 1.5}))


def test_each_rows_visits_land_in_their_epoch_and_a_partial_epoch_is_dropped():
    """Three rows in shuffled batches over 2.5 epochs: row r's probability at epoch e is set
    to r/10 + e/100 by its logits, so the table shows where each visit went."""
    dev = pd.DataFrame({"label": [0]})
    dynamics = TrainingDynamics(3, dev, tokenizer=None, cfg=TrainConfig(epochs=3), device="cpu", desc="t")
    dynamics._score_dev = lambda: dynamics.dev_probs.append(np.zeros(1))
    recording = dynamics.wrap(lambda logits, labels, idx: logits.sum())
    visits = [[2, 0], [1], [1, 2], [0], [0], [2]]  # epochs 1-2 whole, epoch 3 partial (row 1 unseen)
    epoch_of = np.zeros(3, dtype=int)
    for step, rows in enumerate(visits):
        target = torch.tensor([r / 10 + (epoch_of[r] + 1) / 100 for r in rows], dtype=torch.float64)
        epoch_of[rows] += 1
        logits = torch.stack([torch.log(target), torch.log1p(-target)], dim=1)  # softmax -> (p, 1 - p)
        recording(logits, torch.zeros(len(rows), dtype=torch.long), torch.tensor(rows))
        dynamics.on_step_end(step + 1)
    tables = dynamics.tables()
    assert list(tables["dynamics_train"].columns) == ["epoch_1", "epoch_2"]
    np.testing.assert_allclose(tables["dynamics_train"].to_numpy(), [[0.01, 0.02], [0.11, 0.12], [0.21, 0.22]])
    assert tables["dynamics_dev"].shape == (1, 2), "dev scored once per whole epoch, at its end"


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """The same tiny teacher trained with and without recording its dynamics."""
    store = Store(tmp_path_factory.mktemp("cartography"))
    data, base = tiny_data_and_base(store)
    plain = stages.train(base, data, FAST, store)
    recorded = stages.train(base, data, FAST, store, record_dynamics=True)
    return store, data, plain, recorded


def test_recording_leaves_the_weights_as_plain_training_makes_them(teachers):
    store, _, plain, recorded = teachers
    assert (store.path(plain) / "model.safetensors").read_bytes() == (store.path(recorded) / "model.safetensors").read_bytes()
    assert store.record(recorded, stages.DYNAMICS_COST)["epochs"] == 2


def test_the_last_dev_dynamics_are_the_trained_teachers_dev_probabilities(teachers):
    store, data, _, recorded = teachers
    dev = store.table(data, "dev")
    dynamics = store.table(recorded, "dynamics_dev")
    assert dynamics.shape == (len(dev), 2)
    train = store.table(recorded, "dynamics_train")
    assert train.shape == (len(store.table(data, "train")), 2) and train.notna().all().all()
    model, tokenizer = load_model(store.path(recorded))
    probs = probs_from_logits(predict_logits(model, tokenizer, dev, FAST.max_length, FAST.eval_batch_size))
    np.testing.assert_allclose(dynamics["epoch_2"], probs[np.arange(len(dev)), dev["label"]], atol=1e-5)


def test_cartography_difficulty_is_eq1_over_the_variability(teachers):
    store, _, _, recorded = teachers
    table = store.table(stages.difficulty("cartography", [recorded], 0.5, store), "train")
    v = variability(store.table(recorded, "dynamics_train").to_numpy().T)
    np.testing.assert_allclose(table["variance"], v)
    np.testing.assert_allclose(table["difficulty"], 0.5 + 0.5 * (v - v.min()) / (v.max() - v.min()))
