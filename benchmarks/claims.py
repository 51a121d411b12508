"""The paper's claims, each marked supported, refuted or unresolved on a multi-seed run.

`python -m rmc.benchmarks.claims --run LABEL DIR OOD [--run ...] --out FILE.csv` reads
each run's per-seed tables (`rmc run --out DIR` writes results_by_seed.csv,
split_agreement_by_seed.csv and subnetworks_by_seed.csv) and judges up to five claims of Du et
al. on it, each by a 95 % t-interval over the per-seed paired differences (`seed_interval`;
with one seed nothing is resolved), widened for RMC against a baseline to the run's own
paired interval (comparisons.csv: the bootstrap over examples and seeds), whichever is wider:

1. shortcut: compressed students rely more on the shortcut than their teacher (Vanilla
   student minus teacher on the OOD column `OOD`: supported below 0, refuted above);
2. rmc-ood: RMC improves OOD over every baseline student of the run at equal ID (supported
   when every RMC - baseline OOD interval is above 0 and no ID interval is below 0;
   refuted when an OOD interval is below 0);
3. split: the variance split matches the annotated one better than chance (agreement
   minus chance: supported above 0);
4. gap: the sub-networks' easy-hard gap grows with sparsity (the least-squares slope of
   each seed's gap against sparsity: supported above 0, refuted below);
5. cause: RMC's OOD gain comes from its difficulty estimate (RMC minus RMC with its
   difficulty shuffled across rows, the control that removes only the estimate: supported
   above 0, refuted below), where the run folder holds the synthetic sweep's table with
   that control (a sweep's <testbed>_sweep.csv, its paired interval as the sweep computed
   it).

It writes the claims as a CSV and the same table as markdown beside it (FILE.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core.evaluation.statistics import Interval, seed_interval
from rmc_core.report import to_markdown


def _verdict(iv: Interval, direction: int) -> str:
    """supported when the interval lies on the claimed side of 0, refuted on the other."""
    if np.isnan(iv.low):
        return "unresolved"
    if (iv.low > 0 and direction > 0) or (iv.high < 0 and direction < 0):
        return "supported"
    if (iv.high < 0 and direction > 0) or (iv.low > 0 and direction < 0):
        return "refuted"
    return "unresolved"


def _row(label: str, claim: str, iv: Interval, verdict: str, detail: str) -> dict:
    return {"testbed": label, "claim": claim, "estimate": iv.estimate, "low": iv.low, "high": iv.high,
            "verdict": verdict, "detail": detail}


def _paired(by_seed: pd.DataFrame, a: str, b: str, metric: str) -> Interval:
    pivot = by_seed.pivot_table(index="seed", columns="model", values=metric)
    return seed_interval((pivot[a] - pivot[b]).dropna().to_numpy())


def _envelope(over_seeds: Interval, comparisons: pd.DataFrame | None, a: str, b: str, metric: str) -> Interval:
    """The t-interval over seeds widened to the run's own paired interval for a - b (its
    bootstrap over examples and seeds), when the run compared them: the more conservative."""
    if comparisons is None:
        return over_seeds
    row = comparisons[(comparisons["a"] == a) & (comparisons["b"] == b) & (comparisons["metric"] == metric)]
    if row.empty or np.isnan(over_seeds.low):
        return over_seeds
    return Interval(over_seeds.estimate, min(over_seeds.low, float(row["low"].iloc[0])),
                    max(over_seeds.high, float(row["high"].iloc[0])))


def _students(by_seed: pd.DataFrame) -> list[str]:
    roles = by_seed.drop_duplicates("model").set_index("model")
    if "role" in roles.columns:
        return [m for m, r in roles["role"].items() if r == "student"]
    return [m for m in roles.index if m != "teacher" and not m.startswith("subnet-")]


def _file(run: Path, name: str) -> Path:
    """A run folder's table, or `run` taken as a prefix (docs/results/cpu_medium_ + name)."""
    return run / name if run.is_dir() else Path(f"{run}{name}")


