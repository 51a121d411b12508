"""Experiments: declared grids of runs, compared arm against arm over seeds (rmc_core/experiment*.py).

One tiny experiment (two arms x two grid points x two seeds) runs in process once per
module; its halves run seed by seed and merge. The Prefect flow of an experiment is
tested in tests/test_flow.py; the served weekly experiment in tests/test_deployment_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from rmc.flows.cli import main
from rmc.tasks.in_process import arm_in_process, resuming
from rmc_core.evaluation.statistics import holm, paired_t_p_value, seed_interval, seeds_for_power
from rmc_core.experiment import ExperimentConfig, Side, parse_comparison, read_experiment
from rmc_core.experiment_report import markdown, read_merged
from rmc_core.experiment_run import model_of, run_experiment
from rmc_core.store import IN_PROCESS, Ref, Store
from tests.conftest import REPO, tiny_run_config


def tiny_base() -> dict:
    """The tiny run as an experiment's base: without seeds, methods or the fields the arms vary."""
    base = tiny_run_config().model_dump(mode="json", exclude={"seeds", "methods"})
    base["subnetworks"].pop("estimator")
    base["data"].pop("synthetic_bias")
    base["data"]["synthetic_dev"] = 120
    return base


def tiny_experiment(**changes) -> dict:
    return {"name": "tiny", "base": tiny_base(),
            "arms": [{"name": "main", "set": {"methods": ["vanilla", "rmc"]}},
                     {"name": "shuffled", "set": {"methods": ["rmc"], "subnetworks.estimator": "shuffled"}}],
            "grid": {"data.synthetic_bias": [0.8, 0.9]}, "seeds": [0, 1],
            "comparisons": ["main:rmc - shuffled:rmc", "vanilla - rmc"]} | changes


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The tiny experiment run in process: its config, store and tables."""
    exp = ExperimentConfig.model_validate(tiny_experiment())
    root = tmp_path_factory.mktemp("experiment-store")
    store = Store(root)
    tables, metrics = run_experiment(exp, store, arm_in_process(root, ["cpu"]), resuming(store))
    return exp, root, tables, metrics


def test_every_arm_runs_at_every_grid_point_with_the_experiments_seeds():
    runs = ExperimentConfig.model_validate(tiny_experiment()).runs()
    assert [r.label for r in runs] == ["main-synthetic_bias=0.8", "main-synthetic_bias=0.9", "shuffled-synthetic_bias=0.8",
                                       "shuffled-synthetic_bias=0.9"]
    assert {r.config.seeds for r in runs} == {(0, 1)}
    assert runs[2].config.subnetworks.estimator == "shuffled" and runs[2].config.methods == ("rmc",)
    assert runs[1].config.data.synthetic_bias == 0.9 and runs[1].columns == {"arm": "main", "data.synthetic_bias": 0.9}


@pytest.mark.parametrize("change, message", [
    ({"base": tiny_base() | {"seeds": [0]}}, "seeds are its own field"),
    ({"grid": {"seeds": [[0], [1]]}}, "cannot vary by arm"),
    ({"grid": {"teacher_train.epochs": [1.0, 2.0]}}, "set in base and varied by the grid"),
    ({"arms": [{"name": "main", "set": {"data.synthetic_bias": 0.7}}]}, "which the grid varies"),
    ({"arms": [{"name": "a"}, {"name": "a"}]}, "arms listed twice"),
    ({"grid": {"data.synthetic_bias": [0.8, 0.8]}}, "lists a value twice"),
    ({"comparisons": ["main:rmc - nowhere:rmc"]}, "no arm 'nowhere'"),
    ({"comparisons": ["main:rmc - vanilla"]}, "on both sides"),
    ({"comparisons": ["rmc-vanilla"]}, "spaces around the minus"),
    ({"comparisons": ["distil - vanilla"]}, "trains a 'distil' student"),
    ({"grid": {"data.synthetic_bias": [0.8, 1.5]}}, r"run main-synthetic_bias=1.5: data.synthetic_bias"),
    ({"name": "Tiny Experiment"}, "name"),
])
def test_a_bad_experiment_is_refused_naming_what_to_fix(change, message):
    with pytest.raises(ValidationError, match=message):
        ExperimentConfig.model_validate(tiny_experiment(**change))


def test_a_comparison_names_its_sides_by_arm_and_method():
    a, b = parse_comparison("main:smooth-matched - shuffled:rmc")
    assert (a.arm, a.model, b.arm, b.model) == ("main", "smooth-matched", "shuffled", "rmc")
    a, b = parse_comparison("rmc - teacher")
    assert (a.arm, b.arm, b.model) == (None, None, "teacher")


def test_a_side_names_a_quantized_copy_only_where_the_run_quantizes():
    a, b = parse_comparison("l6:vanilla+dynamic-int8 - l6:vanilla")
    assert (a.arm, a.model, a.quantize, b.quantize) == ("l6", "vanilla", "dynamic-int8", None)
    assert str(a) == "l6:vanilla+dynamic-int8"
    with pytest.raises(ValueError, match="the teacher has no quantized copy"):
        parse_comparison("teacher+dynamic-int8 - rmc")
    with pytest.raises(ValidationError, match="'rmc\\+dynamic-int8' student"):
        ExperimentConfig.model_validate(tiny_experiment(comparisons=["rmc+dynamic-int8 - rmc"]))
    quantized = tiny_experiment(comparisons=["main:rmc+dynamic-int8 - main:rmc", "rmc+dynamic-int8 - teacher"])
    quantized["base"]["student"]["quantize"] = "dynamic-int8"
    run = ExperimentConfig.model_validate(quantized).runs()[0]
    assert model_of(run, Side("main", "rmc", "dynamic-int8")) == "imp40-rmc-int8"
    assert model_of(run, Side("main", "rmc")) == "imp40-rmc"


def test_the_shipped_real_data_experiment_checks_its_inputs_and_the_hub_one_says_what_it_needs(
        data_root, tmp_path, monkeypatch, capsys):
    """`--check` on cpu-small reads every run's real inputs (../shared/data beside the working
    folder, as on a checkout); paper.yaml, offline, is refused naming the hub model."""
    (tmp_path / "shared").symlink_to(data_root.parent)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main(["experiment", str(REPO / "experiments" / "cpu-small.yaml"), "--check"]) == 0
    assert "cpu-small: 7 runs, inputs OK" in capsys.readouterr().out
    monkeypatch.setattr("rmc_core.models.hub_reachable", lambda: False)
    assert main(["experiment", str(REPO / "experiments" / "paper.yaml"), "--check"]) == 2
    assert "model 'bert-base-uncased' is not a local folder and cannot be fetched from the hub" in capsys.readouterr().err


def test_the_report_keeps_identity_columns_and_every_seed(ran):
    exp, _, tables, metrics = ran
    by_seed = tables["by_seed"]
    assert {"run", "arm", "data.synthetic_bias", "model", "role", "compression", "method", "seed"} <= set(by_seed.columns)
    assert sorted(by_seed["seed"].unique()) == [0, 1]
    assert len(by_seed) == 2 * (2 * 3 + 2 * 2)  # seeds x (main: teacher + 2 students; shuffled: teacher + rmc) per point
    assert "acc_synthetic-ood" in metrics and "acc_dev" in metrics
    premise = tables["premise"]
    assert {"teacher_dev_hard", "subnetwork_dev_easy", "split_agreement", "split_agreement_chance"} <= set(premise["check"])


def test_model_intervals_are_t_intervals_over_the_per_seed_values(ran):
    _, _, tables, _ = ran
    row = tables["models"].query("run == 'main-synthetic_bias=0.8' and model == 'imp40-rmc' and metric == 'acc_dev'").iloc[0]
    values = tables["by_seed"].query("run == 'main-synthetic_bias=0.8' and model == 'imp40-rmc'")["acc_dev"].to_numpy()
    expected = seed_interval(values)
    assert (row["mean"], row["low"], row["high"]) == pytest.approx((expected.estimate, expected.low, expected.high))


def test_declared_comparisons_across_arms_pair_by_seed_with_the_envelope(ran):
    _, _, tables, _ = ran
    compared = tables["comparisons"]
    across = compared[(compared["declared"] == "main:rmc - shuffled:rmc") & (compared["metric"] == "acc_synthetic-ood")]
    assert len(across) == 2  # one per grid point
    assert set(across["a_method"]) == set(across["b_method"]) == {"rmc"} and set(across["a_role"]) == {"student"}
    by_seed = tables["by_seed"]
    for r in across.itertuples():
        assert r.a_run.startswith("main-") and r.b_run.startswith("shuffled-") and r.a_run[5:] == r.b_run[9:]
        a = by_seed.query("run == @r.a_run and model == 'imp40-rmc'").set_index("seed")["acc_synthetic-ood"]
        b = by_seed.query("run == @r.b_run and model == 'imp40-rmc'").set_index("seed")["acc_synthetic-ood"]
        t = seed_interval((a - b.loc[a.index]).to_numpy())
        assert r.difference == pytest.approx(t.estimate)
        assert (r.t_low, r.t_high) == pytest.approx((t.low, t.high))
        # The same rows on both sides: the envelope of the bootstrap and t contains both.
        # (1e-6: the envelope is computed from float32 per-row scores, the test from by_seed.csv)
        assert r.interval == "envelope" and r.low <= min(t.low, r.bootstrap_low) + 1e-6
        assert r.high >= max(t.high, r.bootstrap_high) - 1e-6
    within = compared[compared["declared"] == "vanilla - rmc"]
    assert set(within["a"]) == {"imp40-vanilla"} and (within["a_run"] == within["b_run"]).all()
    # A run's own comparisons carry its envelope on the metrics it pairs (accuracies, F_bias);
    # the others (loyalty, train fit) are compared over seeds only.
    own = compared[(compared["declared"] == "") & (compared["b"] == "teacher")]
    assert (own.loc[own["metric"].isin(["acc_dev", "acc_synthetic-ood"]), "interval"] == "envelope").all()
    assert (own.loc[own["metric"] == "label_loyalty", "interval"] == "t over seeds").all()


def test_each_comparison_says_the_seeds_its_power_needs_and_when_it_is_no_effect(ran):
    """On accuracies: the seeds 80 % power needs for 2 points at the per-seed spread seen, the
    paired t-test's p-value, and "no effect beyond +-1 point" only for an interval inside it."""
    exp, _, tables, _ = ran
    compared = tables["comparisons"]
    acc = compared[compared["metric"] == "acc_synthetic-ood"]
    for r in acc.itertuples():
        a = tables["by_seed"].query("run == @r.a_run and model == @r.a").set_index("seed")["acc_synthetic-ood"]
        b = tables["by_seed"].query("run == @r.b_run and model == @r.b").set_index("seed")["acc_synthetic-ood"]
        d = (a - b.loc[a.index]).to_numpy()
        assert r.sd_seeds == pytest.approx(d.std(ddof=1)) and r.p_value == pytest.approx(paired_t_p_value(d), nan_ok=True)
        assert r.seeds_for_power == seeds_for_power(d.std(ddof=1), exp.min_effect) and r.min_effect == 0.02
        assert r.within_margin == (r.n_seeds > 1 and -0.01 < r.low and r.high < 0.01)
    assert compared.loc[compared["metric"] == "f_bias", "seeds_for_power"].isna().all()  # not a share: no points
    assert not compared.loc[compared["metric"] == "f_bias", "within_margin"].any()
    shown = markdown(exp, tables, ["acc_synthetic-ood", "acc_dev"], "rmc experiment tiny.yaml")
    assert "seeds for 80 % power" in shown and "detect 2 points" in shown and "±1 point." in shown


