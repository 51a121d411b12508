"""Does RMC help where its premise holds? The synthetic task swept over shortcut strength.

`python -m rmc.benchmarks.synthetic_sweep` runs the RMC flow (cached, so a rerun resumes) on
the synthetic task once per shortcut strength (`--biases`, default 0.7 0.8 0.9) with
`--seeds` (default 0 1 2) as DAG branches, the packaged MiniLM teacher, IMP sub-networks
and Vanilla, Distil, Smooth, Smooth-matched (Smooth at RMC's mean exponent: a control) and
RMC students at 40 % sparsity. The design (`DESIGN`) was fixed from the premise checks
alone (teacher and sub-networks), before any student was trained or compared.

With `--controls shuffled annotated`, each strength also runs RMC with its difficulty
shuffled across rows and with the planted hard rows as difficulty (the oracle), sharing
the teacher and sub-networks through the cache; RMC minus each is a t-interval over the
per-seed paired differences (the runs pair by seed: same teacher, same sub-networks).

Writes to `--out` (default rmc-runs/synthetic-sweep):
- synthetic_premise.csv: per strength, the premise checks: teacher accuracy on the hard
  (bias-conflicting) dev rows with its interval over seeds, each sub-network's easy and hard
  dev accuracy, and the variance split's agreement with the planted hard rows vs chance;
- synthetic_sweep.csv: per strength and model, each metric's mean and 95 % t-interval over
  seeds; per strength and baseline, RMC minus the baseline with its paired interval (the
  envelope of the bootstrap over examples and seeds and the t-interval over per-seed
  differences), and with --controls, RMC minus RMC under each control;
- synthetic_sweep.png: that difference on synthetic OOD against the shortcut strength;
- synthetic_sweep.md: both as markdown tables (the ones docs/results.md shows);
- synthetic_estimators.csv: with --estimators, per strength and estimator: split
  agreement with the planted hard dev rows (mean over seeds) and chance, seconds spent
  scoring rows per seed (sub-networks' training and prediction, or the teacher's dev
  passes for cartography; teacher-loss reuses the teacher's predictions, which every run
  makes), and RMC minus Vanilla on synthetic OOD as a t-interval over per-seed
  differences, with its share of IMP's gain;
- synthetic_by_seed.csv: every model's per-seed values behind the tables;
- synthetic_config_<strength>.json: the exact RunConfig each strength ran (and
  synthetic_config_<strength>_<control>.json for each control).

`--tables-only` tables the runs already finished under `--out` and runs nothing (a sweep
stopped part-way: each finished run is in, the others are named and left out).
`--collect DIR ...` merges the outputs of sweeps run separately (one strength per process
or machine) into `--out` without running anything; `--merge-seeds DIR ...` merges sweeps of
one design that ran different seeds, with intervals over all their seeds (`merge_seeds`;
the estimators' table too, when every one of them ran the same --estimators).

`--runner in-process` runs each run in this process without Prefect (tasks/in_process.py:
same DAG, resuming from the store), on `--device` or this machine's GPUs.

`--testbed shortcut-mnli` sweeps real text instead: MNLI with an injected marker word
(`data.shortcut_strength`, rmc_core/data/shortcut.py; `SHORTCUT_MNLI_DESIGN`), compared on
its OOD copy of dev (`acc_shortcut-ood`); the files are then named shortcut-mnli_*.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from rmc_core.config import DataConfig, RunConfig, SubnetworkConfig
from rmc_core.evaluation.statistics import seed_interval
from rmc_core.objectives.estimators import ESTIMATORS
from rmc_core.report import to_markdown
from rmc_core.stages import DYNAMICS_COST
from rmc_core.store import Ref, Store

OOD = "acc_synthetic-ood"
BASELINES = ("vanilla", "distil", "smooth", "smooth-matched")
CONTROLS = tuple(name for name, spec in ESTIMATORS.items() if spec.control)
CHEAPER = ("oneshot", "teacher-loss", "cartography")
DESIGN = RunConfig(methods=(*BASELINES, "rmc"))
"""The demo's defaults (synthetic task, MiniLM teacher 3 epochs, IMP sub-networks at
0.2-0.85, students at 40 %, 2 epochs each) with the four compared methods; each sweep
writes the exact config of each strength next to its tables (synthetic_config_<strength>.json)."""


SHORTCUT_MNLI_DESIGN = RunConfig(task="mnli", data=DataConfig(shortcut_strength=0.7, max_dev=3000, max_ood=3000),
                                 subnetworks=SubnetworkConfig(estimator="oneshot", recovery_epochs=0.25),
                                 methods=(*BASELINES, "rmc"), seeds=(0, 1, 2))
"""MNLI with an injected shortcut (data/shortcut.py): the 9k train subset, 3,000 dev and
3,000 HANS rows, the marker at 0.7 and one-shot sub-networks with a quarter-epoch recovery,
the recipe whose premise was checked before any other student trained (docs/results.md;
at 0.9 the teacher follows the marker everywhere); otherwise the synthetic design
(configs/shortcut-mnli.json is this run)."""


@dataclass(frozen=True)
class Testbed:
    """What a sweep varies and reads: its design, the data field that sets the shortcut's
    strength, and the OOD accuracy column RMC is compared on. `name` prefixes its files."""

    name: str
    design: RunConfig
    strength: str
    ood: str


SYNTHETIC = Testbed("synthetic", DESIGN, "synthetic_bias", OOD)
TESTBEDS = {t.name: t for t in (SYNTHETIC, Testbed("shortcut-mnli", SHORTCUT_MNLI_DESIGN, "shortcut_strength",
                                                    "acc_shortcut-ood"))}


def sweep_config(bias: float, seeds: tuple[int, ...], testbed: Testbed = SYNTHETIC) -> RunConfig:
    """The fixed design at one shortcut strength."""
    data = testbed.design.data.model_copy(update={testbed.strength: bias})
    return testbed.design.model_copy(update={"data": data, "seeds": seeds})


def control_config(bias: float, seeds: tuple[int, ...], estimator: str, testbed: Testbed = SYNTHETIC) -> RunConfig:
    """RMC alone with a control's or another estimator's difficulty, otherwise the design
    at that strength (oneshot: the trained teacher pruned with no recovery fine-tune, the
    cheap variant). A control trains the design's own sub-networks, so it reuses them."""
    cfg = sweep_config(bias, seeds, testbed)
    trains = {"controls_on": cfg.subnetworks.estimator} if estimator in CONTROLS else {}
    return cfg.model_copy(update={"methods": ("rmc",),
                                  "subnetworks": cfg.subnetworks.model_copy(update={"estimator": estimator, **trains})})


