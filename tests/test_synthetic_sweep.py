"""The synthetic sweep's tables and plot, from a tiny two-seed run (the figures themselves
come from `python -m rmc.benchmarks.synthetic_sweep`, not from a test)."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from rmc.benchmarks.synthetic_sweep import (
    BASELINES,
    DESIGN,
    OOD,
    TESTBEDS,
    collect,
    control_config,
    control_rows,
    effect_rows,
    estimator_row,
    estimators_markdown,
    plot,
    premise_rows,
    scoring_seconds,
    sweep_config,
    with_shares,
)
from rmc_core.config import RunConfig
from rmc.tasks.in_process import run_in_process
from rmc_core.report import NO_ANNOTATION, markdown_report, premise_lines
from rmc_core.stages import DYNAMICS_COST
from rmc_core.store import Store
from tests.conftest import tiny_run_config


@pytest.fixture(scope="module")
def design_run(tmp_path_factory):
    """The tiny design at strength 0.8 over two seeds, run in process (resumable), with its store."""
    cfg = tiny_run_config(methods=DESIGN.methods, seeds=(0, 1),
                          data=tiny_run_config().data.model_copy(update={"synthetic_dev": 240, "synthetic_bias": 0.8}))
    root = tmp_path_factory.mktemp("store")
    return cfg, root, run_in_process(cfg, root)


@pytest.fixture(scope="module")
def tables(design_run):
    return design_run[2]


def test_sweep_config_changes_only_strength_and_seeds():
    cfg = sweep_config(0.7, (0, 1, 2))
    assert cfg.data.synthetic_bias == 0.7 and cfg.seeds == (0, 1, 2)
    assert cfg.model_copy(update={"data": DESIGN.data, "seeds": DESIGN.seeds}) == DESIGN


def test_the_demo_is_the_sweeps_design_at_strength_0_9():
    assert RunConfig() == sweep_config(0.9, (0,)).model_copy(update={"methods": ("vanilla", "rmc")})


def test_premise_rows_report_the_three_checks(tables):
    premise = pd.DataFrame(premise_rows(0.8, tables))
    teacher = premise[premise["check"] == "teacher_dev_hard"].iloc[0]
    interval = tables["results_interval"].set_index(["model", "metric"]).loc[("teacher", "dev_hard")]
    assert teacher["value"] == interval["mean"] and teacher["low"] <= teacher["value"] <= teacher["high"]
    hard = premise[premise["check"] == "subnetwork_dev_hard"]
    assert list(hard["who"]) == list(tables["subnetworks"]["subnetwork"])
    agreement = premise.set_index("check").loc[["split_agreement", "split_agreement_chance"], "value"]
    assert ((agreement >= 0) & (agreement <= 1)).all()


def test_effect_rows_pair_rmc_with_each_baseline_and_plot(tables, tmp_path):
    effects = pd.DataFrame(effect_rows(0.8, tables))
    diff = effects[(effects["kind"] == "rmc_minus") & (effects["metric"] == OOD)]
    assert sorted(diff["model"]) == sorted(f"imp40-{b}" for b in BASELINES)
    assert ((diff["low"] <= diff["value"]) & (diff["value"] <= diff["high"])).all()
    assert (diff["n_seeds"] == 2).all()
    for bias, folder in ((0.8, tmp_path / "a"), (0.9, tmp_path / "b")):
        folder.mkdir()
        pd.DataFrame(premise_rows(bias, tables)).to_csv(folder / "synthetic_premise.csv", index=False)
        pd.DataFrame(effect_rows(bias, tables)).to_csv(folder / "synthetic_sweep.csv", index=False)
        (folder / f"synthetic_config_{bias}.json").write_text(sweep_config(bias, (0, 1)).model_dump_json())
    collect([tmp_path / "b", tmp_path / "a"], tmp_path)
    assert RunConfig.model_validate_json((tmp_path / "synthetic_config_0.9.json").read_text()).data.synthetic_bias == 0.9
    merged = pd.read_csv(tmp_path / "synthetic_sweep.csv")
    assert list(merged["bias"].unique()) == [0.8, 0.9] and len(merged) == 2 * len(effects)
    assert (tmp_path / "synthetic_sweep.png").stat().st_size > 0
    markdown = (tmp_path / "synthetic_sweep.md").read_text()
    assert markdown.count("| 0.80 |") == 2 and markdown.count("| 0.90 |") == 2
    assert all(f"RMC - {b}" in markdown for b in BASELINES)
    plot(effects, tmp_path / "one.png")
    assert (tmp_path / "one.png").exists()


def test_the_report_states_the_premise_checks(tables):
    lines = premise_lines(tables)
    agreement = tables["split_agreement"].iloc[0]
    assert f"hard rows {tables['results'].set_index('model').loc['teacher', 'dev_hard']:.3f}" in lines[1]
    assert lines[2].startswith("- sub-networks at 40, 70 % sparsity")
    assert f"{agreement['agreement']:.3f}" in lines[3] and f"{agreement['chance']:.3f}" in lines[3]
    assert "## RMC's premise" in markdown_report(tables, "synthetic")
    assert premise_lines({k: v for k, v in tables.items() if k != "split_agreement"}) == [NO_ANNOTATION]
    without = premise_lines({**tables, "subnetworks": tables["subnetworks"].iloc[:0]})  # teacher-loss, cartography
    assert len(without) == 3 and without[2].startswith("- the difficulty split agrees with the annotated one on")


def test_a_control_runs_rmc_alone_with_the_controls_difficulty():
    cfg = control_config(0.8, (0, 1, 2), "shuffled")
    assert cfg.methods == ("rmc",) and cfg.subnetworks.estimator == "shuffled"
    assert cfg.model_copy(update={"methods": DESIGN.methods, "subnetworks": DESIGN.subnetworks}) == sweep_config(0.8, (0, 1, 2))


def test_rmc_minus_a_control_is_a_t_interval_over_per_seed_differences(tables):
    from scipy import stats

    control = {"results_by_seed": tables["results_by_seed"].copy()}
    by_seed = control["results_by_seed"]
    rmc = by_seed["model"] == "imp40-rmc"
    by_seed.loc[rmc & (by_seed["seed"] == 0), OOD] -= 0.01
    by_seed.loc[rmc & (by_seed["seed"] == 1), OOD] -= 0.03
    [row] = [r for r in control_rows(0.8, tables, control, "shuffled") if r["metric"] == OOD]
    half = stats.t.ppf(0.975, 1) * 0.02 / 2 ** 0.5 / 2 ** 0.5  # sd of (0.01, 0.03) is 0.02 / sqrt 2
    assert row["model"] == "imp40-rmc[shuffled]" and row["n_seeds"] == 2
    assert row["value"] == pytest.approx(0.02) and row["low"] == pytest.approx(0.02 - half)
    assert row["high"] == pytest.approx(0.02 + half) and not row["resolved"]


def test_an_estimators_row_pairs_its_rmc_with_the_designs_vanilla_by_seed(tables):
    from rmc_core.evaluation.statistics import seed_interval

    by_seed = tables["results_by_seed"].set_index("seed")
    diffs = (by_seed[by_seed["model"] == "imp40-rmc"][OOD] - by_seed[by_seed["model"] == "imp40-vanilla"][OOD]).sort_index()
    cheaper = {**tables, "results_by_seed": tables["results_by_seed"].assign(
        **{OOD: lambda f: f[OOD] - 0.5 * (f["model"] == "imp40-rmc") * diffs.loc[f["seed"]].to_numpy()})}
    rows = pd.DataFrame([estimator_row(0.8, "imp", tables, tables, 100.0),
                         estimator_row(0.8, "teacher-loss", tables, cheaper, 10.0)])
    rows = with_shares(rows).set_index("estimator")
    expected = seed_interval(diffs.to_numpy())
    assert rows.loc["imp", "rmc_minus_vanilla"] == pytest.approx(expected.estimate)
    assert rows.loc["imp", "low"] == pytest.approx(expected.low) and rows.loc["imp", "n_seeds"] == 2
    assert rows.loc["teacher-loss", "cost_share"] == pytest.approx(0.1)
    assert rows.loc["imp", "agreement"] == tables["split_agreement"]["agreement"].iloc[0]
    assert "| 0.80 | teacher-loss |" in estimators_markdown(rows.reset_index())


def test_a_gain_share_is_given_only_against_a_resolved_imp_gain():
    def rows(imp_low: float) -> pd.DataFrame:
        return with_shares(pd.DataFrame({"bias": [0.8, 0.8], "estimator": ["imp", "cartography"],
                                         "seconds_per_seed": [100.0, 5.0], "rmc_minus_vanilla": [0.04, 0.03],
                                         "low": [imp_low, -0.5]})).set_index("estimator")

    assert rows(0.01).loc["cartography", "gain_share"] == pytest.approx(0.75)
    unresolved = rows(-0.01)
    assert np.isnan(unresolved.loc["cartography", "gain_share"]) and unresolved.loc["cartography", "cost_share"] == 0.05


def test_scoring_seconds_count_sub_networks_and_dynamics_per_seed(tmp_path):
    store = Store(tmp_path / "store")
    teacher = store.put_tables({"x": pd.DataFrame({"a": [1]})}, kind="model")
    store.write_record(teacher, DYNAMICS_COST, {"seconds": 4.0, "epochs": 2})
    pd.DataFrame({"stage": ["train-teacher-s0", "train-subnet-20-s0", "predict-subnet-20-s1", "difficulty-s0"],
                  "seconds": [100.0, 30.0, 10.0, 1.0]}).to_csv(tmp_path / "costs.csv", index=False)
    models = [{"role": "teacher", "seed": s, "model": teacher.model_dump()} for s in (0, 1)]
    (tmp_path / "summary.json").write_text(json.dumps({"models": models}))
    assert scoring_seconds(tmp_path, tmp_path / "store") == pytest.approx((30 + 10 + 4 + 4) / 2)


def test_the_shortcut_mnli_testbed_is_the_committed_config_and_sweeps_its_marker_rate():
    from pathlib import Path

    from rmc_core.overrides import load_config

    testbed = TESTBEDS["shortcut-mnli"]
    committed = load_config(Path(__file__).resolve().parents[1] / "configs" / "shortcut-mnli.json")
    assert sweep_config(0.7, (0, 1, 2), testbed) == committed
    cfg = control_config(0.8, (0, 1, 2), "annotated", testbed)
    assert cfg.task == "mnli" and cfg.data.shortcut_strength == 0.8 and cfg.subnetworks.estimator == "annotated"
    assert cfg.subnetworks.controls_on == "oneshot", "the control reuses the design's one-shot sub-networks"
    assert testbed.ood == "acc_shortcut-ood"


def test_tables_only_tables_the_finished_runs_and_names_the_missing_ones(tables, tmp_path, capsys):
    """A sweep stopped after its design run and one control: the tables come from those two
    runs' folders, nothing runs, and the unfinished control is named."""
    from rmc.benchmarks.synthetic_sweep import main

    for run in ("run-0.8", "run-0.8-shuffled"):
        (tmp_path / run).mkdir()
        for name, frame in tables.items():
            frame.to_parquet(tmp_path / run / f"{name}.parquet")
    main(["--biases", "0.8", "--controls", "shuffled", "annotated", "--out", str(tmp_path), "--tables-only"])
    assert f"{tmp_path / 'run-0.8-annotated'}: not finished, left out" in capsys.readouterr().out
    effects = pd.read_csv(tmp_path / "synthetic_sweep.csv")
    control = effects[effects["kind"] == "rmc_minus_control"]
    assert set(control["model"]) == {"imp40-rmc[shuffled]"} and (control["value"] == 0).all()
    assert set(pd.read_csv(tmp_path / "synthetic_by_seed.csv")["run"]) == {"design", "shuffled"}
    assert not list(tmp_path.glob("*config*.json")), "nothing was configured to run"