def test_the_artifacts_table_says_where_every_model_of_every_run_is(ran):
    """artifacts.csv: the tools that take an experiment's models (the inference benchmark,
    export) find each run's weights and predictions in the store without the report."""
    exp, root, tables, _ = ran
    listed, store = tables["artifacts"], Store(root)
    assert set(listed["run"]) == {r.label for r in exp.runs()} and set(listed["seed"]) == {0, 1}
    by_seed = tables["by_seed"]
    assert len(listed) == len(by_seed) and set(zip(listed["run"], listed["model"], strict=True)) == set(
        zip(by_seed["run"], by_seed["model"], strict=True))
    for column in ("model_ref", "predictions_ref", "data_ref"):
        kind, _, digest = listed[column].iloc[-1].partition("/")
        assert store.path(Ref(kind=kind, digest=digest)).exists()


def test_a_rerun_computes_nothing_and_reports_the_same(ran):
    exp, root, tables, _ = ran
    records = sorted((root / IN_PROCESS).iterdir())
    store = Store(root)
    again, _ = run_experiment(exp, store, arm_in_process(root, ["cpu"]), resuming(store))
    assert sorted((root / IN_PROCESS).iterdir()) == records
    pd.testing.assert_frame_equal(again["comparisons"], tables["comparisons"])


