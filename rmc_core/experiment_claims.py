"""The paper's claims, a view of an experiment's report: each judged supported, refuted or
unresolved in every run that trains RMC and its baselines, on the report's own intervals
(the envelope where the rows were compared example by example, else the t-interval over the
per-seed differences; one seed resolves nothing), metric by metric:

1. shortcut: compressed students rely more on the shortcut than their teacher (the run's
   Vanilla student minus its teacher: supported below 0, refuted above);
2. rmc-ood: RMC improves OOD accuracy over a baseline student: one row per baseline, named
   (supported above 0, refuted below), with its dev accuracy's verdict in the detail;
3. split: the difficulty split matches the annotated hard rows better than chance
   (agreement minus chance over seeds: supported above 0);
4. gap: the sub-networks' easy-hard gap grows with sparsity (the least-squares slope of
   each seed's gap against sparsity, over seeds: supported above 0, refuted below);
5. cause: RMC's gain comes from its difficulty estimate (RMC minus RMC whose difficulty is
   a control that removes only the estimate's information, `EstimatorSpec.removes_estimate`,
   where the experiment compares them: supported above 0, refuted below).

The OOD claims are judged on the experiment's headline and, where a run has several OOD
sets, on each set's accuracy apart (a set of 30,000 rows does not speak for one of 3,000).
Beside each interval's verdict stands a Holm-adjusted one: every RMC - baseline and RMC -
control comparison of a run on one metric is one family, judged by its paired t-tests'
p-values over seeds. A cell is **untestable** where the teacher's own accuracy on the set is
not above the set's majority-class rate (its 95 % interval: over seeds, or over rows with
one seed): a student cannot lose robustness its teacher never had.

Every side is found by its identity columns (method, role, the run's estimator), never by
a model's name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.ood_premise import ABOVE_MAJORITY, OOD_MAJORITY, OOD_ROWS
from rmc_core.evaluation.statistics import Interval, holm, proportion_half_width, seed_interval
from rmc_core.experiment import ArmRun
from rmc_core.objectives.estimators import ESTIMATORS

COLUMNS = ["run", "claim", "metric", "versus", "estimate", "low", "high", "n_seeds", "interval", "seeds_for_power",
           "p_value", "p_holm", "verdict", "verdict_holm", "testable", "detail"]
ALPHA = 0.05


def verdict(iv: Interval, direction: int, n_seeds: int) -> str:
    """supported when the interval lies on the claimed side of 0, refuted on the other."""
    if n_seeds < 2 or iv.side == 0:
        return "unresolved"
    return "supported" if iv.side == direction else "refuted"


def holm_verdict(estimate: float, p_value: float, direction: int) -> str:
    """supported or refuted by a (Holm-adjusted) p-value under 5 %, by the estimate's side."""
    if np.isnan(p_value) or p_value >= ALPHA:
        return "unresolved"
    return "supported" if np.sign(estimate) == direction else "refuted"


def _interval(row) -> Interval:
    return Interval(float(row.difference), float(row.low), float(row.high))


def testable_sets(premise: pd.DataFrame) -> dict[str, str]:
    """Each OOD set of a run: "yes" where the teacher's accuracy is above the majority-class
    rate (the interval of the difference above 0: t over seeds, or with one seed the normal
    interval over the set's rows), "no" where it is not."""
    out = {}
    above = premise[premise["check"] == ABOVE_MAJORITY]
    for name, rows in above.groupby("who", sort=False):
        values = rows["value"].to_numpy(dtype=float)
        if len(values) > 1:
            low = seed_interval(values).low
        else:
            facts = premise[(premise["who"] == name)].set_index("check")["value"]
            p, n = values[0] + facts[OOD_MAJORITY], facts[OOD_ROWS]
            low = values[0] - proportion_half_width(p, int(n))
        out[name] = "yes" if low > 0 else "no"
    return out


def judged_metrics(headline: str, sets: dict[str, str], metrics: set[str]) -> dict[str, str]:
    """The metrics the OOD claims are judged on, each with whether it is testable: the
    headline and, with several OOD sets, each set's accuracy. The OOD mean is testable where
    every set is; "n/a" where the metric is not an OOD accuracy, "unknown" where the run's
    folder predates the check."""
    def testable(metric: str) -> str:
        name = metric.removeprefix("acc_")
        if metric == "acc_ood" or (len(sets) == 1 and name in sets):
            return ("yes" if all(v == "yes" for v in sets.values()) else "no" if all(v == "no" for v in sets.values())
                    else "partly") if sets else "unknown"
        if name in sets:
            return sets[name]
        return "unknown" if not sets and metric.startswith("acc_") and metric != "acc_dev" else "n/a"

    chosen = [headline, *(f"acc_{s}" for s in sets if len(sets) > 1)]
    return {m: testable(m) for m in dict.fromkeys(chosen) if m in metrics}


def _judged(run: str, claim: str, metric: str, versus: str, r, direction: int, testable: str, detail: str,
            p_holm: float = float("nan")) -> dict:
    iv = _interval(r)
    raw, adjusted = verdict(iv, direction, r.n_seeds), holm_verdict(iv.estimate, p_holm, direction)
    if testable == "no":
        raw = adjusted = "untestable"
    return {"run": run, "claim": claim, "metric": metric, "versus": versus, "estimate": iv.estimate, "low": iv.low,
            "high": iv.high, "n_seeds": r.n_seeds, "interval": r.interval, "seeds_for_power": r.seeds_for_power,
            "p_value": r.p_value, "p_holm": p_holm, "verdict": raw,
            "verdict_holm": adjusted, "testable": testable, "detail": detail}


