"""The Prefect flow: it runs, caches across runs, reruns exactly what changed, places
sub-networks on devices, and fails with the failing stage's own error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import ValidationError

from rmc.flows.experiment_flow import ExperimentParameters, experiment_flow
from rmc.flows.rmc_flow import RmcParameters, RunSummary, rmc_flow
from rmc_core import stages
from rmc_core.compression.masked_config import MaskedConfig
from rmc_core.compression.spd_config import SpdConfig
from rmc_core.compression.structured_config import StructuredConfig
from rmc_core.compression.theseus_config import TheseusConfig
from rmc_core.config import AttackConfig, StudentConfig, SubnetworkConfig
from rmc_core.costs import COST
from rmc_core.data.sources import DataError
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.attack import attacked_rows
from rmc_core.evaluation.registry import active
from rmc_core.experiment import Arm, ExperimentConfig
from rmc_core.objectives.methods import MethodConfig
from rmc_core.store import Store
from rmc_core.training.precision import resolve_precision
from tests.conftest import FAST, TINY_SPARSITIES, tiny_run_config

METHODS = ("vanilla", "distil", "rmc")
SUBNETS = {f"train-subnet-{round(100 * s)}" for s in TINY_SPARSITIES}
# One cached stage per evaluation the default settings switch on, then the report that joins them.
EVALUATE = {f"evaluate-{e}" for e in active(tuple(EVALUATIONS), tiny_run_config()) if EVALUATIONS[e].measure is None} | {"report"}


@pytest.fixture(scope="module")
def cli_run(prefect_api, tmp_path_factory):
    """One complete run through `rmc run`, as users start it: its config, store and output."""
    tmp = tmp_path_factory.mktemp("flow")
    config = tmp / "run.json"
    config.write_text(tiny_run_config(methods=METHODS).model_dump_json())
    from rmc.flows import cli

    assert cli.main(["run", "--config", str(config), "--store", str(tmp / "store"), "--out", str(tmp / "out")]) == 0
    return config, tmp / "store", tmp / "out"


@pytest.fixture(scope="module")
def cached_store(cli_run):
    """A store holding one complete run, and that run's summary."""
    _, root, out = cli_run
    return root, RunSummary.model_validate_json((out / "summary.json").read_text())


def rerun(root, methods: tuple[str, ...] = METHODS, **overrides):
    return rmc_flow(RmcParameters(config=tiny_run_config(methods=methods, **overrides), store_root=str(root)))


def new_students_only(root, student: StudentConfig, trained: set[str], methods: tuple[str, ...] = METHODS) -> RunSummary:
    """A rerun of the cached run with another student: the `trained` stages (and what reads
    them) compute, nothing upstream of the students does, and a second rerun computes nothing."""
    run = rerun(root, methods, student=student)
    assert trained <= set(run.computed)
    assert not set(run.computed) & {"train-teacher", "predict-teacher", "difficulty", *SUBNETS}
    assert rerun(root, methods, student=student).computed == []
    return run


def test_first_run_computes_every_stage(cached_store):
    root, summary = cached_store
    assert {"prepare-data", "train-teacher", *SUBNETS, "difficulty", "train-imp40-rmc", *EVALUATE} <= set(summary.computed)
    # Vanilla IMP at 40 % with the sub-networks' recipe *is* the 40 % sub-network: shared, not retrained.
    assert summary.cached == ["train-imp40-vanilla"]
    assert set(Store(root).tables(summary.report)["results"]["model"]) == {"teacher", "imp40-vanilla", "imp40-distil", "imp40-rmc"}


def test_identical_rerun_computes_nothing(cached_store):
    root, first = cached_store
    again = rerun(root)
    assert again.computed == []
    assert again.report == first.report


def test_each_computed_artifact_records_its_cost_once(cached_store):
    root, first = cached_store
    store = Store(root)
    costs = {name: store.record(ref, COST) for name, ref in first.artifacts.items() if ref is not None}
    assert all(c is not None and c["seconds"] > 0 for c in costs.values())
    assert costs["predict-teacher"]["rows"] == sum(len(t) for t in store.tables(first.artifacts["predict-teacher"]).values())
    assert costs["train-teacher"]["process_peak_rss_mb"] > 50
    rerun(root)
    assert store.record(first.artifacts["predict-teacher"], COST) == costs["predict-teacher"]