def test_seeds_run_apart_merge_into_the_same_t_intervals(ran, tmp_path):
    """Each seed as its own experiment (from the same store), merged: the per-seed values
    are the two-seed experiment's, and so are its t-intervals."""
    exp, root, tables, _ = ran
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_experiment()))
    folders = []
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}"
        assert main(["experiment", str(path), "--seeds", str(seed), "--runner", "in-process", "--device", "cpu",
                     "--store", str(root), "--out", str(out)]) == 0
        folders.append(out)
    merged = tmp_path / "merged"
    assert main(["experiment", "--merge", *map(str, folders), "--store", str(root), "--out", str(merged)]) == 0
    compared = pd.read_csv(merged / "comparisons.csv", keep_default_na=False, na_values=[""])
    assert set(compared["interval"]) == {"t over seeds"}
    key = ["a_run", "a", "b_run", "b", "metric"]
    both = compared.merge(tables["comparisons"], on=key, suffixes=("", "_fresh"))
    assert len(both) == len(tables["comparisons"])
    np.testing.assert_allclose(both["t_low"], both["t_low_fresh"], rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(both["difference"], both["difference_fresh"], rtol=1e-6)
    assert "rmc experiment --merge" in (merged / "experiment.md").read_text()
    assert (merged / "experiment.png").stat().st_size > 0
    listed = pd.read_csv(merged / "artifacts.csv")
    pd.testing.assert_frame_equal(listed.sort_values(["run", "seed", "model"], ignore_index=True),
                                  tables["artifacts"].sort_values(["run", "seed", "model"], ignore_index=True))


def test_merging_refuses_other_designs_and_a_seed_twice(ran, tmp_path):
    exp, *_ = ran
    folders = []
    for name, changes in (("a", {"seeds": (0,)}), ("b", {"seeds": (0,)}), ("c", {"seeds": (1,), "comparisons": ()})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "experiment.json").write_text(exp.model_copy(update=changes).model_dump_json())
        folders.append(tmp_path / name)
    with pytest.raises(ValueError, match="more than one"):
        read_merged(folders[:2])
    with pytest.raises(ValueError, match="different designs"):
        read_merged([folders[0], folders[2]])


def test_the_cli_checks_every_run_before_any_runs(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    bad = tiny_experiment(grid={"student.compression.sparsity": [0.4, 0.99]})
    bad["base"]["student"]["compression"].pop("sparsity")
    bad["base"]["student"]["train"]["max_length"] = 4096
    path.write_text(json.dumps(bad))
    assert main(["experiment", str(path), "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out")]) == 2
    assert "run main-sparsity=0.4: student.train.max_length=4096 exceeds" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_every_shipped_experiment_file_is_valid():
    files = sorted((REPO / "experiments").glob("*.yaml"))
    assert files, "experiments/ holds the declared experiments"
    for path in files:
        assert read_experiment(path).runs(), path


def test_the_command_line_refuses_a_file_and_merge_together(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rmc.flows.cli", "experiment", str(REPO / "experiments" / "weekly.yaml"),
                             "--merge", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "name no file" in result.stderr


# The sweeps whose per-seed files were migrated to experiment folders (docs/results/experiments/),
# and the committed tables they were reported in.
MIGRATED = {"synthetic-0.9": "synthetic-0.9/synthetic_sweep.csv", "synthetic-0.8": "synthetic-0.8-seeds01234/synthetic_sweep.csv",
            "shortcut-mnli": "shortcut-mnli-0.7-seeds012/shortcut-mnli_sweep.csv"}


@pytest.mark.parametrize("name", sorted(MIGRATED))
def test_the_migrated_per_seed_files_reproduce_the_committed_t_intervals(name, tmp_path):
    """The experiment report's t-intervals, computed from the migrated per-seed files,
    are the ones the sweep reported (each model over seeds, RMC against each control and,
    where the sweep merged seeds, against each baseline and the teacher); envelopes need
    per-example data, which the migrated files do not keep."""
    results = REPO / "docs" / "results"
    out = tmp_path / "report"
    assert main(["experiment", "--merge", str(results / "experiments" / name), "--store", str(tmp_path / "store"),
                 "--out", str(out)]) == 0
    models, compared = pd.read_csv(out / "models.csv"), pd.read_csv(out / "comparisons.csv", keep_default_na=False,
                                                                       na_values=[""])
    old = pd.read_csv(results / MIGRATED[name])
    main_run = models.loc[models["arm"] == "main", "run"].iloc[0]
    merged_seeds = (old["kind"] == "minus_teacher").any()  # a merge of seeds: every comparison a t-interval
    checked = 0
    for r in old.itertuples():
        at = compared["metric"] == r.metric
        if r.kind == "model":
            row = models[(models["run"] == main_run) & (models["model"] == r.model) & (models["metric"] == r.metric)]
            got = row[["mean", "low", "high"]].iloc[0]
        elif r.kind == "rmc_minus_control":
            control = r.model.split("[")[1].rstrip("]")  # the sweep's label "imp40-rmc[shuffled]"
            got = compared[at & (compared["declared"] == f"main:rmc - {control}:rmc")][["difference", "t_low", "t_high"]].iloc[0]
        elif r.kind in ("rmc_minus", "minus_teacher") and merged_seeds:
            a, b = ("imp40-rmc", r.model) if r.kind == "rmc_minus" else (r.model, "teacher")
            own = at & (compared["a_run"] == main_run) & (compared["b_run"] == main_run)
            got = compared[own & (compared["a"] == a) & (compared["b"] == b)][["difference", "t_low", "t_high"]].iloc[0]
        else:
            continue
        np.testing.assert_allclose(got.to_numpy(dtype=float), [r.value, r.low, r.high], rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: {r}")
        checked += 1
    assert checked >= 20


def test_the_claims_view_judges_each_claim_on_the_reports_own_intervals(ran):
    """Every RMC - baseline and RMC - control cell named, each judged on its interval and,
    Holm-adjusted across the run's family, on its t-test; untestable where the teacher is
    not above the OOD set's majority-class rate."""
    exp, _, tables, _ = ran
    judged = tables["claims"]
    assert {"shortcut", "rmc-ood", "split", "gap", "cause"} <= set(judged["claim"])
    premise = tables["premise_by_seed"]
    for r in judged.itertuples():
        if r.testable == "no":
            assert r.verdict == r.verdict_holm == "untestable", r
            continue
        outside = r.low > 0 or r.high < 0
        assert (r.verdict != "unresolved") == outside, r
        assert (r.verdict_holm not in ("unresolved", "")) == (r.p_holm < 0.05), r
    for run in exp.runs():
        rows = judged[(judged["run"] == run.label) & (judged["claim"].isin(["rmc-ood", "cause"]))]
        if rows.empty:
            continue
        assert set(rows[rows["claim"] == "rmc-ood"]["versus"]) == {"imp40-vanilla"}
        assert rows[rows["claim"] == "cause"]["versus"].str.contains("shuffled").all()
        # Holm over the family of two: the smaller p-value doubled, the larger kept (both capped at 1).
        p = np.sort(rows["p_value"].to_numpy())
        np.testing.assert_allclose(np.sort(rows["p_holm"].to_numpy()), [min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))])
        # Testable as the premise says: the teacher's accuracy on the set against its majority-class rate.
        above = premise[(premise["run"] == run.label) & (premise["check"] == "teacher_ood_above_majority")]["value"]
        verdict = "yes" if seed_interval(above.to_numpy()).low > 0 else "no"
        assert set(rows["testable"]) == {verdict}


def test_holm_adjusts_a_family_step_down_and_leaves_one_seed_out():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02, np.nan])


