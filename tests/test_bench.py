"""The benchmark machinery end to end on a tiny model and a few hundred rows of the shared
data: shapes and consistency of every output (no timing asserts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmc.benchmarks.profiles import bench_runs, check
from rmc.flows.bench_flow import BenchParameters, bench_flow
from rmc_core.objectives.methods import compared_methods


@pytest.fixture(scope="module")
def bench_out(prefect_api, tmp_path_factory, request):
    data_root = request.getfixturevalue("data_root")
    root = tmp_path_factory.mktemp("bench")
    params = BenchParameters(profile="tiny", data_root=str(data_root), store_root=str(root / "store"), out=str(root / "out"))
    assert check(params.profile, Path(params.data_root)) == []
    bench_flow(params)
    return root / "out"


@pytest.fixture(scope="module")
def data_root():
    from tests.conftest import DATA_ROOT

    if not (DATA_ROOT / "README.md").exists():
        pytest.skip(f"shared data not found at {DATA_ROOT} (set RMC_DATA_ROOT to the shared/data folder)")
    return DATA_ROOT


def test_table4_has_every_model_task_and_metric(bench_out):
    t4 = pd.read_csv(bench_out / "table4.csv").set_index("model")
    expected = {"teacher", *(f"imp40-{m}" for m in compared_methods()), "distilled-vanilla", "distilled-rmc"}
    assert set(t4.index) == expected
    for col in ("mnli:dev", "mnli:hans", "qqp:dev", "qqp:paws-qqp", "qqp:paws-wiki", "qqp:ood",
                "mnli:f_bias", "qqp:f_bias", "avg_f_bias", "mnli:label_loyalty", "qqp:prob_loyalty"):
        assert col in t4.columns, col
    acc = t4[[c for c in t4.columns if c.split(":")[-1] in ("dev", "hans", "ood", "paws-qqp", "paws-wiki")]]
    assert ((acc >= 0) & (acc <= 1)).all().all()
    students = t4.drop(index="teacher")
    np.testing.assert_allclose(students["avg_f_bias"], students[["mnli:f_bias", "qqp:f_bias"]].mean(axis=1))
    assert t4.loc["teacher", "mnli:label_loyalty"] == 1.0


def test_the_table4_runs_are_attacked_and_tabled(bench_out):
    attacked = pd.read_csv(bench_out / "attack.csv")
    assert set(attacked["task"]) == {"mnli", "qqp"}
    assert {"teacher", "imp40-rmc"} <= set(attacked["model"])
    assert ((attacked["attack_accuracy"] >= 0) & (attacked["attack_accuracy"] <= attacked["attack_clean_accuracy"])).all()
    assert "Accuracy under the TextFooler-style attack" in (bench_out / "results.md").read_text()


def test_structured_students_have_table3_and_every_student_its_size_and_speed(bench_out):
    t3 = pd.read_csv(bench_out / "table3.csv")
    measured = t3[t3["source"] == "measured"].set_index("model")
    assert set(measured.index) == {"teacher", "structured-vanilla", "structured-rmc"}
    assert (measured.loc[["structured-vanilla", "structured-rmc"], "sparsity"] > 0).all()
    assert set(t3[t3["source"] == "paper"]["model"]) == {"teacher", "116-head v1", "116-head v2", "116-head v3"}
    costs = pd.read_csv(bench_out / "inference.csv").set_index(["task", "model"])
    mnli = costs.loc["mnli"]
    assert mnli.loc["structured-rmc", "params"] < mnli.loc["teacher", "params"]
    assert mnli.loc["imp40-rmc", "params"] == mnli.loc["teacher", "params"]
    assert mnli.loc["imp40-rmc", "nonzero_params"] < mnli.loc["teacher", "nonzero_params"]
    assert (costs["latency_b1_ms"] > 0).all() and costs["ref"].str.startswith("model/").all()


def test_hans_breakdown_covers_every_heuristic_and_label(bench_out):
    hans = pd.read_csv(bench_out / "hans.csv")
    per_model = hans.groupby("model").size()
    assert (per_model == 6).all() and len(per_model) == 11  # 9 of Table 4 and 2 structured students
    assert set(hans["heuristic"]) == {"lexical_overlap", "subsequence", "constituent"}
    assert (hans.groupby("model")["n"].sum() == 120).all()


def test_easy_hard_and_estimator_agreement(bench_out):
    eh = pd.read_csv(bench_out / "easy_hard.csv")
    assert set(eh["task"]) == {"mnli"} and len(eh) == 11
    np.testing.assert_allclose(eh["gap"], eh["easy"] - eh["hard"])
    est = pd.read_csv(bench_out / "estimators.csv")
    assert "estimator-imp split (train subset)" in set(est["compared_with"])
    assert est["agreement"].between(0, 1).all()
    assert set(est["run"]) == {"pruned", "estimator-imp", "estimator-oneshot"}
    subnets = pd.read_csv(bench_out / "subnetworks.csv")
    assert set(subnets.loc[subnets["run"] == "estimator-imp", "sparsity"]) == {0.2, 0.4, 0.6, 0.7, 0.85}
    assert not subnets.duplicated(["task", "run", "sparsity"]).any()


def test_sparsity_sweep_pairs_vanilla_and_rmc_at_each_student_sparsity(bench_out):
    sweep = pd.read_csv(bench_out / "sparsity_sweep.csv")
    assert set(sweep["task"]) == {"mnli"}  # the tiny profile sweeps MNLI only
    assert set(zip(sweep["sparsity"], sweep["method"])) == {(s, m) for s in (0.2, 0.4) for m in ("vanilla", "rmc")}
    assert sweep[["ood", "dev"]].stack().between(0, 1).all()
    t4 = pd.read_csv(bench_out / "table4.csv").set_index("model")
    at40 = sweep[sweep["sparsity"] == 0.4].set_index("method")["ood"]
    np.testing.assert_allclose(at40["rmc"], t4.loc["imp40-rmc", "mnli:ood"])
    assert (bench_out / "fig3_vanilla_vs_rmc_sparsity.png").stat().st_size > 1000


def test_figures_cost_and_page(bench_out):
    assert (bench_out / "fig1_subnetworks_easy_hard.png").stat().st_size > 1000
    cost = pd.read_csv(bench_out / "cost.csv")
    assert {"stage", "seconds", "examples_per_s", "peak_rss_mb", "run_wall_seconds"} <= set(cost.columns)
    assert {"train-teacher", "predict-teacher", "prune-oneshot-subnet-10", "evaluate-accuracy", "report"} <= set(cost["stage"])
    assert (cost["seconds"] > 0).all()
    assert (cost.loc[cost["stage"].str.startswith(("train-", "predict-")), "examples_per_s"] > 0).all()
    page = (bench_out / "results.md").read_text()
    assert "Table 4: measured vs the paper" in page and "HANS by heuristic" in page
    assert "lexical_overlap / entailment" in page and "constituent / non-entailment" in page
    assert "Table 3: attention heads pruned" in page and "Size and CPU inference speed" in page
    for name in ("table4", "hans", "easy_hard", "estimators", "subnetworks", "cost", "paper_comparison", "table3", "inference"):
        assert (bench_out / f"{name}.parquet").exists()


def test_cpu_small_profile_keeps_every_method_and_the_issue_floors():
    runs = {(r.task, r.role): r.config for r in bench_runs("cpu-small", Path("data"))}
    assert set(runs) == {("mnli", "pruned"), ("mnli", "distilled"), ("qqp", "pruned"), ("qqp", "distilled"),
                         ("mnli", "estimator-imp"), ("mnli", "estimator-oneshot"), ("mnli", "structured")}
    assert runs["mnli", "structured"].student.compression.heads == 0.2 and runs["mnli", "structured"].methods == ("vanilla", "rmc")
    assert runs["mnli", "pruned"].methods == compared_methods() and runs["qqp", "pruned"].methods == compared_methods()
    assert "smooth-matched" not in compared_methods()  # a control, not one of Table 4's methods
    assert runs["mnli", "pruned"].student.compression.sparsity == 0.4
    assert runs["mnli", "distilled"].student.compression.num_layers == 3 and runs["mnli", "distilled"].methods == ("vanilla", "rmc")
    assert runs["mnli", "pruned"].data.max_dev is None and runs["mnli", "pruned"].data.max_ood >= 6000
    imp, cheap = runs["mnli", "estimator-imp"], runs["mnli", "estimator-oneshot"]
    assert imp.data == cheap.data and imp.subnetworks.estimator == "imp" and cheap.subnetworks.estimator == "oneshot"
    assert imp.subnetworks.sparsities == (0.2, 0.4, 0.6, 0.7, 0.85)
