"""The claims table: each claim judged by the t-interval over per-seed differences, RMC's
widened to the run's own paired interval."""

from __future__ import annotations

import pandas as pd
import pytest

from rmc.benchmarks.claims import claims, main

OOD = "acc_synthetic-ood"


def write_run(folder, rmc_gain=(0.10, 0.12, 0.11), comparison_low=None):
    folder.mkdir()
    rows = []
    for seed, gain in enumerate(rmc_gain):
        rows += [{"model": "teacher", "role": "teacher", "seed": seed, "acc_dev": 0.99, OOD: 0.95 + 0.001 * seed},
                 {"model": "imp40-vanilla", "role": "student", "seed": seed, "acc_dev": 0.98, OOD: 0.70 + 0.01 * seed},
                 {"model": "imp40-distil", "role": "student", "seed": seed, "acc_dev": 0.98, OOD: 0.71 + 0.01 * seed},
                 {"model": "imp40-rmc", "role": "student", "seed": seed, "acc_dev": 0.98, OOD: 0.70 + 0.01 * seed + gain}]
    pd.DataFrame(rows).to_csv(folder / "results_by_seed.csv", index=False)
    pd.DataFrame({"agreement": [0.99, 0.98, 0.99], "chance": [0.88, 0.88, 0.88], "seed": [0, 1, 2]}).to_csv(
        folder / "split_agreement_by_seed.csv", index=False)
    pd.DataFrame([{"subnetwork": f"subnet-{s}", "sparsity": s / 100, "gap": s / 100 + 0.01 * seed, "seed": seed}
                  for seed in range(3) for s in (20, 40, 70)]).to_csv(folder / "subnetworks_by_seed.csv", index=False)
    if comparison_low is not None:
        pd.DataFrame([{"a": "imp40-rmc", "b": b, "metric": OOD, "low": comparison_low, "high": 0.5}
                      for b in ("imp40-vanilla", "imp40-distil")]).to_csv(folder / "comparisons.csv", index=False)
    return folder


def test_each_claim_is_judged_on_its_own_interval(tmp_path):
    table = pd.DataFrame(claims("t", write_run(tmp_path / "run"), OOD)).set_index("claim")
    assert table.loc["shortcut", "verdict"] == "supported" and table.loc["shortcut", "high"] < 0
    assert table.loc["rmc-ood", "verdict"] == "supported"
    assert table.loc["split", "verdict"] == "supported"
    assert table.loc["gap", "estimate"] == pytest.approx(1.0) and table.loc["gap", "verdict"] == "supported"


def test_rmc_worse_than_a_baseline_refutes_and_a_wide_paired_interval_unresolves(tmp_path):
    refuted = pd.DataFrame(claims("t", write_run(tmp_path / "a", rmc_gain=(-0.05, -0.06, -0.05)), OOD))
    assert refuted.set_index("claim").loc["rmc-ood", "verdict"] == "refuted"
    widened = pd.DataFrame(claims("t", write_run(tmp_path / "b", comparison_low=-0.02), OOD)).set_index("claim")
    assert widened.loc["rmc-ood", "verdict"] == "unresolved" and widened.loc["rmc-ood", "low"] == -0.02


def test_the_cause_is_judged_on_the_shuffled_control_when_the_run_has_it(tmp_path):
    folder = write_run(tmp_path / "run")
    assert "cause" not in {r["claim"] for r in claims("t", folder, OOD)}
    pd.DataFrame([{"bias": 0.9, "kind": "rmc_minus_control", "model": "imp40-rmc[shuffled]", "metric": OOD,
                   "value": 0.066, "low": -0.004, "high": 0.136},
                  {"bias": 0.9, "kind": "rmc_minus_control", "model": "imp40-rmc[annotated]", "metric": OOD,
                   "value": -0.005, "low": -0.019, "high": 0.009}]).to_csv(folder / "synthetic_sweep.csv", index=False)
    cause = pd.DataFrame(claims("t", folder, OOD)).set_index("claim").loc["cause"]
    assert cause["verdict"] == "unresolved" and cause["estimate"] == pytest.approx(0.066) and "shuffled" in cause["detail"]


def test_the_command_writes_the_csv_and_its_markdown(tmp_path, capsys):
    main(["--run", "synthetic", str(write_run(tmp_path / "run")), OOD, "--out", str(tmp_path / "claims.csv")])
    assert len(pd.read_csv(tmp_path / "claims.csv")) == 4
    assert "| synthetic | rmc-ood | supported |" in (tmp_path / "claims.md").read_text()