# The testbeds of results.md's claims table: each experiment folder's committed claims.csv,
# which `rmc experiment --merge <folder>` writes from the folder's per-seed values.
CLAIMED = {"synthetic 0.9 (5 seeds)": "synthetic-0.9", "synthetic 0.8 (5 seeds)": "synthetic-0.8",
           "MNLI cpu-medium (3 seeds)": "cpu-medium-mnli", "shortcut-MNLI 0.7 (3 seeds)": "shortcut-mnli"}


@pytest.mark.parametrize("name", CLAIMED.values())
def test_the_claims_view_reproduces_the_committed_claims_table(name, tmp_path):
    folder = REPO / "docs" / "results" / "experiments" / name
    key = ["run", "claim", "metric", "versus"]
    committed = pd.read_csv(folder / "claims.csv", keep_default_na=False, na_values=[""]).set_index(key)
    out = tmp_path / name
    assert main(["experiment", "--merge", str(folder), "--store", str(tmp_path / "store"), "--out", str(out)]) == 0
    view = pd.read_csv(out / "claims.csv", keep_default_na=False, na_values=[""]).set_index(key)
    assert list(view.index) == list(committed.index)
    assert (view.index.get_level_values("claim") == "rmc-ood").sum() >= 3  # every baseline named, not the weakest
    numbers = ["estimate", "low", "high", "seeds_for_power", "p_value", "p_holm"]
    np.testing.assert_allclose(view[numbers].to_numpy(dtype=float), committed[numbers].to_numpy(dtype=float), rtol=1e-9)
    words = ["interval", "verdict", "verdict_holm", "testable"]
    pd.testing.assert_frame_equal(view[words], committed[words])
    assert view["interval"].notna().all() and (view["seeds_for_power"].dropna() >= 2).all()