def control_rows(bias: float, main: dict[str, pd.DataFrame], control: dict[str, pd.DataFrame], estimator: str,
                 ood: str = OOD) -> list[dict]:
    """RMC minus RMC-with-a-control's-difficulty, per metric: the mean of the per-seed paired
    differences with its t-interval over seeds (`seed_interval`)."""
    rmc = next(m for m in main["results_by_seed"]["model"].unique() if m.endswith("-rmc"))
    a, b = (t["results_by_seed"].loc[lambda f: f["model"] == rmc].set_index("seed").sort_index() for t in (main, control))
    rows = []
    for metric in (ood, "acc_dev", "dev_hard"):
        iv = seed_interval((a[metric] - b.loc[a.index, metric]).to_numpy())
        rows.append({"bias": bias, "kind": "rmc_minus_control", "model": f"{rmc}[{estimator}]", "metric": metric,
                     "value": iv.estimate, "low": iv.low, "high": iv.high, "n_seeds": len(a), "resolved": iv.resolved})
    return rows


def scoring_seconds(out: Path, store: Path) -> float:
    """Seconds per seed that one run spent scoring training rows for difficulty, from its
    costs.csv (every sub-network stage, cached ones at the cost of the run that computed
    them) and the teachers' dynamics records (cartography's dev passes)."""
    costs = pd.read_csv(out / "costs.csv")
    summary = json.loads((out / "summary.json").read_text())
    seeds = {m["seed"] for m in summary["models"]}
    seconds = costs.loc[costs["stage"].str.contains("subnet-"), "seconds"].sum()
    records = [Store(store).record(Ref.model_validate(m["model"]), DYNAMICS_COST) for m in summary["models"]
               if m["role"] == "teacher"]
    seconds += sum(r["seconds"] for r in records if r)
    return float(seconds / len(seeds))


