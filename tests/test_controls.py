"""The controls that attribute RMC's gain: its difficulty shuffled across rows, the annotated
hard rows as an oracle difficulty, and Smooth at RMC's own average strength."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rmc_core import pipeline, stages
from rmc_core.config import SubnetworkConfig
from rmc_core.objectives.methods import METHODS
from rmc_core.objectives.smoothing import smooth_probs
from rmc_core.store import Store
from tests.conftest import FAST, TINY_SPARSITIES, tiny_run_config


@pytest.fixture
def predictions(tmp_path):
    """Three sub-networks' per-row losses (the middle rows disagree most) and the rows' hard flags."""
    store = Store(tmp_path)
    rng = np.random.default_rng(0)
    losses = rng.random((3, 40)) * np.linspace(0.1, 2.0, 40)
    refs = [store.put_tables({split: pd.DataFrame({"loss": row}) for split in ("train", "dev")}) for row in losses]
    hard = np.arange(40) % 4 == 0
    data = store.put_tables({split: pd.DataFrame({"hard": hard}) for split in ("train", "dev")}, kind="data")
    return store, refs, data, hard


def test_shuffled_difficulty_has_the_same_values_in_another_order(predictions):
    store, refs, _, _ = predictions
    plain = store.table(stages.difficulty("imp", refs, 0.5, store), "train")
    shuffled = store.table(stages.difficulty("shuffled", refs, 0.5, store, seed=3), "train")
    assert sorted(shuffled["difficulty"]) == sorted(plain["difficulty"])
    assert not np.array_equal(shuffled["difficulty"], plain["difficulty"])
    again = store.table(stages.difficulty("shuffled", refs, 0.5, store, seed=3), "train")
    assert again.equals(shuffled), "seeded: a rerun is the same control"


def test_annotated_difficulty_is_one_on_hard_rows_and_alpha_on_easy_ones(predictions):
    store, refs, data, hard = predictions
    table = store.table(stages.difficulty("annotated", [data], 0.5, store), "train")
    assert table["difficulty"].tolist() == [1.0 if h else 0.5 for h in hard]


def test_smooth_matched_smooths_every_row_by_rmcs_mean_exponent():
    probs = torch.softmax(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=-1).numpy()
    d = np.array([0.5, 0.5, 1.0, 0.5, 0.75, 1.0])
    targets = METHODS["smooth-matched"].targets(teacher_probs=probs, difficulty=d)
    np.testing.assert_allclose(targets, smooth_probs(probs, float(d.mean())), rtol=1e-6)
    assert not np.allclose(targets, METHODS["rmc"].targets(teacher_probs=probs, difficulty=d))


def test_the_oracle_needs_annotated_training_rows(tmp_path):
    cfg = tiny_run_config(task="mnli", subnetworks=SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST,
                                                                      estimator="annotated"))
    with pytest.raises(ValueError, match="needs a hard annotation on the training rows; mnli has none .*synthetic"):
        pipeline.preflight(cfg, Store(tmp_path), ["cpu"])


def test_a_run_with_the_controls_trains_the_students_from_them(tmp_path, monkeypatch):
    """The oracle difficulty and Smooth at RMC's strength through the whole pipeline, beside
    the one-shot sub-networks of the run it controls (`controls_on`), not IMP ones."""
    subnets = SubnetworkConfig(sparsities=(0.2, 0.4), train=FAST, estimator="annotated", controls_on="oneshot")
    cfg = tiny_run_config(methods=("smooth-matched", "rmc"), subnetworks=subnets)
    pruned, trained = [], []
    for name, calls in (("prune_oneshot", pruned), ("train", trained)):
        monkeypatch.setattr(stages, name, lambda *a, _f=getattr(stages, name), _c=calls, **k: _c.append(k) or _f(*a, **k))
    tables = pipeline.run_local(cfg, tmp_path)
    assert {"imp40-smooth-matched", "imp40-rmc"} <= set(tables["results"]["model"])
    assert len(pruned) == 2 and len(tables["subnetworks"]) == 2
    assert len(trained) == 3, "the teacher and the two students; no IMP sub-network"
    store = Store(tmp_path)
    [data] = [r for r in store.refs() if r.kind == "data"]
    [difficulty] = [t["train"] for r in store.refs() if r.kind == "tables"
                    if "variance" in (t := store.tables(r)).get("train", pd.DataFrame()).columns]
    hard = store.table(data, "train")["hard"].to_numpy()
    assert 0 < hard.sum() < len(hard)
    np.testing.assert_array_equal(difficulty["difficulty"], np.where(hard, 1.0, 0.5))


def test_teacher_loss_difficulty_is_eq1_over_the_teachers_own_losses(predictions):
    store, refs, _, _ = predictions
    table = store.table(stages.difficulty("teacher-loss", refs[:1], 0.5, store), "train")
    loss = store.table(refs[0], "train")["loss"].to_numpy()
    np.testing.assert_allclose(table["difficulty"], 0.5 + 0.5 * (loss - loss.min()) / (loss.max() - loss.min()))


def test_the_teacher_loss_estimator_trains_no_subnetwork(tmp_path):
    """(The cartography estimator's run is tests/test_known_bias.py's, to share its cost.)"""
    subnets = SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST, estimator="teacher-loss")
    tables = pipeline.run_local(tiny_run_config(methods=("rmc",), subnetworks=subnets), tmp_path)
    assert list(tables["results"]["model"]) == ["teacher", "imp40-rmc"]
    assert tables["subnetworks"].empty and 0 <= tables["split_agreement"]["agreement"].iloc[0] <= 1
    store = Store(tmp_path)
    assert len([r for r in store.refs() if r.kind == "model"]) == 3, "the base, the teacher and the student, no sub-network"