def test_the_in_process_runner_resumes_from_the_store_and_writes_the_sweeps_tables(design_run, tmp_path, monkeypatch):
    """Where Prefect is not installed: a rerun of the same sweep computes no stage (each
    finished stage's record names its artifact), and the run folder holds what `rmc run`
    writes, so the sweep's tables come out as with the command."""
    from rmc.benchmarks import synthetic_sweep
    from rmc_core import pipeline, stages
    from rmc_core.devices import default_devices

    cfg, root, tables = design_run
    computed = []
    for name in ("prepare_data", "prepare_base", "train", "prune_oneshot", "predict", "difficulty", "evaluate", "report",
                 "summarize", "measure_models"):
        stage = getattr(stages, name)
        monkeypatch.setattr(stages, name, functools.wraps(stage)(lambda *a, _s=stage, **k: computed.append(_s.__name__) or _s(*a, **k)))
    placed = []
    run_local = pipeline.run_local
    monkeypatch.setattr(pipeline, "run_local", lambda c, r, devices, call: placed.append(devices) or run_local(c, r, devices, call))
    design = synthetic_sweep.Testbed("synthetic", cfg.model_copy(update={"seeds": DESIGN.seeds}), "synthetic_bias", OOD)
    monkeypatch.setitem(synthetic_sweep.TESTBEDS, "synthetic", design)
    synthetic_sweep.main(["--runner", "in-process", "--biases", "0.8", "--seeds", "0", "1", "--store", str(root),
                          "--out", str(tmp_path)])
    assert computed == [], "every stage came from the store"
    assert placed == [default_devices()], "no device named: this machine's, as `rmc run` takes them"
    assert (tmp_path / "run-0.8" / "report.png").exists() and (tmp_path / "synthetic_sweep.md").exists()
    by_seed = pd.read_csv(tmp_path / "synthetic_by_seed.csv")
    pd.testing.assert_series_equal(by_seed[OOD], tables["results_by_seed"][OOD], check_names=False)

    copy = tmp_path / "store"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "objects" / "tables")
    computed.clear()
    run_in_process(cfg, copy)
    assert {"predict", "evaluate", "report", "summarize"} <= set(computed), "the stages whose tables left the store ran again"
    assert not {"train", "prune_oneshot"} & set(computed), "no model trained again: the models stayed in the store"