def estimator_row(bias: float, estimator: str, main: dict[str, pd.DataFrame], run: dict[str, pd.DataFrame],
                  seconds: float, ood: str = OOD) -> dict:
    """One estimator at one strength: its split agreement, its cost, and RMC's OOD gain over
    the design run's Vanilla with it (paired by seed)."""
    agreement = run["split_agreement"].iloc[0]
    return {"bias": bias, "estimator": estimator, "agreement": agreement["agreement"], "chance": agreement["chance"],
            "seconds_per_seed": seconds, **gain_over_vanilla(main["results_by_seed"], run["results_by_seed"], ood)}


def gain_over_vanilla(design: pd.DataFrame, run: pd.DataFrame, ood: str) -> dict:
    """RMC (as `run` trained it) minus the design's Vanilla on `ood`, paired by seed: what an
    estimator's difficulty buys, as a t-interval over the per-seed differences."""
    rmc = next(m for m in design["model"].unique() if m.endswith("-rmc"))
    vanilla = design.loc[design["model"] == rmc.replace("-rmc", "-vanilla")].set_index("seed")[ood].sort_index()
    with_it = run.loc[run["model"] == rmc].set_index("seed")[ood]
    paired = (with_it - vanilla).dropna()
    gain = seed_interval(paired.to_numpy())
    return {"rmc_minus_vanilla": gain.estimate, "low": gain.low, "high": gain.high, "n_seeds": len(paired),
            "resolved": gain.resolved}


def with_shares(estimators: pd.DataFrame) -> pd.DataFrame:
    """Each estimator's cost and OOD gain as a share of IMP's at the same strength. The gain
    share is left empty (NaN) where IMP's own gain is not resolved above 0: a share of an
    unresolved gain is a ratio of noise (two seeds of 0.8 gave 5.0 and -88)."""
    imp = estimators[estimators["estimator"] == "imp"].set_index("bias")
    imp_gain = imp["rmc_minus_vanilla"].where(imp["low"] > 0)
    return estimators.assign(cost_share=estimators["seconds_per_seed"] / estimators["bias"].map(imp["seconds_per_seed"]),
                             gain_share=estimators["rmc_minus_vanilla"] / estimators["bias"].map(imp_gain))


def estimators_markdown(estimators: pd.DataFrame) -> str:
    rows = [{"shortcut strength": f"{r.bias:.2f}", "estimator": r.estimator,
             "split agreement (chance)": f"{100 * r.agreement:.1f} ({100 * r.chance:.1f})",
             "scoring s/seed (share of IMP)": f"{r.seconds_per_seed:.0f} ({r.cost_share:.2f})",
             "RMC - Vanilla OOD": f"{_span(r.rmc_minus_vanilla, r.low, r.high, '+')} "
                                  f"{'resolved' if r.resolved else 'unresolved'}",
             "share of IMP's gain": "- (IMP's unresolved)" if pd.isna(r.gain_share) else f"{r.gain_share:.2f}"}
            for r in estimators.itertuples()]
    return "\n".join(["## Difficulty estimators (percent; seconds per seed)", "", to_markdown(pd.DataFrame(rows))]) + "\n"


