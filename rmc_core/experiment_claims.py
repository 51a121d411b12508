"""The paper's claims, a view of an experiment's report: each judged supported, refuted or
unresolved in every run that trains RMC and its baselines, on the experiment's headline
metric and the report's own intervals (the envelope where the rows were compared example
by example, else the t-interval over the per-seed differences; one seed resolves nothing):

1. shortcut: compressed students rely more on the shortcut than their teacher (the run's
   Vanilla student minus its teacher: supported below 0, refuted above);
2. rmc-ood: RMC improves the headline over every baseline student of the run at equal
   dev accuracy (supported when every RMC - baseline interval is above 0 and no dev
   interval below 0; refuted when a headline interval is below 0); the interval shown is
   the one with the lowest lower bound;
3. split: the difficulty split matches the annotated hard rows better than chance
   (agreement minus chance over seeds: supported above 0);
4. gap: the sub-networks' easy-hard gap grows with sparsity (the least-squares slope of
   each seed's gap against sparsity, over seeds: supported above 0, refuted below);
5. cause: RMC's gain comes from its difficulty estimate (RMC minus RMC whose difficulty is
   a control that removes only the estimate's information, `EstimatorSpec.removes_estimate`,
   where the experiment compares them: supported above 0, refuted below).

Every side is found by its identity columns (method, role, the run's estimator), never by
a model's name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rmc_core.evaluation.statistics import Interval, seed_interval
from rmc_core.experiment import ArmRun
from rmc_core.objectives.estimators import ESTIMATORS

COLUMNS = ["run", "claim", "estimate", "low", "high", "verdict", "detail"]


def verdict(iv: Interval, direction: int, n_seeds: int) -> str:
    """supported when the interval lies on the claimed side of 0, refuted on the other."""
    if n_seeds < 2 or np.isnan(iv.low):
        return "unresolved"
    if (iv.low > 0 and direction > 0) or (iv.high < 0 and direction < 0):
        return "supported"
    if (iv.high < 0 and direction > 0) or (iv.low > 0 and direction < 0):
        return "refuted"
    return "unresolved"


def _interval(row: pd.Series) -> Interval:
    return Interval(float(row["difference"]), float(row["low"]), float(row["high"]))


def _row(run: str, claim: str, iv: Interval, judged: str, detail: str) -> dict:
    return {"run": run, "claim": claim, "estimate": iv.estimate, "low": iv.low, "high": iv.high, "verdict": judged,
            "detail": detail}


def _comparison_claims(run: str, own: pd.DataFrame, headline: str) -> list[dict]:
    """shortcut and rmc-ood, from the run's own comparisons."""
    rows = []
    plain = own[~own["a_compression"].astype(str).str.contains("+", regex=False)]
    shortcut = plain[(plain["a_method"] == "vanilla") & (plain["a_role"] == "student") & (plain["b"] == "teacher")
                     & (plain["metric"] == headline)]
    if len(shortcut):
        r = shortcut.iloc[0]
        rows.append(_row(run, "shortcut", _interval(r), verdict(_interval(r), -1, r["n_seeds"]), f"{r['a']} - teacher, {headline}"))
    rmc = plain[(plain["a_method"] == "rmc") & (plain["a_role"] == "student") & (plain["b_role"] == "student")]
    ood, dev = rmc[rmc["metric"] == headline], rmc[rmc["metric"] == "acc_dev"].set_index("b")
    if len(ood):
        judged = {r.b: verdict(Interval(r.difference, r.low, r.high), +1, r.n_seeds) for r in ood.itertuples()}
        dev_judged = {b: verdict(Interval(r.difference, r.low, r.high), +1, r.n_seeds) for b, r in dev.iterrows()}
        if "refuted" in judged.values():
            overall = "refuted"
        elif all(v == "supported" for v in judged.values()) and "refuted" not in dev_judged.values():
            overall = "supported"
        else:
            overall = "unresolved"
        weakest = ood.loc[ood["low"].fillna(ood["difference"]).idxmin()]
        detail = "; ".join(f"- {b} {v} (dev {dev_judged.get(b, 'not compared')})" for b, v in judged.items())
        rows.append(_row(run, "rmc-ood", _interval(weakest), overall, f"RMC {detail}; interval shown: - {weakest['b']}"))
    return rows


def _premise_claims(run: str, premise: pd.DataFrame) -> list[dict]:
    """split and gap, from the run's premise checks per seed."""
    rows = []
    checks = premise.pivot_table(index="seed", columns="check", values="value", aggfunc="first")
    if {"split_agreement", "split_agreement_chance"} <= set(checks.columns):
        above = (checks["split_agreement"] - checks["split_agreement_chance"]).dropna().to_numpy()
        iv = seed_interval(above)
        rows.append(_row(run, "split", iv, verdict(iv, +1, len(above)), "agreement - chance"))
    subnets = premise[premise["check"].str.startswith("subnetwork_dev_")]
    if len(subnets):
        wide = subnets.pivot_table(index=["seed", "sparsity"], columns="check", values="value").reset_index()
        wide["gap"] = wide["subnetwork_dev_easy"] - wide["subnetwork_dev_hard"]
        slopes = np.array([np.polyfit(g["sparsity"], g["gap"], 1)[0] for _, g in wide.groupby("seed")])
        iv = seed_interval(slopes)
        rows.append(_row(run, "gap", iv, verdict(iv, +1, len(slopes)),
                         "slope of the sub-networks' easy-hard gap per unit sparsity"))
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
        rows += _comparison_claims(run.label, own, headline)
        rows += _premise_claims(run.label, premise[premise["run"] == run.label])
        cause = compared[(compared["a_run"] == run.label) & compared["b_run"].isin(removes_estimate)
                         & (compared["a_method"] == "rmc") & (compared["b_method"] == "rmc") & (compared["metric"] == headline)]
        for r in cause.itertuples():
            iv = Interval(r.difference, r.low, r.high)
            rows.append(_row(run.label, "cause", iv, verdict(iv, +1, r.n_seeds), f"RMC - RMC of {r.b_run}, {headline}"))
    return pd.DataFrame(rows, columns=COLUMNS)
