"""The whole method end to end on the synthetic task with a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rmc_core.compression.distilled_config import DistilledConfig
from rmc_core.config import StudentConfig
from rmc_core.evaluation.tables import OOD_UNION
from rmc_core.objectives.methods import METHODS
from rmc_core.evaluation.metrics import relative_bias
from rmc_core.evaluation.registry import default_evaluations
from rmc_core.pipeline import direct, run_local, student_name
from rmc_core.store import Store
from tests.conftest import TINY_SPARSITIES, tiny_run_config


@pytest.fixture(scope="module")
def all_methods(tmp_path_factory):
    cfg = tiny_run_config(methods=tuple(METHODS))
    root = tmp_path_factory.mktemp("store")
    return cfg, root, run_local(cfg, root)


def test_every_method_is_trained_and_evaluated(all_methods):
    cfg, _, tables = all_methods
    results = tables["results"].set_index("model")
    assert list(results.index) == ["teacher", *(student_name(cfg.student.compression, m) for m in METHODS)]
    # What each model is, as columns: nothing downstream parses a name.
    assert list(results.columns[:5]) == ["role", "compression", "sparsity", "method", "seeds"]
    assert results.loc["teacher", ["role", "compression", "sparsity", "method"]].tolist() == ["teacher", "none", 0.0, "vanilla"]
    assert list(results["method"].iloc[1:]) == list(METHODS) and set(results["compression"].iloc[1:]) == {"pruned"}
    assert (results["seeds"] == "0").all()
    acc = results.filter(like="acc_")
    assert ((acc >= 0) & (acc <= 1)).all().all()
    assert results.loc["teacher", "label_loyalty"] == 1.0 and results.loc["teacher", "prob_loyalty"] == pytest.approx(1.0)
    students = results.drop(index="teacher")
    assert np.allclose(students["achieved_sparsity"], 0.4, atol=0.01) and (students["sparsity"] == 0.4).all()
    t = results.loc["teacher"]
    for name, row in students.iterrows():
        expected = relative_bias(t["acc_dev"], t[f"acc_{OOD_UNION}"], row["acc_dev"], row[f"acc_{OOD_UNION}"])
        assert row["f_bias"] == pytest.approx(expected, nan_ok=True)
    # The synthetic task has a single OOD set, so the union equals it.
    assert (results["acc_synthetic-ood"] == results[f"acc_{OOD_UNION}"]).all()
    assert ((results["dev_easy"] - results["dev_hard"]).round(9) == results["dev_gap"].round(9)).all()
    # Every model, students included, is scored on its training rows for the train-dev gap.
    assert results["acc_train"].between(0, 1).all()
    assert ((results["acc_train"] - results["acc_dev"]).round(9) == results["train_dev_gap"].round(9)).all()


def test_teacher_learns_the_task_and_the_shortcut(all_methods):
    """The tiny teacher beats chance in distribution and falls for the planted shortcut."""
    results = all_methods[2]["results"].set_index("model")
    assert results.loc["teacher", "acc_dev"] > 0.6
    assert results.loc["teacher", "acc_dev"] > results.loc["teacher", f"acc_{OOD_UNION}"]


def test_difficulty_tables(all_methods):
    tables = all_methods[2]
    assert len(tables["subnetworks"]) == len(TINY_SPARSITIES)
    agreement = tables["split_agreement"].iloc[0]
    assert 0 <= agreement["agreement"] <= 1 and agreement["n"] == 90
    hans_like = tables["heuristics"]
    assert set(hans_like["gold"]) == {"entailment", "non-entailment"}
    assert hans_like.groupby(["model", "ood_set"])["n"].sum().eq(100).all()


def test_distilled_student_is_smaller_and_a_default_run_skips_the_opt_in_evaluations(tmp_path):
    """At the default evaluations no student predicts its training rows and no model is timed."""
    cfg = tiny_run_config(student=StudentConfig(compression=DistilledConfig(num_layers=1), train=tiny_run_config().student.train),
                          methods=("vanilla", "rmc"), evaluations=default_evaluations())
    assert {"train_fit", "inference"}.isdisjoint(cfg.evaluations) and "accuracy" in cfg.evaluations
    calls = []

    def recording(stage, *args, **kwargs):
        calls.append((stage.__name__, kwargs.get("desc", "")))
        return direct(stage, *args, **kwargs)

    tables = run_local(cfg, tmp_path, call=recording)
    results = tables["results"].set_index("model")
    assert list(results.index) == ["teacher", "L1-vanilla", "L1-rmc"]
    assert (results["achieved_sparsity"] == 0).all() and list(results["compression"]) == ["none", "distilled", "distilled"]
    assert "acc_train" not in results and "inference" not in tables
    assert not [c for c in calls if c[0] == "measure_models" or c[1].endswith("train-rows")]
    assert any(c[0] == "predict" for c in calls)


@pytest.mark.parametrize("recovery", [0.0, 0.5])
def test_oneshot_estimator_prunes_the_trained_teacher(tmp_path, recovery):
    from rmc_core.config import SubnetworkConfig
    from tests.conftest import FAST

    sub = SubnetworkConfig(sparsities=(0.1, 0.2, 0.3, 0.4, 0.5), estimator="oneshot", recovery_epochs=recovery, train=FAST)
    tables = run_local(tiny_run_config(subnetworks=sub), tmp_path)
    subnets = tables["subnetworks"].set_index("subnetwork")
    assert list(subnets.index) == ["subnet-10", "subnet-20", "subnet-30", "subnet-40", "subnet-50"]
    assert list(subnets["sparsity"]) == [0.1, 0.2, 0.3, 0.4, 0.5]
    teacher_dev = tables["results"].set_index("model").loc["teacher", "acc_dev"]
    if recovery == 0.0:
        # Pruning 10 % of the smallest weights barely moves a trained model.
        assert abs(subnets.loc["subnet-10", "dev"] - teacher_dev) < 0.1
    stats = [json.loads(p.read_text()) for p in (tmp_path / "objects" / "model").glob("*/_run/train_stats.json")]
    achieved = sorted(round(s["sparsity"]["sparsity"], 2) for s in stats if s["sparsity"])
    assert {0.1, 0.2, 0.3, 0.5} <= set(achieved)


def test_a_run_record_is_outside_the_digest_and_the_first_one_stays(tmp_path):
    store = Store(tmp_path)
    ref = store.put_tables({"t": pd.DataFrame({"x": [1, 2]})})
    assert store.record(ref, "cost") is None
    store.write_record(ref, "cost", {"seconds": 1.5})
    store.write_record(ref, "cost", {"seconds": 9.0})  # a later run that reused the artifact
    assert store.record(ref, "cost") == {"seconds": 1.5}
    assert store.verify(ref)  # records do not change what the artifact's digest covers