# The tables the pairs and attack scripts committed, which the experiment files replaced, and
# the order those scripts read runs in (a model name found in several runs was taken from the
# first): per experiment folder, (committed file, what it holds, arm order).
GRID_ORDER = ["imp40", "mask40", "imp70", "mask70", "spd40", "spd70", "l3", "theseus3", "l6"]
FAMILIES_ORDER = ["l6", "imp40", "l3-lr2e-4", "theseus3-lr2e-4"]
SC_ORDER = ["imp40", "knownbias", "mask40", "spd40", "imp70", "mask70", "spd70"]
REPLACED = {
    "compression-synthetic-0.9": [
        ("compression-synthetic-0.9/models.csv", "models", GRID_ORDER),
        ("compression-synthetic-0.9/families_models.csv", "models", FAMILIES_ORDER),
        *((f"compression-synthetic-0.9/{f}_pairs.csv", "pairs", GRID_ORDER) for f in ("known_bias", "mask", "spd",
                                                                                       "upper_bound")),
        *((f"compression-synthetic-0.9/{f}_seed_pairs.csv", "seed_pairs", GRID_ORDER) for f in ("known_bias", "mask",
                                                                                                 "spd")),
        ("compression-synthetic-0.9/families_pairs.csv", "pairs", FAMILIES_ORDER),
        ("compression-synthetic-0.9/families_seed_pairs.csv", "seed_pairs", FAMILIES_ORDER)],
    "compression-shortcut-mnli": [("compression-shortcut-mnli-seed2/models.csv", "models", SC_ORDER),
                                  ("compression-shortcut-mnli-seed2/kinds_pairs.csv", "pairs", SC_ORDER),
                                  ("compression-shortcut-mnli-seed2/known_bias_pairs.csv", "pairs", SC_ORDER)],
    "cpu-medium-qqp": [("cpu_medium_qqp_comparisons.csv", "pairs", ["main"]),
                       ("cpu_medium_qqp_other_pairs.csv", "pairs", ["main"])],
    "structured-mnli": [("structured_mnli_pairs.csv", "pairs", ["structured", "imp40", "l3"])],
    "attack-synthetic-0.9": [("attack-synthetic-0.9/attack_results_interval.csv", "models", ["main"]),
                             ("attack-synthetic-0.9/attack_comparisons.csv", "pairs", ["main"])],
    "attack-fast-mnli": [("attack-fast-mnli/attack_results_by_seed.csv", "by_seed", ["imp40", "theseus3-lr2e-4",
                                                                                     "l3-lr2e-4"]),
                         ("attack-fast-mnli/attack_comparisons.csv", "pairs", ["imp40", "theseus3-lr2e-4", "l3-lr2e-4"])],
    "attack-cpu-medium-mnli": [("attack-cpu-medium-mnli/attack_results_by_seed.csv", "by_seed", ["main"]),
                               ("attack-cpu-medium-mnli/attack_comparisons.csv", "pairs", ["main"])],
}


