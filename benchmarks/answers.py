"""The answers table that opens docs/results.md: one row per question and testbed, each
read from the committed per-seed tables of an experiment folder (or a benchmark's CSV), so
that every cell can be recomputed and none is typed by hand:

    python -m rmc.benchmarks.answers docs/results/answers.yaml --csv docs/results/answers.csv

The YAML file lists the testbeds (an experiment folder each, re-tabled by `rmc experiment
--merge FOLDER`) and the questions. A question's row comes from one of:
- `claim` (+ `versus`, `metric`): a row of the folder's `claims.csv` (the claims view,
  rmc_core/experiment_claims.py: verdict, Holm verdict, testable);
- `compare: "a - b"` (+ `metric`, `run`): a comparison of the folder's `comparisons.csv`,
  a declared one by its text or a run's own by its two models' names;
- `table` (+ `where`, `estimate`, `low`, `high`): one row of a benchmark's CSV.
Every row carries its seeds, how its interval was made, the seeds a paired t-test needs for
80 % power at the comparison's minimum effect, and whether the OOD set is a test at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from rmc_core.evaluation.statistics import Interval
from rmc_core.experiment_claims import judged_metrics, testable_sets
from rmc_core.report import to_markdown

COLUMNS = ["question", "testbed", "metric", "estimate", "low", "high", "n_seeds", "interval", "seeds_for_power",
           "testable", "verdict", "verdict_holm", "source"]


def _one(frame: pd.DataFrame, what: str) -> pd.Series:
    if len(frame) != 1:
        raise ValueError(f"{what}: {len(frame)} rows match, expected one")
    return frame.iloc[0]


def side_verdict(low: float, high: float, n_seeds: int) -> str:
    """A comparison without a claimed direction: resolved on the side its interval excludes 0."""
    if n_seeds < 2:
        return "one seed: not resolved"
    return {1: "resolved, above 0", -1: "resolved, below 0", 0: "unresolved"}[Interval(np.nan, low, high).side]


def from_claims(folder: Path, q: dict[str, Any]) -> dict[str, Any]:
    claims = pd.read_csv(folder / "claims.csv", keep_default_na=False, na_values=[""])
    rows = claims[claims["claim"] == q["claim"]]
    if "versus" in q:
        rows = rows[rows["versus"] == q["versus"]]
    if "run" in q:
        rows = rows[rows["run"] == q["run"]]
    # The folder's headline by default: the claims view lists it first.
    metric = q.get("metric", rows["metric"].iloc[0] if len(rows) else None)
    rows = rows[(rows["metric"] == metric) | rows["metric"].isna()]
    r = _one(rows, f"{folder.name}: claim {q['claim']} {q.get('versus', '')} {q.get('metric', '')}")
    return {"metric": r["metric"], "estimate": r["estimate"], "low": r["low"], "high": r["high"],
            "n_seeds": r["n_seeds"], "interval": r["interval"], "seeds_for_power": r["seeds_for_power"],
            "testable": r["testable"], "verdict": r["verdict"], "verdict_holm": r["verdict_holm"],
            "source": f"{folder}/claims.csv"}


def from_comparisons(folder: Path, q: dict[str, Any]) -> dict[str, Any]:
    compared = pd.read_csv(folder / "comparisons.csv")
    a, _, b = q["compare"].partition(" - ")
    declared = compared["declared"] == q["compare"]
    rows = compared[(declared if declared.any() else (compared["a"] == a) & (compared["b"] == b))
                    & (compared["metric"] == q["metric"])]
    if "run" in q:
        rows = rows[rows["a_run"] == q["run"]]
    r = _one(rows, f"{folder.name}: {q['compare']} on {q['metric']}")
    premise = pd.read_csv(folder / "premise_by_seed.csv")
    sets = testable_sets(premise[premise["run"] == r["a_run"]])
    testable = judged_metrics(q["metric"], sets, {q["metric"]}).get(q["metric"], "n/a")
    verdict = side_verdict(r["low"], r["high"], int(r["n_seeds"]))
    return {"metric": q["metric"], "estimate": r["difference"], "low": r["low"], "high": r["high"],
            "n_seeds": r["n_seeds"], "interval": r["interval"], "seeds_for_power": r["seeds_for_power"],
            "testable": testable, "verdict": "untestable" if testable == "no" else verdict, "verdict_holm": "",
            "source": f"{folder}/comparisons.csv"}


def from_table(q: dict[str, Any]) -> dict[str, Any]:
    frame = pd.read_csv(q["table"])
    for column, value in q.get("where", {}).items():
        frame = frame[frame[column].astype(str) == str(value)]
    r = _one(frame, f"{q['table']} where {q.get('where')}")
    low, high = r[q["low"]], r[q["high"]]
    return {"metric": q["estimate"], "estimate": r[q["estimate"]], "low": low, "high": high, "n_seeds": 1,
            "interval": q["interval"], "seeds_for_power": np.nan, "testable": "n/a",
            "verdict": q.get("verdict", side_verdict(low, high, 1)), "verdict_holm": "", "source": q["table"]}


def answers(spec: dict[str, Any], root: Path = Path(".")) -> pd.DataFrame:
    """One row per question and testbed, in the YAML file's order."""
    testbeds = {name: {**t, "folder": root / t["folder"]} for name, t in spec["testbeds"].items()}
    rows = []
    for question in spec["questions"]:
        for where in question.get("testbeds", [None]):
            # A testbed is a name, or a name with settings of its own (`{testbed: x, run: imp40}`).
            q = {**question, **where} if isinstance(where, dict) else {**question, "testbed": where}
            if "table" in q:
                found = from_table({**q, "table": root / q["table"]})
                label = q["label"]
            else:
                t = testbeds[q["testbed"]]
                found = from_claims(t["folder"], q) if "claim" in q else from_comparisons(t["folder"], q)
                label = t["label"]
            rows.append({"question": q["question"], "testbed": label, **found})
    return pd.DataFrame(rows, columns=COLUMNS)


def _difference(metric: str, estimate: float, low: float, high: float) -> str:
    """A difference signed, a speed-up ratio as `x`, each with its interval where it has one."""
    if metric.startswith("speedup"):
        return f"{estimate:.3f}x [{low:.3f}, {high:.3f}]"
    return f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]" if not np.isnan(low) else f"{estimate:+.3f}"


def _verdict(verdict: str, holm: str) -> str:
    return verdict if not holm or holm == "untestable" else f"{verdict}; Holm {holm}"


def markdown(table: pd.DataFrame) -> str:
    """The table as results.md shows it: fractions to 3 places, as the CSV's sources round."""
    shown = table.assign(
        difference=[_difference(*r) for r in zip(table["metric"].fillna(""), table["estimate"], table["low"],
                                                 table["high"], strict=True)],
        power=["" if np.isnan(p) else f"{p:.0f}" for p in table["seeds_for_power"]],
        verdict=[_verdict(v, h) for v, h in zip(table["verdict"], table["verdict_holm"].fillna(""), strict=True)])
    return to_markdown(shown[["question", "testbed", "metric", "difference", "n_seeds", "interval", "power", "testable",
                              "verdict"]].rename(columns={"n_seeds": "seeds", "power": "seeds for 80 % power"}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the questions and testbeds (docs/results/answers.yaml)")
    parser.add_argument("--csv", type=Path, required=True, help="where the table goes (its markdown is printed)")
    args = parser.parse_args(argv)
    table = answers(yaml.safe_load(args.spec.read_text()))
    table.to_csv(args.csv, index=False)
    print(markdown(table))
    print(f"\nwritten to {args.csv}")


if __name__ == "__main__":
    main()