def by_seed_rows(bias: float, run: str, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return tables["results_by_seed"].assign(bias=bias, run=run)


def premise_rows(bias: float, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """The three premise checks of one strength, as rows: (a) the teacher's hard-row dev
    accuracy, (b) each sub-network's easy/hard accuracy, (c) split agreement vs chance."""
    iv = tables["results_interval"].set_index(["model", "metric"])
    teacher = iv.loc[("teacher", "dev_hard")]
    rows = [{"bias": bias, "check": "teacher_dev_hard", "who": "teacher", "value": teacher["mean"],
             "low": teacher["low"], "high": teacher["high"]}]
    for r in tables["subnetworks"].itertuples():
        rows += [{"bias": bias, "check": f"subnetwork_dev_{part}", "who": r.subnetwork, "value": getattr(r, part)}
                 for part in ("easy", "hard")]
    for r in tables["split_agreement"].itertuples():
        rows += [{"bias": bias, "check": "split_agreement", "who": "variance split", "value": r.agreement},
                 {"bias": bias, "check": "split_agreement_chance", "who": "variance split", "value": r.chance}]
    return rows


def effect_rows(bias: float, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Per model and metric the mean over seeds with its interval, and per baseline the
    paired RMC - baseline difference (the run's student-vs-teacher comparisons are not RMC's)."""
    rows = [{"bias": bias, "kind": "model", "model": r.model, "metric": r.metric, "value": r.mean, "low": r.low,
             "high": r.high, "n_seeds": r.n_seeds} for r in tables["results_interval"].itertuples()]
    rows += [{"bias": bias, "kind": "rmc_minus", "model": r.b, "metric": r.metric, "value": r.difference, "low": r.low,
              "high": r.high, "n_seeds": r.n_seeds, "resolved": r.resolved} for r in tables["comparisons"].itertuples()
             if r.a_method == "rmc" and r.b != "teacher"]
    return rows


def plot(effects: pd.DataFrame, path: Path, testbed: Testbed = SYNTHETIC) -> None:
    """RMC minus each baseline on the testbed's OOD set, with its interval, against shortcut strength."""
    diff = effects[(effects["kind"] == "rmc_minus") & (effects["metric"] == testbed.ood)]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (baseline, group) in enumerate(diff.groupby("model", sort=False)):
        x = group["bias"] + (i - 1) * 0.004
        ax.errorbar(x, 100 * group["value"], yerr=[100 * (group["value"] - group["low"]), 100 * (group["high"] - group["value"])],
                    marker="o", capsize=3, label=f"RMC - {baseline}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("shortcut strength (P(the shortcut agrees with the label))")
    ax.set_ylabel(f"{testbed.ood.removeprefix('acc_')} accuracy difference (points)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _span(value: float, low: float, high: float, sign: str = "") -> str:
    """A fraction and its interval in percent; sign="+" for differences."""
    return f"{100 * value:{sign}.1f} [{100 * low:{sign}.1f}, {100 * high:{sign}.1f}]"


def tables_markdown(premise: pd.DataFrame, effects: pd.DataFrame, testbed: Testbed = SYNTHETIC) -> str:
    """The premise table (one row per strength) and the effect table (OOD accuracy per
    model, RMC minus each baseline with its interval and whether it excludes 0)."""
    premise_table = []
    for bias, p in premise.groupby("bias"):
        t = p[p["check"] == "teacher_dev_hard"].iloc[0]
        row = {"shortcut strength": f"{bias:.2f}", "teacher hard dev": _span(t["value"], t["low"], t["high"])}
        for part in ("hard", "easy"):
            sub = p[p["check"] == f"subnetwork_dev_{part}"]
            row[f"sub-networks {part} dev ({', '.join(w.removeprefix('subnet-') for w in sub['who'])} %)"] = \
                " / ".join(f"{100 * v:.0f}" for v in sub["value"])
        agree = p.set_index("check")["value"]
        row["split agreement (chance)"] = f"{100 * agree['split_agreement']:.1f} ({100 * agree['split_agreement_chance']:.1f})"
        premise_table.append(row)
    effect_table = []
    for bias, e in effects.groupby("bias"):
        models = e[(e["kind"] == "model") & (e["metric"] == testbed.ood)].set_index("model")
        row = {"shortcut strength": f"{bias:.2f}"}
        row |= {f"OOD {m}": _span(r["value"], r["low"], r["high"]) for m, r in models.iterrows()}
        for r in e[e["kind"].isin(["rmc_minus", "rmc_minus_control"]) & (e["metric"] == testbed.ood)].itertuples():
            # One seed: an interval over its rows says nothing of seed-to-seed spread.
            verdict = "unresolved (one seed)" if r.n_seeds < 2 else "resolved" if r.resolved else "unresolved"
            row[f"RMC - {r.model.split('-', 1)[1]}"] = f"{_span(r.value, r.low, r.high, '+')} {verdict}"
        effect_table.append(row)
    return "\n".join(["## Premise checks (percent)", "", to_markdown(pd.DataFrame(premise_table)), "",
                      f"## {testbed.ood.removeprefix('acc_')} accuracy and RMC's difference (points, 95 % intervals)", "",
                      to_markdown(pd.DataFrame(effect_table))]) + "\n"


def write_outputs(premise: pd.DataFrame, effects: pd.DataFrame, out: Path, by_seed: pd.DataFrame | None = None,
                  estimators: pd.DataFrame | None = None, testbed: Testbed = SYNTHETIC) -> None:
    prefix = testbed.name
    if by_seed is not None:
        by_seed.to_csv(out / f"{prefix}_by_seed.csv", index=False)
    premise.to_csv(out / f"{prefix}_premise.csv", index=False)
    effects.to_csv(out / f"{prefix}_sweep.csv", index=False)
    markdown = tables_markdown(premise, effects, testbed)
    if estimators is not None and len(estimators):
        estimators = with_shares(estimators)
        estimators.to_csv(out / f"{prefix}_estimators.csv", index=False)
        markdown += "\n" + estimators_markdown(estimators)
    (out / f"{prefix}_sweep.md").write_text(markdown)
    plot(effects, out / f"{prefix}_sweep.png", testbed)


def collect(directories: list[Path], out: Path, testbed: Testbed = SYNTHETIC) -> None:
    """One premise table, one sweep table, the per-seed values, the markdown and the plot
    from several sweeps' outputs."""
    def merged(name: str) -> pd.DataFrame:
        return pd.concat([pd.read_csv(d / name) for d in directories if (d / name).exists()],
                         ignore_index=True).sort_values("bias", kind="stable")

    def optional(name: str) -> pd.DataFrame | None:
        return merged(name) if any((d / name).exists() for d in directories) else None

    prefix = testbed.name
    estimators = optional(f"{prefix}_estimators.csv")
    estimators = estimators.drop(columns=["cost_share", "gain_share"]) if estimators is not None else None
    write_outputs(merged(f"{prefix}_premise.csv"), merged(f"{prefix}_sweep.csv"), out, optional(f"{prefix}_by_seed.csv"),
                  estimators, testbed)
    for config in (c for d in directories for c in d.glob(f"{prefix}_config_*.json")):
        (out / config.name).write_text(config.read_text())


def merge_seeds(directories: list[Path], out: Path, testbed: Testbed = SYNTHETIC) -> None:
    """The tables of one design whose seeds ran as separate sweeps (one seed per session
    or machine), from their per-seed values alone: each model's mean with its t-interval
    over seeds, and RMC minus each baseline and each control as the t-interval over the
    per-seed paired differences, and each student minus the teacher (`minus_teacher`:
    what compression cost) likewise. The bootstrap over examples needs every example's
    prediction, which a sweep's files do not keep, so the t-interval alone decides
    `resolved` here (with 3 seeds it is the wider of the two)."""
    by_seed = pd.concat([pd.read_csv(d / f"{testbed.name}_by_seed.csv") for d in directories], ignore_index=True)
    twice = by_seed[by_seed.duplicated(["bias", "run", "model", "seed"])]
    if len(twice):
        raise ValueError(f"seed {sorted(set(twice['seed']))} appears in more than one of {[str(d) for d in directories]}")
    configs = {d: {c.name: json.loads(c.read_text()) | {"seeds": None} for c in d.glob(f"{testbed.name}_config_*.json")}
               for d in directories}
    designs = {json.dumps({n: c for n, c in named.items() if run_of(n, testbed) == "design"}, sort_keys=True)
               for named in configs.values()}
    shared = {n: [named[n] for named in configs.values() if n in named] for named in configs.values() for n in named}
    if len(designs) > 1 or any(c != runs[0] for runs in shared.values() for c in runs):
        raise ValueError("these sweeps ran different designs (their configs differ beyond the seeds); merge only seeds of one")
    metrics = [m for m in (testbed.ood, "acc_dev", "dev_hard") if m in by_seed]
    premise, effects = [], []
    for bias, rows in by_seed.groupby("bias"):
        design = rows[rows["run"] == "design"]
        for (model, metric), values in design.melt(["model", "seed"], metrics, "metric").groupby(["model", "metric"], sort=False):
            iv = seed_interval(values["value"].to_numpy())
            effects.append({"bias": bias, "kind": "model", "model": model, "metric": metric, "value": iv.estimate,
                            "low": iv.low, "high": iv.high, "n_seeds": len(values)})
        wide = design.pivot(index="seed", columns="model", values=metrics)

        def of(model: str, table: pd.DataFrame = wide) -> pd.DataFrame:
            return table.xs(model, axis=1, level=1)

        models = design["model"].unique()
        rmc = next(m for m in models if m.endswith("-rmc"))
        diffs = [("rmc_minus", b, of(rmc) - of(b)) for b in models if b.endswith(tuple(f"-{x}" for x in BASELINES))]
        diffs += [("minus_teacher", m, of(m) - of("teacher")) for m in models if m != "teacher"]
        for run in (r for r in rows["run"].unique() if r != "design"):
            control = rows[rows["run"] == run].pivot(index="seed", columns="model", values=metrics)
            diffs.append(("rmc_minus_control", f"{rmc}[{run}]", of(rmc) - of(rmc, control)))
        for kind, name, diff in diffs:
            for metric in metrics:
                values = diff[metric].dropna().to_numpy()
                iv = seed_interval(values)
                effects.append({"bias": bias, "kind": kind, "model": name, "metric": metric, "value": iv.estimate,
                                "low": iv.low, "high": iv.high, "n_seeds": len(values), "resolved": iv.resolved})
        teacher = seed_interval(design.loc[design["model"] == "teacher", "dev_hard"].to_numpy())
        premise.append({"bias": bias, "check": "teacher_dev_hard", "who": "teacher", "value": teacher.estimate,
                        "low": teacher.low, "high": teacher.high})
    per_seed = pd.concat([pd.read_csv(d / f"{testbed.name}_premise.csv") for d in directories])
    rest = per_seed[per_seed["check"] != "teacher_dev_hard"].groupby(["bias", "check", "who"], sort=False)["value"].mean()
    premise += rest.reset_index().to_dict("records")
    estimators = merge_estimators(directories, by_seed, testbed)
    write_outputs(pd.DataFrame(premise), pd.DataFrame(effects), out, by_seed, estimators, testbed)
    write_run_tables(directories, by_seed, out, testbed)
    for name, runs in shared.items():
        seeds = sorted(set(by_seed.loc[by_seed["run"] == run_of(name, testbed), "seed"]))
        (out / name).write_text(json.dumps(runs[0] | {"seeds": seeds}, indent=1))


def run_of(config_name: str, testbed: Testbed = SYNTHETIC) -> str:
    """The run a sweep's config file is for: "design" (<testbed>_config_<strength>.json) or the
    control or estimator it names (<testbed>_config_<strength>_<name>.json)."""
    return config_name.removeprefix(f"{testbed.name}_config_").removesuffix(".json").partition("_")[2] or "design"


def merge_estimators(directories: list[Path], by_seed: pd.DataFrame, testbed: Testbed = SYNTHETIC) -> pd.DataFrame | None:
    """The estimators' table over the merged seeds that ran them (sweeps without --estimators
    add none): split agreement, chance and scoring seconds averaged over those seeds (agreement
    minus chance with its t-interval over them), RMC's
    gain over Vanilla recomputed from the per-seed values (a mean of one-seed intervals would
    be no interval)."""
    tables = {d: d / f"{testbed.name}_estimators.csv" for d in directories if (d / f"{testbed.name}_estimators.csv").exists()}
    ran = {d: set(pd.read_csv(t)["estimator"]) for d, t in tables.items()}
    if not ran:
        return None
    if len({frozenset(e) for e in ran.values()}) > 1:
        raise ValueError("these sweeps ran different --estimators "
                         f"({ {str(d): sorted(e) for d, e in ran.items()} }); rerun them with the same ones")
    per_seed = pd.concat([pd.read_csv(t) for t in tables.values()], ignore_index=True)
    seeds = set(by_seed.loc[by_seed["run"].isin(set(per_seed["estimator"]) - {"imp"}), "seed"])
    rows = []
    for (bias, estimator), group in per_seed.groupby(["bias", "estimator"], sort=False):
        at = by_seed[(by_seed["bias"] == bias) & by_seed["seed"].isin(seeds)]
        run = "design" if estimator == "imp" else estimator
        above = seed_interval((group["agreement"] - group["chance"]).to_numpy())
        rows.append({"bias": bias, "estimator": estimator, "agreement": group["agreement"].mean(),
                     "chance": group["chance"].mean(), "agreement_minus_chance": above.estimate,
                     "agreement_low": above.low, "agreement_high": above.high,
                     "seconds_per_seed": group["seconds_per_seed"].mean(),
                     **gain_over_vanilla(at[at["run"] == "design"], at[at["run"] == run], testbed.ood)})
    return pd.DataFrame(rows)


def write_run_tables(directories: list[Path], by_seed: pd.DataFrame, out: Path, testbed: Testbed = SYNTHETIC) -> None:
    """The per-seed tables a run folder holds (results, split agreement, sub-networks), so
    that the claims (benchmarks/claims.py) read the merged seeds as one run. A folder that
    lacks the last two but ran one seed gives them from its premise checks."""
    design = by_seed[by_seed["run"] == "design"].drop(columns=["bias", "run"])
    design.to_csv(out / "results_by_seed.csv", index=False)
    split, subnets = [], []
    for d in directories:
        seeds = sorted(pd.read_csv(d / f"{testbed.name}_by_seed.csv")["seed"].unique())
        if (d / "split_agreement_by_seed.csv").exists() and (d / "subnetworks_by_seed.csv").exists():
            split.append(pd.read_csv(d / "split_agreement_by_seed.csv"))
            subnets.append(pd.read_csv(d / "subnetworks_by_seed.csv"))
            continue
        if len(seeds) != 1:
            raise ValueError(f"{d} ran seeds {seeds} but holds no per-seed split agreement or sub-network tables")
        premise = pd.read_csv(d / f"{testbed.name}_premise.csv")
        value = premise.set_index("check")["value"]
        split.append(pd.DataFrame([{"agreement": value["split_agreement"], "chance": value["split_agreement_chance"],
                                    "seed": seeds[0]}]))
        parts = premise[premise["check"].str.startswith("subnetwork_dev_")].pivot(index="who", columns="check", values="value")
        subnets.append(pd.DataFrame({"subnetwork": parts.index, "sparsity": parts.index.str.removeprefix("subnet-").astype(float) / 100,
                                     "easy": parts["subnetwork_dev_easy"].to_numpy(), "hard": parts["subnetwork_dev_hard"].to_numpy(),
                                     "seed": seeds[0]}))
    pd.concat(split, ignore_index=True).to_csv(out / "split_agreement_by_seed.csv", index=False)
    subnets = pd.concat(subnets, ignore_index=True)
    subnets.assign(gap=subnets["easy"] - subnets["hard"]).to_csv(out / "subnetworks_by_seed.csv", index=False)


def read_run(out: Path) -> dict[str, pd.DataFrame]:
    """A finished run's tables, from its --out folder."""
    return {p.stem: pd.read_parquet(p) for p in out.glob("*.parquet")}


def run_with_cli(config: Path, store: Path, out: Path) -> dict[str, pd.DataFrame]:
    """One strength through `rmc run` (cached in `store`), read back from its --out tables:
    the benchmark drives the public command, as a user would, not the flow's internals."""
    subprocess.run([sys.executable, "-m", "rmc.flows.cli", "run", "--config", str(config), "--store", str(store),
                    "--out", str(out)], check=True)
    return read_run(out)


def run_in_this_process(config: RunConfig, store: Path, out: Path, devices: list[str] | None) -> dict[str, pd.DataFrame]:
    """One strength without Prefect (tasks/in_process.py, resuming from `store`), its tables
    written as `rmc run` writes them."""
    from rmc.flows.commands import write_report
    from rmc.tasks.in_process import run_in_process
    from rmc_core.out_folder import written_whole

    tables = run_in_process(config, store, devices)
    with written_whole(out) as folder:
        write_report(tables, folder, config.task)
    return read_run(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testbed", choices=TESTBEDS, default="synthetic",
                        help="synthetic: the planted overlap shortcut; shortcut-mnli: MNLI with an injected marker word")
    parser.add_argument("--biases", type=float, nargs="+", default=[0.7, 0.8, 0.9], help="shortcut strengths")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--out", type=Path, default=Path("rmc-runs/synthetic-sweep"))
    parser.add_argument("--controls", nargs="*", default=[], choices=CONTROLS,
                        help="also run RMC with each control's difficulty (docs/method.md, controls)")
    parser.add_argument("--estimators", nargs="*", default=[], choices=CHEAPER,
                        help="also run RMC with each cheaper difficulty estimator and compare them with IMP")
    parser.add_argument("--runner", choices=("cli", "in-process"), default="cli",
                        help="cli: each run through `rmc run` (Prefect); in-process: the same DAG in this process, "
                             "without Prefect (where it is not installed), resuming from the store all the same")
    parser.add_argument("--device", nargs="+", help="in-process runs: the devices (default: every GPU, else the CPU)")
    parser.add_argument("--collect", type=Path, nargs="+", metavar="DIR", help="merge these sweeps' outputs, run nothing")
    parser.add_argument("--merge-seeds", type=Path, nargs="+", metavar="DIR",
                        help="merge sweeps of the same design run with different seeds (intervals over seeds), run nothing")
    parser.add_argument("--tables-only", action="store_true",
                        help="table the runs already finished under --out (a sweep stopped part-way), run nothing")
    args = parser.parse_args(argv)
    testbed = TESTBEDS[args.testbed]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.collect:
        collect(args.collect, args.out, testbed)
        return
    if args.merge_seeds:
        merge_seeds(args.merge_seeds, args.out, testbed)
        return

    def obtain(config: RunConfig, path: Path, run: Path) -> dict[str, pd.DataFrame] | None:
        if args.tables_only:
            if not (run / "results_by_seed.parquet").exists():
                print(f"{run}: not finished, left out")
                return None
            return read_run(run)
        path.write_text(config.model_dump_json(indent=1))
        if args.runner == "in-process":
            return run_in_this_process(config, args.store, run, args.device)
        return run_with_cli(path, args.store, run)

    premise, effects, by_seed, estimators = [], [], [], []
    for bias in args.biases:
        tables = obtain(sweep_config(bias, tuple(args.seeds), testbed), args.out / f"{testbed.name}_config_{bias}.json",
                        args.out / f"run-{bias}")
        if tables is None:
            continue
        premise += premise_rows(bias, tables)
        effects += effect_rows(bias, tables)
        by_seed.append(by_seed_rows(bias, "design", tables))
        if args.estimators:
            estimators.append(estimator_row(bias, "imp", tables, tables, scoring_seconds(args.out / f"run-{bias}", args.store),
                                            testbed.ood))
        for estimator in (*args.controls, *args.estimators):
            control = obtain(control_config(bias, tuple(args.seeds), estimator, testbed),
                             args.out / f"{testbed.name}_config_{bias}_{estimator}.json", args.out / f"run-{bias}-{estimator}")
            if control is None:
                continue
            effects += control_rows(bias, tables, control, estimator, testbed.ood)
            by_seed.append(by_seed_rows(bias, estimator, control))
            if estimator in args.estimators:
                seconds = scoring_seconds(args.out / f"run-{bias}-{estimator}", args.store)
                estimators.append(estimator_row(bias, estimator, tables, control, seconds, testbed.ood))
        write_outputs(pd.DataFrame(premise), pd.DataFrame(effects), args.out, pd.concat(by_seed, ignore_index=True),
                      pd.DataFrame(estimators), testbed)
    print(f"{testbed.name} sweep: tables and plot in {args.out}")


if __name__ == "__main__":
    main()