def test_changing_lambda_recomputes_only_students_and_evaluation(cached_store):
    root, _ = cached_store
    computed = set(rerun(root, method=MethodConfig(lam=0.5)).computed)
    assert {"train-imp40-rmc", "train-imp40-distil", "evaluate-accuracy", "report"} <= computed
    assert computed <= {"student-inputs-vanilla", "student-inputs-distil", "student-inputs-rmc",
                        "train-imp40-distil", "predict-imp40-distil", "train-imp40-rmc", "predict-imp40-rmc",
                        "predict-imp40-distil-train-rows", "predict-imp40-rmc-train-rows", *EVALUATE, "summarize",
                        "measure-inference"}


def test_changing_one_subnetwork_recomputes_it_and_what_depends_on_it(cached_store):
    root, _ = cached_store
    computed = set(rerun(root, subnetworks=SubnetworkConfig(sparsities=(0.4, 0.8), train=FAST)).computed)
    assert {"train-subnet-80", "predict-subnet-80", "difficulty", "train-imp40-rmc", "evaluate-split_agreement", "report"} <= computed
    assert not computed & ({"train-teacher", "predict-teacher", "prepare-base"} | (SUBNETS - {"train-subnet-70"}))


def test_changing_teacher_lr_recomputes_everything_downstream_of_it(cached_store):
    root, _ = cached_store
    computed = set(rerun(root, teacher_train=FAST.model_copy(update={"lr": 1e-3})).computed)
    assert {"train-teacher", "predict-teacher", "student-inputs-distil", "student-inputs-rmc",
            "train-imp40-distil", "train-imp40-rmc", "evaluate-accuracy", "report"} <= computed
    assert not computed & (SUBNETS | {"prepare-data", "prepare-base", "difficulty", "train-imp40-vanilla"})


def test_adding_a_seed_computes_only_that_seeds_branch(cached_store):
    root, first = cached_store
    two = rerun(root, seeds=(0, 1))
    computed, cached = set(two.computed), set(two.cached)
    assert {"train-teacher-s0", *(f"{n}-s0" for n in SUBNETS), "train-imp40-rmc-s0", "predict-imp40-rmc-s0"} <= cached
    assert {"train-teacher-s1", *(f"{n}-s1" for n in SUBNETS), "train-imp40-rmc-s1", "summarize"} <= computed
    assert not any(n.endswith("-s0") for n in computed)
    # One more branch, minus what does not depend on the seed: the data, and Vanilla's
    # (empty) per-sample inputs.
    branch = {n.removesuffix("-s1").split("#")[0] for n in computed}
    assert branch == set(first.computed) - {"prepare-data", "student-inputs-vanilla"}
    tables = Store(root).tables(two.report)
    by_seed = tables["results_by_seed"]
    assert sorted(set(by_seed["seed"])) == [0, 1]
    one = Store(root).tables(first.report)["results"].set_index("model")
    assert by_seed[by_seed["seed"] == 0].set_index("model")["acc_dev"].equals(one["acc_dev"])
    intervals = tables["results_interval"]
    defined = intervals.dropna(subset=["mean"])  # the teacher's F_bias against itself is undefined
    assert (intervals["n_seeds"] == 2).all() and (defined["low"] <= defined["mean"]).all()
    assert (defined["mean"] <= defined["high"]).all() and len(defined) >= len(intervals) - 1
    assert set(tables["comparisons"]["b"]) == {"imp40-vanilla", "imp40-distil", "teacher"}
    assert rerun(root, seeds=(0, 1)).computed == []