def first_run(rows: pd.DataFrame, order: list[str], *columns: str) -> pd.Series:
    """The row whose runs come first in the script's reading order."""
    rank = rows[list(columns)].apply(lambda r: tuple(order.index(v) if v in order else 99 for v in r), axis=1)
    return rows.loc[rank.sort_values().index[0]]


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_the_migrated_script_results_reproduce_the_committed_figures(name, tmp_path):
    """Every committed figure of the replaced scripts, from the experiment report of the
    migrated per-seed files: each model's mean and t-interval over seeds, each pair's
    difference, t-interval and (kept from its run) envelope, each attacked model's values
    (to 1e-6, F_bias to 1e-4 plus 1e-5 relative: the scripts computed from float32 accuracies, the report from
    the float64 per-seed values)."""
    results = REPO / "docs" / "results"
    out = tmp_path / "report"
    assert main(["experiment", "--merge", str(results / "experiments" / name), "--store", str(tmp_path / "store"),
                 "--out", str(out)]) == 0
    read = {f: pd.read_csv(out / f"{f}.csv", keep_default_na=False, na_values=[""])
            for f in ("models", "comparisons", "by_seed")}
    checked = 0
    for file, kind, order in REPLACED[name]:
        old = pd.read_csv(results / file)
        for r in old.to_dict("records"):
            if kind == "models":
                rows = read["models"][(read["models"]["model"] == r["model"]) & (read["models"]["metric"] == r["metric"])]
                got, want = first_run(rows, order, "run")[["mean", "low", "high"]], [r["mean"], r["low"], r["high"]]
            elif kind == "by_seed":
                rows = read["by_seed"][(read["by_seed"]["model"] == r["model"]) & (read["by_seed"]["seed"] == r["seed"])]
                metrics = [c for c in old.columns if c not in ("model", "seed")]
                got, want = first_run(rows, order, "run")[metrics], [r[c] for c in metrics]
            else:
                compared = read["comparisons"]
                rows = compared[(compared["a"] == r["a"]) & (compared["b"] == r["b"]) & (compared["metric"] == r["metric"])]
                row = first_run(rows, order, "a_run", "b_run")
                if kind == "seed_pairs":  # t-intervals alone
                    got, want = row[["difference", "t_low", "t_high"]], [r["difference"], r["low"], r["high"]]
                else:
                    fields = ["low", "high"] + (["t_low", "t_high"] if "t_low" in r and not np.isnan(r["t_low"]) else [])
                    got, want = row[["difference", *fields]], [r["difference"], *(r[f] for f in fields)]
            ratio = r.get("metric") == "f_bias"  # F_bias divides by the teacher's small drop: float32 noise grows
            np.testing.assert_allclose(got.to_numpy(dtype=float), np.asarray(want, dtype=float),
                                       rtol=1e-5 if ratio else 1e-6, atol=1e-4 if ratio else 1e-6, err_msg=f"{name}: {file}: {r}")
            checked += 1
    assert checked >= 10, checked