def claims(label: str, run: Path, ood: str) -> list[dict]:
    by_seed = pd.read_csv(_file(run, "results_by_seed.csv"))
    students = _students(by_seed)
    rows = []
    vanilla = [m for m in students if m.endswith("-vanilla")]
    if vanilla:
        iv = _paired(by_seed, vanilla[0], "teacher", ood)
        rows.append(_row(label, "shortcut", iv, _verdict(iv, -1), f"{vanilla[0]} - teacher, {ood}"))
    rmc = [m for m in students if m.endswith("-rmc")]
    baselines = [m for m in students if m not in rmc]
    if rmc and baselines:
        compared = _file(run, "comparisons.csv")
        comparisons = pd.read_csv(compared) if compared.exists() else None
        oods = {b: _envelope(_paired(by_seed, rmc[0], b, ood), comparisons, rmc[0], b, ood) for b in baselines}
        ids = {b: _envelope(_paired(by_seed, rmc[0], b, "acc_dev"), comparisons, rmc[0], b, "acc_dev") for b in baselines}
        verdicts = {b: _verdict(iv, +1) for b, iv in oods.items()}
        if any(v == "refuted" for v in verdicts.values()):
            verdict = "refuted"
        elif all(v == "supported" for v in verdicts.values()) and not any(_verdict(iv, +1) == "refuted" for iv in ids.values()):
            verdict = "supported"
        else:
            verdict = "unresolved"
        weakest = min(oods, key=lambda b: oods[b].low if not np.isnan(oods[b].low) else oods[b].estimate)
        detail = "; ".join(f"- {b.split('-', 1)[1]} {_verdict(oods[b], +1)} (ID {_verdict(ids[b], +1)})" for b in baselines)
        rows.append(_row(label, "rmc-ood", oods[weakest], verdict, f"RMC {detail}; interval shown: the weakest, - {weakest}"))
    split = _file(run, "split_agreement_by_seed.csv")
    if split.exists():
        agreement = pd.read_csv(split)
        iv = seed_interval((agreement["agreement"] - agreement["chance"]).to_numpy())
        rows.append(_row(label, "split", iv, _verdict(iv, +1), "agreement - chance"))
    subnets = _file(run, "subnetworks_by_seed.csv")
    if subnets.exists() and len(table := pd.read_csv(subnets)):
        if "sparsity" not in table.columns:
            table["sparsity"] = table["subnetwork"].str.removeprefix("subnet-").astype(float) / 100
        slopes = [np.polyfit(g["sparsity"], g["gap"], 1)[0] for _, g in table.groupby("seed")]
        iv = seed_interval(np.asarray(slopes))
        rows.append(_row(label, "gap", iv, _verdict(iv, +1), "slope of the sub-networks' easy-hard gap per unit sparsity"))
    sweep = next(iter(sorted(run.glob("*_sweep.csv"))), None) if run.is_dir() else None
    if sweep is not None:
        table = pd.read_csv(sweep)
        control = table[(table["kind"] == "rmc_minus_control") & table["model"].str.endswith("[shuffled]")
                        & (table["metric"] == ood)]
        for r in control.itertuples():
            iv = Interval(r.value, r.low, r.high)
            rows.append(_row(label, "cause", iv, _verdict(iv, +1), f"RMC - {r.model}, {ood}"))
    return rows


def markdown(table: pd.DataFrame) -> str:
    shown = table.assign(interval=[f"{r.estimate:+.3f} [{r.low:+.3f}, {r.high:+.3f}]" for r in table.itertuples()])
    return to_markdown(shown[["testbed", "claim", "verdict", "interval", "detail"]]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "DIR", "OOD"),
                        help="a run's label, its --out folder (or a file prefix such as docs/results/cpu_medium_) "
                             "and the OOD accuracy column to judge it on")
    parser.add_argument("--out", type=Path, required=True, help="the claims CSV (the markdown goes beside it)")
    args = parser.parse_args(argv)
    table = pd.DataFrame([row for label, run, ood in args.run for row in claims(label, Path(run), ood)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    args.out.with_suffix(".md").write_text(markdown(table))
    print(markdown(table))


if __name__ == "__main__":
    main()