def test_seeds_run_as_separate_sweeps_merge_into_intervals_over_all_seeds(tables, tmp_path):
    """One seed per session: the merged table's RMC - Vanilla is the t-interval over the
    per-seed paired differences of all seeds, a seed given twice is refused, and so are
    sweeps of different designs."""
    from rmc.benchmarks.synthetic_sweep import by_seed_rows, merge_seeds, seed_interval

    by_seed = by_seed_rows(0.8, "design", tables)
    folders = []
    for seed in (0, 1):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        by_seed[by_seed["seed"] == seed].to_csv(folder / "synthetic_by_seed.csv", index=False)
        pd.DataFrame(premise_rows(0.8, tables)).to_csv(folder / "synthetic_premise.csv", index=False)
        (folder / "synthetic_config_0.8.json").write_text(sweep_config(0.8, (seed,)).model_dump_json())
        folders.append(folder)
    merge_seeds(folders, tmp_path)
    effects = pd.read_csv(tmp_path / "synthetic_sweep.csv")
    row = effects[(effects["kind"] == "rmc_minus") & (effects["model"] == "imp40-vanilla") & (effects["metric"] == OOD)].iloc[0]
    wide = by_seed.pivot(index="seed", columns="model", values=OOD)
    expected = seed_interval((wide["imp40-rmc"] - wide["imp40-vanilla"]).to_numpy())
    assert (row["value"], row["low"], row["high"], row["n_seeds"]) == pytest.approx((expected.estimate, expected.low,
                                                                                     expected.high, 2))
    from rmc.benchmarks.claims import claims

    judged = {r["claim"]: r for r in claims("tiny", tmp_path, OOD)}
    assert set(judged) == {"shortcut", "rmc-ood", "split", "gap"}, "the merged folder reads as one run (no control ran)"
    assert len(pd.read_csv(tmp_path / "subnetworks_by_seed.csv")) == 2 * len(tables["subnetworks"])
    cost = effects[(effects["kind"] == "minus_teacher") & (effects["model"] == "imp40-vanilla") & (effects["metric"] == OOD)]
    assert cost["value"].iloc[0] == pytest.approx((wide["imp40-vanilla"] - wide["teacher"]).mean())
    assert json.loads((tmp_path / "synthetic_config_0.8.json").read_text())["seeds"] == [0, 1]

    assert not (tmp_path / "synthetic_estimators.csv").exists(), "no sweep ran --estimators"

    with pytest.raises(ValueError, match=r"seed \[0\] appears in more than one"):
        merge_seeds([folders[0], folders[0]], tmp_path)
    (folders[1] / "synthetic_config_0.8.json").write_text(sweep_config(0.7, (1,)).model_dump_json())
    with pytest.raises(ValueError, match="different designs"):
        merge_seeds(folders, tmp_path)