def test_structured_student_reuses_the_run_and_caches_like_the_others(cached_store, tmp_path, capsys):
    """Only the structured students and what reads them compute; a rerun computes nothing;
    each model is exported from the store by the reference the run lists."""
    from rmc.flows import cli

    root, _ = cached_store
    student = StudentConfig(compression=StructuredConfig(heads=0.25, neurons=0.25), train=FAST)
    run = new_students_only(root, student, {"train-h25n25-vanilla", "train-h25n25-rmc", "measure-inference"})
    costs = Store(root).table(run.inference, "inference").set_index("model")
    assert costs.loc["h25n25-rmc", "params"] < costs.loc["teacher", "params"]
    assert costs.loc["h25n25-rmc", "acc_dev"] == Store(root).tables(run.report)["results"].set_index("model").loc["h25n25-rmc", "acc_dev"]
    ref = costs.loc["h25n25-rmc", "ref"]
    assert cli.main(["export", ref[:20], "--store", str(root), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "pruned_bert.py").exists() and not (tmp_path / "hf" / "_run").exists()
    assert cli.main(["export", ref, "--store", str(root), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    assert json.loads((tmp_path / "onnx" / "parity.json").read_text())["max_abs_logit_difference"] <= 1e-4
    assert cli.main(["export", "model/0000", "--store", str(root), "--out", str(tmp_path / "x")]) == 2
    assert "no model in" in capsys.readouterr().err


def test_int8_students_are_models_of_their_own_made_from_the_cached_students(cached_store, tmp_path, capsys):
    """Post-training int8 reuses the trained students: only quantization, the int8 models'
    predictions and what reads them compute; the int8 models are evaluated, compared and
    measured like the others, and export as ONNX Runtime int8 graphs. Quantization-aware
    training retrains the students (with the rounding simulated) and caches like them."""
    from rmc.flows import cli

    root, _ = cached_store
    dynamic = rerun(root, student=StudentConfig(train=FAST, quantize="dynamic-int8"))
    assert {f"quantize-imp40-{m}-int8" for m in METHODS} <= set(dynamic.computed)
    assert not any(name.startswith("train-") for name in dynamic.computed)
    tables = Store(root).tables(dynamic.report)
    results = tables["results"].set_index("model")
    assert results.loc["imp40-rmc-int8", "compression"] == "pruned+dynamic-int8"
    assert 0 <= results.loc["imp40-rmc-int8", "acc_dev"] <= 1
    costs = Store(root).table(dynamic.inference, "inference").set_index("model")
    assert costs.loc["imp40-rmc-int8", "weights_mb"] < 0.7 * costs.loc["imp40-rmc", "weights_mb"]
    assert costs.loc["imp40-rmc-int8", "params"] == costs.loc["imp40-rmc", "params"]
    pairs = set(zip(tables["comparisons"]["a"], tables["comparisons"]["b"]))
    assert {("imp40-rmc-int8", "imp40-vanilla-int8"), ("imp40-rmc", "imp40-vanilla")} <= pairs
    ref = costs.loc["imp40-rmc-int8", "ref"]
    assert cli.main(["export", ref, "--store", str(root), "--format", "hf", "--out", str(tmp_path / "hf")]) == 2
    assert "--format onnx" in capsys.readouterr().err and not (tmp_path / "hf").exists()
    assert cli.main(["export", ref, "--store", str(root), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    parity = json.loads((tmp_path / "onnx" / "parity.json").read_text())
    assert parity["graph"] == "int8" and parity["max_abs_logit_difference"] <= parity["tolerance"]

    qat = StudentConfig(train=FAST, quantize="qat-int8")
    assert {"train-imp40-rmc", "quantize-imp40-rmc-int8"} <= set(rerun(root, ("rmc",), student=qat).computed)
    assert rerun(root, ("rmc",), student=qat).computed == []


def test_the_attack_is_a_cached_stage_per_model_and_its_settings_recompute_only_it(cached_store, tmp_path):
    """Switching the attack on adds one stage per model and nothing upstream; changing an
    attack setting recomputes those stages and what reads them, nothing else; its figures
    reach the summary tables (the Prefect artifact's) and attack_examples.md."""
    from rmc.flows.commands import write_report
    from rmc_core.report import summary_tables

    root, _ = cached_store
    attacks = {f"attack-{m}" for m in ("teacher", *(f"imp40-{x}" for x in METHODS))}
    readers = attacks | {"evaluate-attack", "report", "summarize", "measure-inference"}
    on = rerun(root, attack=AttackConfig(examples=10, candidates=10))
    assert attacks <= set(on.computed) <= readers
    changed = rerun(root, attack=AttackConfig(examples=10, candidates=10, min_similarity=0.8))
    assert attacks <= set(changed.computed) <= readers
    assert rerun(root, attack=AttackConfig(examples=10, candidates=10, min_similarity=0.8)).computed == []
    store = Store(root)
    tables = store.tables(changed.report)
    results = tables["results"].set_index("model")
    for model in ("teacher", *(f"imp40-{x}" for x in METHODS)):
        r = results.loc[model]
        assert 0 <= r["attack_accuracy"] <= r["attack_clean_accuracy"] <= 1 and r["attack_queries"] >= 1
    comparisons = tables["comparisons"].set_index(["a", "b", "metric"])
    for a, b in (("imp40-rmc", "imp40-vanilla"), ("imp40-rmc", "teacher"), ("imp40-vanilla", "teacher")):
        row = comparisons.loc[(a, b, "attack_accuracy")]
        assert row["difference"] == pytest.approx(results.loc[a, "attack_accuracy"] - results.loc[b, "attack_accuracy"])
        assert row["low"] <= row["difference"] <= row["high"]
    # The same rows for every model, chosen by the dev set and the attack's seed alone.
    dev = stages.load_data(store, changed.artifacts["prepare-data"]).dev
    for name in attacks:
        assert store.table(changed.artifacts[name], "rows")["row"].tolist() == attacked_rows(dev, 10, 0).tolist()
    examples = tables["attack_examples"]
    assert (examples["before"] == examples["gold"]).all() and (examples.groupby("model").size() <= 20).all()
    broken = examples[examples["success"]]
    assert (broken["after"] != broken["gold"]).all() and (broken["original"] != broken["adversarial"]).all()
    assert "acc. under attack" in summary_tables(tables)[0].columns
    write_report(tables, tmp_path, "synthetic")
    assert "## imp40-rmc" in (tmp_path / "attack_examples.md").read_text()


def test_masked_students_start_from_the_cached_teacher_and_cache_like_the_others(cached_store):
    """Mask training on the teacher (SRNets' scenario 1): only the masked students and what
    reads them compute, from the run's cached teacher; a rerun computes nothing."""
    root, first = cached_store
    student = StudentConfig(compression=MaskedConfig(sparsity=0.5), train=FAST)
    run = new_students_only(root, student, {"train-mask50-vanilla", "train-mask50-rmc"}, ("vanilla", "rmc"))
    results = Store(root).tables(run.report)["results"].set_index("model")
    assert results.loc["mask50-rmc", "sparsity"] == 0.5


def test_module_replacing_students_start_from_the_cached_teacher_and_combine_with_int8(cached_store):
    """Theseus successors train from the run's cached teacher, then become int8: the
    combined strategy of Xu et al. in one run; a rerun computes nothing."""
    root, _ = cached_store
    student = StudentConfig(compression=TheseusConfig(successors=1), train=FAST, quantize="dynamic-int8")
    run = new_students_only(root, student, {"train-theseus1-rmc", "quantize-theseus1-rmc-int8"}, ("vanilla", "rmc"))
    costs = Store(root).table(run.inference, "inference").set_index("model")
    assert costs.loc["theseus1-rmc", "params"] < costs.loc["teacher", "params"]
    assert costs.loc["theseus1-rmc-int8", "weights_mb"] < costs.loc["theseus1-rmc", "weights_mb"]


def test_sparse_progressive_students_start_from_the_cached_teacher_and_cache_like_the_others(cached_store):
    """SPD's successors are pruned copies of the run's cached teacher's layers; with RMC its
    smoothed targets drive the soft cross-entropy; a rerun computes nothing."""
    root, _ = cached_store
    student = StudentConfig(compression=SpdConfig(sparsity=0.5, pruning_events=2), train=FAST)
    run = new_students_only(root, student, {"train-spd50-vanilla", "train-spd50-rmc"}, ("vanilla", "rmc"))
    results = Store(root).tables(run.report)["results"].set_index("model")
    assert results.loc["spd50-rmc", "achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_deleted_artifact_is_rebuilt_instead_of_failing(cached_store):
    root, first = cached_store
    store = Store(root)
    teacher = first.artifacts["train-teacher"]
    shutil.rmtree(store.path(teacher))
    again = rerun(root)
    assert "train-teacher" in again.computed
    assert store.exists(teacher)  # seeded CPU training rebuilt the same bytes
    assert not set(again.computed) & (SUBNETS | {"prepare-data", "prepare-base", "difficulty"})


def test_two_cpu_slots_run_two_subnetworks_at_once(cached_store):
    """From the cached teacher, sub-networks trained long enough (8 epochs) that two
    running at once overlap in time."""
    root, _ = cached_store
    two = rmc_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
    slow = SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST.model_copy(update={"epochs": 8}))
    run = two(RmcParameters(config=tiny_run_config(methods=("vanilla",), subnetworks=slow), store_root=str(root),
                            devices=["cpu", "cpu"]))
    assert SUBNETS <= set(run.computed) and "train-teacher" in run.cached
    store = Store(root)
    stats = [json.loads((store.path(run.artifacts[name]) / "_run" / "train_stats.json").read_text()) for name in SUBNETS]
    subnets = sorted((s["started_at"], s["finished_at"]) for s in stats)
    assert len(subnets) == len(TINY_SPARSITIES)
    assert any(a_end > b_start for (_, a_end), (b_start, _) in zip(subnets, subnets[1:]))


def test_failing_stage_fails_the_flow_with_its_own_error(prefect_api, tmp_path):
    from rmc_core.data.registry import TASKS

    sources = TASKS["qqp"].sources["local"]
    for src in (sources.dev, *sources.ood.values()):  # present, so that the data check passes; never read
        (tmp_path / src.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / src.path).touch()
    (tmp_path / sources.train.path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / sources.train.path).write_text('{"0": {"text_a": "a", "text_b": "b", "label": "7"}}')
    cfg = tiny_run_config(task="qqp", data=tiny_run_config().data.model_copy(update={"data_root": tmp_path}))
    with pytest.raises(DataError, match=r"qqp/train \(.*train.json\): unknown label values \['7'\]"):
        rmc_flow(RmcParameters(config=cfg, store_root=str(tmp_path / "store")))


def test_an_experiment_runs_each_arm_as_a_named_child_run_and_compares_them(cached_store):
    """Two arms from the cached run's store: main is that run (all cached), shuffled trains
    one RMC student; the declared comparison across them is computed from their predictions."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentTaskRunId

    root, first = cached_store
    base = tiny_run_config(methods=METHODS).model_dump(mode="json", exclude={"seeds"})
    base["subnetworks"].pop("estimator")
    exp = ExperimentConfig(name="flow-test", base=base, comparisons=("main:rmc - shuffled:rmc",),
                           arms=(Arm(name="main"), Arm(name="shuffled", set={"methods": ["rmc"], "subnetworks.estimator": "shuffled"})))
    summary = experiment_flow(ExperimentParameters(experiment=exp, store_root=str(root)))
    assert summary.runs["main"] == first.report  # the cached run, not a second one
    tables = Store(root).tables(summary.report)
    declared = tables["comparisons"].query("declared == 'main:rmc - shuffled:rmc'")
    assert set(declared["a_run"]) == {"main"} and set(declared["b_run"]) == {"shuffled"}
    assert set(declared["interval"]) >= {"envelope"} and set(declared["n_seeds"]) == {1}
    assert set(tables["by_seed"]["arm"]) == {"main", "shuffled"}
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_task_run_id=FlowRunFilterParentTaskRunId(
            is_null_=False)))
    names = {r.name.rsplit("-", 3)[0] for r in children}  # readable name, then start time and id
    assert {"flow-test-main", "flow-test-shuffled"} <= names


@pytest.mark.parametrize("bad", [{"grid": {"student.compression.sparsity": [1.5]}}, {"base": {"task": "mnlii"}},
                                 {"arms": [{"name": "a", "set": {"methods": ["rmcc"]}}]}, {"base": {"seeds": [0]}}])
def test_an_experiment_with_a_bad_run_is_refused_before_any_run(bad):
    with pytest.raises(ValidationError):
        ExperimentParameters(experiment={"name": "bad", **bad})


def test_bad_parameters_are_refused_before_any_task_runs(prefect_api, tmp_path):
    from prefect.exceptions import ParameterTypeError

    bad = {"config": {"student": {"sparsity": 1.5}}, "store_root": str(tmp_path / "store")}
    with pytest.raises(ParameterTypeError, match="sparsity"):
        rmc_flow(params=bad)
    assert not (tmp_path / "store").exists()


def test_two_seeded_runs_write_byte_identical_result_files(cli_run, tmp_path):
    """Costs (seconds, throughput) and inference timings are the only things that differ
    between identical runs, and they go to their own files; every results file is byte
    for byte the same. The second run computes everything again in a store of its own."""
    from rmc.flows import cli

    config, store1, out1 = cli_run
    out2 = tmp_path / "out2"
    assert cli.main(["run", "--config", str(config), "--store", str(tmp_path / "store2"), "--out", str(out2)]) == 0
    assert json.loads((out2 / "summary.json").read_text())["cached"] == ["train-imp40-vanilla"]  # nothing from the first store
    measured = ("costs.csv", "summary.json", "inference.csv", "inference.parquet", "inference.md")  # timings differ by run
    files = sorted(p.name for p in out1.iterdir() if p.name not in measured)
    assert {"results.csv", "results.parquet", "results.md", "comparisons.csv", "report.png"} <= set(files)
    for name in files:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    inference = pd.read_csv(out1 / "inference.csv")
    assert list(inference["model"]) == ["teacher", "imp40-vanilla", "imp40-distil", "imp40-rmc"]
    sizes = ["model", "params", "nonzero_params", "weights_mb", "ref"]  # the same models: only timings differ
    pd.testing.assert_frame_equal(inference[sizes], pd.read_csv(out2 / "inference.csv")[sizes])
    assert (inference["latency_b1_ms"] > 0).all()
    models = json.loads((out1 / "summary.json").read_text())["models"]
    assert {m["name"]: f"model/{m['model']['digest']}" for m in models} == dict(zip(inference["model"], inference["ref"]))
    assert [(m["role"], m["compression"], m["sparsity"], m["method"], m["seed"]) for m in models] == [
        ("teacher", "none", 0.0, "vanilla", 0), ("student", "pruned", 0.4, "vanilla", 0), ("student", "pruned", 0.4, "distil", 0),
        ("student", "pruned", 0.4, "rmc", 0)]
    from rmc.benchmarks.inference import measure
    from rmc_core.finished import run_models

    both, rounds = measure([m for run in (out1, out2) for m in run_models(run)], Store(store1), rows=8, max_length=32,
                           repeats=2, reference="imp40-vanilla")
    assert list(both["model"]) == list(inference["model"])  # the second run's models are the same ones
    assert both.set_index("model").loc["teacher", "speedup_b1"] == 1.0
    np.testing.assert_allclose(both["acc_dev"], inference["acc_dev"])  # from the stored predictions, as the run's
    reference = both.set_index("model").loc["imp40-vanilla"]
    assert reference["dev_minus_reference"] == 0 and reference["non_inferior"]
    teacher_gap = both.set_index("model").loc["teacher", "dev_minus_reference"]
    assert teacher_gap == pytest.approx(both.set_index("model").loc["teacher", "acc_dev"] - reference["acc_dev"])
    # Every round of every model is kept, so the medians and intervals can be recomputed.
    assert len(rounds) == 2 * len(both) and (rounds[["seconds_b1", "seconds_batched"]] > 0).all().all()
    latency = rounds[rounds["model"] == "teacher"]["seconds_b1"].median() / 8 * 1000
    assert latency == pytest.approx(both.set_index("model").loc["teacher", "latency_b1_ms"])
    # The OOD-set check scores each model as the run did: the same accuracy, beside the set's majority rate.
    from rmc.benchmarks.ood_sets import check

    stored = Store(store1).refs()
    checked = check(run_models(out1), Store(store1)).set_index("model")
    assert Store(store1).refs() == stored  # every set is the run's own: its stored predictions, nothing new
    # A set the run did not score (here: its data without OOD sets) is predicted now, to the same accuracy.
    listed = run_models(out1)
    tables = Store(store1).tables(listed[0].data)
    no_ood = Store(store1).put_tables({k: v for k, v in tables.items() if k in ("train", "dev")}, kind="data",
                                      meta=Store(store1).meta(listed[0].data))
    again = check([m._replace(data=no_ood) for m in listed], Store(store1)).set_index("model")
    assert len(Store(store1).refs()) == len(stored) + 1 + len({m.model for m in listed})
    np.testing.assert_allclose(again["accuracy"], checked["accuracy"])
    results = pd.read_csv(out1 / "results.csv").set_index("model")
    np.testing.assert_allclose(checked["accuracy"], results.loc[checked.index, "acc_ood"])
    assert (checked["majority"] >= 1 / 3).all() and checked["minus_teacher"].isna().sum() == 1
    assert checked.loc["imp40-vanilla", "minus_teacher"] == pytest.approx(
        results.loc["imp40-vanilla", "acc_ood"] - results.loc["teacher", "acc_ood"])
    costs = pd.read_csv(out1 / "costs.csv")
    assert {"train-teacher", "evaluate-accuracy", "report"} <= set(costs["stage"]) and (costs["seconds"] > 0).all()
    # Each training's MFU against this CPU's own matmul peak, on real and on padded tokens.
    trained = costs[costs["stage"].str.startswith("train-")].set_index("stage")
    assert (trained["peak_flops"] > 0).all() and (trained["mfu"] > 0).all()
    assert (trained["mfu"] <= trained["mfu_padded"]).all() and (trained["mfu_padded"] < 1.5).all()
    # And each prediction's, at 2 rather than 6 FLOPs per parameter and token.
    predicted = costs[costs["stage"].str.startswith("predict-")].set_index("stage")
    # The path `auto` takes on this CPU: bf16 where it computes bf16 natively, else fp32.
    expected = resolve_precision("auto", "cpu")
    assert len(predicted) >= 4 and (predicted["precision"] == expected).all() and (predicted["mfu"] > 0).all()
    assert (predicted["mfu"] <= predicted["mfu_padded"]).all() and (predicted["mfu_padded"] < 1.5).all()
    assert costs.set_index("stage").loc["evaluate-accuracy", ["mfu"]].isna().all()  # not a model's work


def test_a_corrupt_artifact_is_quarantined_and_recomputed(cached_store, tmp_path):
    """One flipped byte in a stored model: the next run notices (digest mismatch), moves the
    model aside and retrains it, and ends with the same results as the clean run."""
    from rmc.flows import cli

    clean_root, first = cached_store
    root = tmp_path / "store"
    shutil.copytree(clean_root, root)
    teacher = first.artifacts["train-teacher"]
    weights = Store(root)._final(teacher) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))

    again = rerun(root)
    assert "train-teacher" in again.computed
    assert again.report == first.report and again.artifacts == first.artifacts
    quarantined = list((root / "quarantine").iterdir())
    assert [p.name.split("-")[:2] for p in quarantined] == [["model", teacher.digest]]
    assert cli.main(["verify", "--store", str(root)]) == 0


def test_verify_reports_and_quarantines_a_truncated_table(cached_store, tmp_path, capsys):
    from rmc.flows import cli

    clean_root, first = cached_store
    root = tmp_path / "store"
    shutil.copytree(clean_root, root)
    report = Store(root)._final(first.report) / "results.parquet"
    report.write_bytes(report.read_bytes()[:100])
    assert cli.main(["verify", "--store", str(root)]) == 1
    assert (f"tables {first.report.digest[:12]}: its bytes do not match its digest (corrupt or partial); quarantined"
            in capsys.readouterr().err)
    assert not Store(root).exists(first.report)