def _comparison_claims(run: str, own: pd.DataFrame, controls: pd.DataFrame, judged: dict[str, str]) -> list[dict]:
    """shortcut, rmc-ood and cause on each judged metric, from the run's comparisons."""
    rows = []
    plain = own[~own["a_compression"].astype(str).str.contains("+", regex=False)]
    dev = plain[(plain["a_method"] == "rmc") & (plain["a_role"] == "student") & (plain["b_role"] == "student")
                & (plain["metric"] == "acc_dev")].set_index("b")
    for metric, testable in judged.items():
        shortcut = plain[(plain["a_method"] == "vanilla") & (plain["a_role"] == "student") & (plain["b"] == "teacher")
                         & (plain["metric"] == metric)]
        for r in shortcut.head(1).itertuples():
            rows.append(_judged(run, "shortcut", metric, "teacher", r, -1, testable, f"{r.a} - teacher", r.p_value))
        rmc = plain[(plain["a_method"] == "rmc") & (plain["a_role"] == "student") & (plain["b_role"] == "student")
                    & (plain["metric"] == metric)]
        cause = controls[controls["metric"] == metric]
        family = list(rmc.itertuples()) + list(cause.itertuples())
        adjusted = holm(np.array([r.p_value for r in family], dtype=float))
        for r, p in zip(family[:len(rmc)], adjusted[:len(rmc)], strict=True):
            on_dev = verdict(_interval(dev.loc[r.b]), +1, dev.loc[r.b, "n_seeds"]) if r.b in dev.index else "not compared"
            rows.append(_judged(run, "rmc-ood", metric, r.b, r, +1, testable, f"{r.a} - {r.b}; dev {on_dev}", p))
        for r, p in zip(family[len(rmc):], adjusted[len(rmc):], strict=True):
            rows.append(_judged(run, "cause", metric, f"{r.b} ({r.b_run})", r, +1, testable,
                                f"{r.a} - {r.b} of {r.b_run}", p))
    return rows


def _row(run: str, claim: str, iv: Interval, judged: str, detail: str, n_seeds: int) -> dict:
    return {"run": run, "claim": claim, "metric": "", "versus": "", "estimate": iv.estimate, "low": iv.low,
            "high": iv.high, "n_seeds": n_seeds, "interval": "t over seeds", "seeds_for_power": np.nan,
            "p_value": np.nan, "p_holm": np.nan, "verdict": judged,
            "verdict_holm": "", "testable": "n/a", "detail": detail}


def _premise_claims(run: str, premise: pd.DataFrame) -> list[dict]:
    """split and gap, from the run's premise checks per seed."""
    rows = []
    checks = premise.pivot_table(index="seed", columns="check", values="value", aggfunc="first")
    if {"split_agreement", "split_agreement_chance"} <= set(checks.columns):
        above = (checks["split_agreement"] - checks["split_agreement_chance"]).dropna().to_numpy()
        iv = seed_interval(above)
        rows.append(_row(run, "split", iv, verdict(iv, +1, len(above)), "agreement - chance", len(above)))
    subnets = premise[premise["check"].str.startswith("subnetwork_dev_")]
    if len(subnets):
        wide = subnets.pivot_table(index=["seed", "sparsity"], columns="check", values="value").reset_index()
        wide["gap"] = wide["subnetwork_dev_easy"] - wide["subnetwork_dev_hard"]
        slopes = np.array([np.polyfit(g["sparsity"], g["gap"], 1)[0] for _, g in wide.groupby("seed")])
        iv = seed_interval(slopes)
        rows.append(_row(run, "gap", iv, verdict(iv, +1, len(slopes)),
                         "slope of the sub-networks' easy-hard gap per unit sparsity", len(slopes)))
    return rows


def claims(runs: list[ArmRun], tables: dict[str, pd.DataFrame], headline: str) -> pd.DataFrame:
    """The claims of every run that trains RMC and its baselines, as a table (`COLUMNS`)."""
    compared, premise = tables["comparisons"], tables["premise_by_seed"]
    removes_estimate = {r.label for r in runs if ESTIMATORS[r.config.subnetworks.estimator].removes_estimate}
    rows = []
    for run in runs:
        own = compared[(compared["a_run"] == run.label) & (compared["b_run"] == run.label)]
        if not ((own["a_method"] == "rmc") & (own["b_role"] == "student")).any():
            continue
        its_premise = premise[premise["run"] == run.label]
        judged = judged_metrics(headline, testable_sets(its_premise), set(compared["metric"]))
        controls = compared[(compared["a_run"] == run.label) & compared["b_run"].isin(removes_estimate)
                            & (compared["a_method"] == "rmc") & (compared["b_method"] == "rmc")]
        rows += _comparison_claims(run.label, own, controls, judged)
        rows += _premise_claims(run.label, its_premise)
    return pd.DataFrame(rows, columns=COLUMNS)