def test_a_one_seed_comparison_is_never_marked_resolved_whatever_its_rows_say(tables):
    """A one-seed run's RMC - baseline interval is over that seed's rows: it can exclude 0
    by example noise alone, so the sweep's table calls it unresolved, with the reason."""
    from rmc.benchmarks.synthetic_sweep import tables_markdown

    effects = pd.DataFrame(effect_rows(0.8, tables))
    effects = effects.assign(n_seeds=1, resolved=effects["kind"] == "rmc_minus", low=0.01, high=0.03)
    markdown = tables_markdown(pd.DataFrame(premise_rows(0.8, tables)), effects)
    assert "unresolved (one seed)" in markdown and " resolved" not in markdown.replace("unresolved (one seed)", "")


def test_merged_seeds_recompute_each_estimators_gain_over_all_seeds(tables, tmp_path):
    """Each seed's estimators table holds a one-seed gain; merged, the gain is the
    t-interval over the per-seed differences, and the agreement and cost their means. A
    sweep that ran no estimators adds no seed to that table (its design still merges);
    sweeps that ran different --estimators are refused."""
    from rmc.benchmarks.synthetic_sweep import by_seed_rows, merge_seeds, seed_interval

    design = by_seed_rows(0.8, "design", tables)
    cheaper = by_seed_rows(0.8, "teacher-loss", tables.copy() | {"results_by_seed": tables["results_by_seed"].assign(
        **{OOD: lambda f: f[OOD] - 0.01 * (f["seed"] + 1)})})
    cheaper = cheaper[cheaper["model"] == "imp40-rmc"]
    folders = []
    for seed in (0, 1):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        pd.concat([design, cheaper]).loc[lambda f: f["seed"] == seed].to_csv(folder / "synthetic_by_seed.csv", index=False)
        pd.DataFrame(premise_rows(0.8, tables)).to_csv(folder / "synthetic_premise.csv", index=False)
        (folder / "synthetic_config_0.8.json").write_text(sweep_config(0.8, (seed,)).model_dump_json())
        pd.DataFrame([{"bias": 0.8, "estimator": e, "agreement": 0.9 + 0.02 * seed, "chance": 0.7,
                       "seconds_per_seed": s * (seed + 1), "rmc_minus_vanilla": 0.0, "low": 0.0, "high": 0.0,
                       "n_seeds": 1, "resolved": False} for e, s in (("imp", 100.0), ("teacher-loss", 5.0))]
                     ).to_csv(folder / "synthetic_estimators.csv", index=False)
        folders.append(folder)
    (tmp_path / "merged").mkdir()
    merge_seeds(folders, tmp_path / "merged")
    merged = pd.read_csv(tmp_path / "merged" / "synthetic_estimators.csv").set_index("estimator")
    wide = design.pivot(index="seed", columns="model", values=OOD)
    for estimator, shift in (("imp", 0.0), ("teacher-loss", 0.01 * (wide.index.to_numpy() + 1))):
        expected = seed_interval((wide["imp40-rmc"] - shift - wide["imp40-vanilla"]).to_numpy())
        row = merged.loc[estimator]
        assert (row["rmc_minus_vanilla"], row["low"], row["high"], row["n_seeds"]) == pytest.approx(
            (expected.estimate, expected.low, expected.high, 2))
    assert merged.loc["teacher-loss", "agreement"] == pytest.approx(0.91)
    above = seed_interval(np.array([0.2, 0.22]))
    assert merged.loc["teacher-loss", ["agreement_minus_chance", "agreement_low", "agreement_high"]].tolist() == \
        pytest.approx([above.estimate, above.low, above.high])
    assert merged.loc["teacher-loss", "cost_share"] == pytest.approx(0.05)
    assert "teacher-loss" in (tmp_path / "merged" / "synthetic_sweep.md").read_text()

    estimators = pd.read_csv(folders[1] / "synthetic_estimators.csv")
    estimators[estimators["estimator"] == "imp"].to_csv(folders[1] / "synthetic_estimators.csv", index=False)
    with pytest.raises(ValueError, match="different --estimators"):
        merge_seeds(folders, tmp_path / "merged")
    (folders[1] / "synthetic_estimators.csv").unlink()
    design.loc[design["seed"] == 1].to_csv(folders[1] / "synthetic_by_seed.csv", index=False)
    (folders[0] / "synthetic_config_0.8_teacher-loss.json").write_text(sweep_config(0.8, (0,)).model_dump_json())
    merge_seeds(folders, tmp_path / "merged")
    merged = pd.read_csv(tmp_path / "merged" / "synthetic_estimators.csv").set_index("estimator")
    assert set(merged["n_seeds"]) == {1}, "only seed 0 ran the estimators: every row pairs that seed alone"
    sweep = pd.read_csv(tmp_path / "merged" / "synthetic_sweep.csv")
    assert sweep.loc[sweep["kind"] == "rmc_minus", "n_seeds"].eq(2).all(), "the design merges over both seeds"
    assert json.loads((tmp_path / "merged" / "synthetic_config_0.8_teacher-loss.json").read_text())["seeds"] == [0]
