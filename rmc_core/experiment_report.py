"""An experiment's report, from its runs' per-seed values.

Everything here starts from two per-seed tables with identity columns (no model name is
ever parsed): `by_seed` (run, arm, each grid field, model, role, compression, sparsity,
method, seed, and every metric) and `premise_by_seed` (run, arm, grid fields, seed, check,
who, value). From them: each model's mean with its t-interval over seeds, each comparison
as the t-interval over the per-seed paired differences, and the premise checks likewise.
Fresh runs also keep every example's prediction, so their comparisons carry the envelope
of that t-interval and the paired bootstrap over examples and seeds (rmc_core/evaluation/
uncertainty.py), which decides `resolved`; experiments merged across seeds have the
t-interval alone (their files keep no per-example data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rmc_core.evaluation.ood_premise import ABOVE_MAJORITY, OOD_MAJORITY, OOD_PREMISE, OOD_ROWS
from rmc_core.evaluation.statistics import paired_t_p_value, seed_interval, seeds_for_power
from rmc_core.evaluation.uncertainty import seed_intervals
from rmc_core.experiment import ArmRun, ExperimentConfig

IDENTITY = ("role", "compression", "sparsity", "method")
# The files an experiment's folder holds; the per-seed ones are what merging reads.
BY_SEED, PREMISE_BY_SEED, COMPARISONS = "by_seed.csv", "premise_by_seed.csv", "comparisons.csv"
DESIGN = "experiment.json"
# The table (artifacts.csv) saying where each run's models and predictions are in the store.
ARTIFACTS = "artifacts"
ARTIFACT_COLUMNS = ["run", "arm", "seed", "model", "model_ref", "predictions_ref", "data_ref"]


@dataclass(frozen=True)
class Pair:
    """One comparison: model `a_model` of run `a_run` minus `b_model` of `b_run`, paired by
    seed; `declared`: the experiment's text for it ('' for a run's own comparison)."""

    a_run: str
    a_model: str
    b_run: str
    b_model: str
    declared: str = ""


def run_columns(runs: list[ArmRun]) -> list[str]:
    """The identity columns of a run in every table: run, arm and each grid field."""
    return ["run", *dict.fromkeys(k for r in runs for k in r.columns)]


def by_seed_rows(run: ArmRun, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One run's per-seed results with its identity columns in front."""
    frame = tables["results_by_seed"].copy()
    for i, (key, value) in enumerate({"run": run.label, **run.columns}.items()):
        frame.insert(i, key, value)
    return frame


def premise_rows(run: ArmRun, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One run's premise checks per seed: (a) the teacher's accuracy on the hard dev rows,
    (b) each sub-network's easy and hard dev accuracy, (c) the difficulty split's agreement
    with the annotated hard rows, and chance, (d) per OOD set, the teacher's accuracy minus
    the set's majority-class rate, the rate and the rows. Checks a run cannot make (no
    annotation, no sub-networks) have no rows."""
    rows = []
    results = tables["results_by_seed"]
    if "dev_hard" in results:
        rows += [{"seed": r.seed, "check": "teacher_dev_hard", "who": "teacher", "value": r.dev_hard}
                 for r in results[results["role"] == "teacher"].itertuples()]
    for r in tables.get("subnetworks_by_seed", pd.DataFrame()).itertuples():
        rows += [{"seed": r.seed, "check": f"subnetwork_dev_{part}", "who": r.subnetwork, "sparsity": r.sparsity,
                  "value": getattr(r, part)} for part in ("easy", "hard")]
    for r in tables.get("split_agreement_by_seed", pd.DataFrame()).itertuples():
        rows += [{"seed": r.seed, "check": "split_agreement", "who": "difficulty split", "value": r.agreement},
                 {"seed": r.seed, "check": "split_agreement_chance", "who": "difficulty split", "value": r.chance}]
    for r in tables.get(f"{OOD_PREMISE}_by_seed", pd.DataFrame()).itertuples():  # who: the OOD set
        rows += [{"seed": r.seed, "check": ABOVE_MAJORITY, "who": r.ood_set, "value": r.teacher - r.majority},
                 {"seed": r.seed, "check": OOD_MAJORITY, "who": r.ood_set, "value": r.majority},
                 {"seed": r.seed, "check": OOD_ROWS, "who": r.ood_set, "value": r.rows}]
    return pd.DataFrame(rows, columns=["seed", "check", "who", "sparsity", "value"]).assign(**{"run": run.label, **run.columns})


def model_intervals(by_seed: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per run, model and metric: the mean over seeds and its 95 % t-interval, and the seeds."""
    columns = [*keys, "model", *IDENTITY]
    seeds = by_seed.groupby(columns, sort=False, dropna=False)["seed"].agg(lambda s: ",".join(map(str, sorted(s))))
    return seed_intervals(by_seed, metrics, tuple(columns)).merge(seeds.rename("seeds").reset_index(), on=columns, how="left")


def pair_intervals(by_seed: pd.DataFrame, pairs: list[Pair], metrics: list[str]) -> pd.DataFrame:
    """Each pair and metric: what each side is (its identity columns, a_method, b_role, ...),
    the mean of the per-seed differences a - b (paired by seed: seeds either side lacks are
    left out), its 95 % t-interval over them, their standard deviation (`sd_seeds`) and a
    paired t-test's p-value."""
    values = by_seed.set_index(["run", "model", "seed"])
    identity = by_seed.drop_duplicates(["run", "model"]).set_index(["run", "model"])[list(IDENTITY)]
    rows = []
    for p in pairs:
        a, b = (values.xs((run, model), level=["run", "model"]) for run, model in ((p.a_run, p.a_model), (p.b_run, p.b_model)))
        seeds = sorted(set(a.index) & set(b.index))
        for metric in metrics:
            diff = (a.loc[seeds, metric] - b.loc[seeds, metric]).to_numpy(dtype=float)
            iv = seed_interval(diff)
            rows.append({"a_run": p.a_run, "a": p.a_model, "b_run": p.b_run, "b": p.b_model, "declared": p.declared,
                         **{f"{side}_{c}": identity.loc[(run, model), c] for side, run, model in
                            (("a", p.a_run, p.a_model), ("b", p.b_run, p.b_model)) for c in IDENTITY},
                         "metric": metric, "a_value": float(a.loc[seeds, metric].mean()),
                         "b_value": float(b.loc[seeds, metric].mean()), "difference": iv.estimate,
                         "low": iv.low, "high": iv.high, "t_low": iv.low, "t_high": iv.high, "interval": "t over seeds",
                         "n_seeds": len(seeds), "seeds": ",".join(map(str, seeds)),
                         "resolved": bool(len(seeds) > 1 and iv.resolved),
                         "sd_seeds": float(diff.std(ddof=1)) if len(diff) > 1 else float("nan"),
                         "p_value": paired_t_p_value(diff)})
    return pd.DataFrame(rows)


def with_power(compared: pd.DataFrame, shares: set[str], min_effect: float, margin: float) -> pd.DataFrame:
    """On each share metric (an accuracy, a rate): `seeds_for_power`, the seeds a paired
    t-test needs to detect a difference of `min_effect` 80 % of the time given the per-seed
    spread seen, so that "unresolved" says whether the seeds could have resolved it; and
    `within_margin`, an interval that lies inside +-`margin` (the one reading under which a
    difference is called no effect beyond the margin). Other metrics get neither."""
    if compared.empty:
        return compared
    share = compared["metric"].isin(shares)
    power = [seeds_for_power(sd, min_effect) if is_share else np.nan for sd, is_share in zip(compared["sd_seeds"], share)]
    inside = share & (compared["n_seeds"] > 1) & (compared["low"] > -margin) & (compared["high"] < margin)
    return compared.assign(min_effect=np.where(share, min_effect, np.nan), seeds_for_power=power,
                           margin=np.where(share, margin, np.nan), within_margin=inside)


def with_envelopes(compared: pd.DataFrame, envelopes: pd.DataFrame) -> pd.DataFrame:
    """`compared` (t-intervals over seeds) with the envelope of each comparison that has
    one (same rows both sides, every example's prediction kept): its bounds and `resolved`."""
    if envelopes.empty or compared.empty:
        return compared
    keys = ["a_run", "a", "b_run", "b", "metric"]
    env = envelopes.set_index(keys)[["low", "high", "bootstrap_low", "bootstrap_high"]]
    out = compared.set_index(keys)
    hit = out.index.isin(env.index)
    matched = env.reindex(out.index[hit])
    out.loc[hit, ["low", "high"]] = matched[["low", "high"]].to_numpy()
    out.loc[hit, "bootstrap_low"] = matched["bootstrap_low"].to_numpy()
    out.loc[hit, "bootstrap_high"] = matched["bootstrap_high"].to_numpy()
    out.loc[hit, "interval"] = "envelope"
    out["resolved"] = (out["n_seeds"] > 1) & ((out["low"] > 0) | (out["high"] < 0))
    return out.reset_index()[list(compared.columns) + [c for c in ("bootstrap_low", "bootstrap_high") if c not in compared]]


def premise_intervals(premise_by_seed: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each premise check per run: its mean over seeds and t-interval."""
    return seed_intervals(premise_by_seed, ["value"], (*keys, "check", "who")).drop(columns="metric")


def share_columns(declared: pd.DataFrame) -> set[str]:
    """The declared columns that are shares of rows (columns.csv's `share`, text in a CSV)."""
    if "share" not in declared:
        return set()
    return {c for c, share in zip(declared["column"], declared["share"]) if str(share) == "True"}


def experiment_tables(exp: ExperimentConfig, by_seed: pd.DataFrame, premise_by_seed: pd.DataFrame, pairs: list[Pair],
                      metrics: list[str], envelopes: pd.DataFrame | None = None,
                      shares: set[str] = frozenset()) -> dict[str, pd.DataFrame]:
    """The report's tables: models, comparisons (with the power each had on the `shares`
    metrics), premise and the paper's claims (a view of the others,
    rmc_core/experiment_claims.py), with the per-seed values behind them."""
    from rmc_core.experiment_claims import claims

    runs = exp.runs()
    keys = run_columns(runs)
    compared = pair_intervals(by_seed, pairs, metrics)
    if envelopes is not None:
        compared = with_envelopes(compared, envelopes)
    compared = with_power(compared, shares, exp.min_effect, exp.margin)
    tables = {"by_seed": by_seed, "premise_by_seed": premise_by_seed, "models": model_intervals(by_seed, keys, metrics),
              "comparisons": compared, "premise": premise_intervals(premise_by_seed, keys)}
    return tables | {"claims": claims(runs, tables, headline_metric(exp, metrics))}


def headline_metric(exp: ExperimentConfig, metrics: list[str]) -> str:
    """The experiment's headline, else the first OOD accuracy column, else dev accuracy."""
    if exp.headline is not None:
        if exp.headline not in metrics:
            raise ValueError(f"headline {exp.headline!r} is not a metric of these runs ({', '.join(metrics)})")
        return exp.headline
    return next((m for m in metrics if m.startswith("acc_") and m not in ("acc_dev", "acc_ood")), "acc_dev")


def _span(value: float, low: float, high: float, scale: float, sign: str = "") -> str:
    if np.isnan(low):
        return f"{scale * value:{sign}.1f}"
    return f"{scale * value:{sign}.1f} [{scale * low:{sign}.1f}, {scale * high:{sign}.1f}]"


def _scales(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Per metric: 100 for a declared share of rows (read in percent, differences in
    points), else 1 (read as it is)."""
    declared = tables.get("columns", pd.DataFrame(columns=["column", "share"]))
    shares = share_columns(declared)
    return {c: 100.0 if c in shares else 1.0 for c in declared["column"]}


def verdict(row: Any) -> str:
    if row.n_seeds < 2:
        return "unresolved (one seed)"
    if row.resolved:
        return "resolved"
    if getattr(row, "within_margin", False) is True:
        return f"no effect beyond ±{_points(row.margin)}"
    return "unresolved"


def _points(share: float) -> str:
    return f"{100 * share:g} point" + ("" if 100 * share == 1 else "s")


def _power(row: Any) -> str:
    """The seeds 80 % power needs, as the comparisons table reads (blank off share metrics)."""
    needed = getattr(row, "seeds_for_power", np.nan)
    if np.isnan(needed):
        return ""
    return "> 10000" if np.isinf(needed) else f"{needed:.0f}"


def markdown(exp: ExperimentConfig, tables: dict[str, pd.DataFrame], metrics: list[str], command: str) -> str:
    """The report as markdown: the models on the headline metric and dev, every comparison
    on both, and the premise checks; every figure rounded as the CSVs are read."""
    headline = headline_metric(exp, metrics)
    shown = list(dict.fromkeys([headline, "acc_dev"]))
    scales = _scales(tables)
    lines = [f"# Experiment {exp.name}", "", exp.description, "", f"Command: `{command}`; per-seed values: {BY_SEED}, "
             f"{PREMISE_BY_SEED}; seeds {', '.join(map(str, exp.seeds))}. Accuracies and rates in percent, differences in points, "
             "95 % intervals (t over seeds; `envelope`: with the paired bootstrap over examples and seeds).", ""]
    models = tables["models"]
    lines += ["## Models", "", "| run | model | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for (run, model), group in models.groupby(["run", "model"], sort=False):
        by_metric = group.set_index("metric")
        cells = [_span(by_metric.loc[m, "mean"], by_metric.loc[m, "low"], by_metric.loc[m, "high"], scales.get(m, 1.0))
                 for m in shown if m in by_metric.index]
        lines.append(f"| {run} | {model} | " + " | ".join(cells) + " |")
    compared = tables["comparisons"]
    effect = _points(exp.min_effect)
    power = (f"Seeds for 80 % power: how many seeds a paired t-test needs to detect {effect} (two-sided, 5 %) given "
             f"the per-seed spread seen; a verdict of no effect needs the interval inside ±{_points(exp.margin)}.")
    lines += ["", "## Comparisons", "", power, "",
              "| a | b | metric | a - b | interval | verdict | seeds | seeds for 80 % power |", "|---|---|---|---|---|---|---|---|"]
    for r in compared[compared["metric"].isin(shown)].itertuples():
        side_b = r.b if r.b_run == r.a_run else f"{r.b_run}: {r.b}"
        lines.append(f"| {r.a_run}: {r.a} | {side_b} | {r.metric} | "
                     f"{_span(r.difference, r.low, r.high, scales.get(r.metric, 1.0), '+')} | {r.interval} | {verdict(r)} | "
                     f"{r.n_seeds} | {_power(r)} |")
    judged = tables.get("claims", pd.DataFrame())
    if not judged.empty:
        lines += ["", f"## The paper's claims (on {headline} and each OOD set; fractions, as claims.csv)", "",
                  "Verdict: the interval's; Holm: the paired t-tests' over seeds, adjusted across the run's RMC - "
                  "baseline and RMC - control comparisons on the metric; untestable: the teacher is not above the "
                  "set's majority-class rate.", "",
                  ("| run | claim | metric | versus | estimate [interval] | interval | seeds | seeds for 80 % power | "
                   "verdict | p (Holm) | Holm verdict | detail |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in judged.itertuples():
            interval = "" if np.isnan(r.low) else f" [{r.low:+.3f}, {r.high:+.3f}]"
            p = "" if np.isnan(r.p_value) else f"{r.p_value:.3f} ({r.p_holm:.3f})"
            power = "" if np.isnan(r.seeds_for_power) else f"{r.seeds_for_power:.0f}"
            lines.append(f"| {r.run} | {r.claim} | {r.metric} | {r.versus} | {r.estimate:+.3f}{interval} | {r.interval} | "
                         f"{r.n_seeds} | {power} | {r.verdict} | {p} | {r.verdict_holm} | {r.detail} |")
    premise = tables["premise"]
    if not premise.empty:
        lines += ["", "## Premise checks", "", "| run | check | who | mean | interval |", "|---|---|---|---|---|"]
        for r in premise[premise["check"] != OOD_ROWS].itertuples():  # a count, not a share: in the CSV
            interval = "" if np.isnan(r.low) else f"[{100 * r.low:.1f}, {100 * r.high:.1f}]"
            lines.append(f"| {r.run} | {r.check} | {r.who} | {100 * r.mean:.1f} | {interval} |")
    return "\n".join(lines) + "\n"


def picture(exp: ExperimentConfig, tables: dict[str, pd.DataFrame], metrics: list[str]) -> bytes:
    """Every comparison on the headline metric, with its interval (one row each), as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = headline_metric(exp, metrics)
    rows = tables["comparisons"]
    rows = rows[(rows["metric"] == headline) & (rows["b"] != "teacher")]
    scale = _scales(tables).get(headline, 1.0)
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(rows), 1) + 1.4))
    labels = [f"{r.a_run}: {r.a} - {r.b if r.b_run == r.a_run else f'{r.b_run}: {r.b}'}" for r in rows.itertuples()]
    y = np.arange(len(rows))
    value = scale * rows["difference"].to_numpy(dtype=float)
    low, high = scale * rows["low"].to_numpy(dtype=float), scale * rows["high"].to_numpy(dtype=float)
    ax.errorbar(value, y, xerr=[np.nan_to_num(value - low), np.nan_to_num(high - value)], fmt="o", capsize=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(f"{headline} difference ({'points' if scale == 100 else 'units'}, 95 % interval)")
    ax.set_title(f"{exp.name}: comparisons on {headline}", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def write_experiment(out: Path, exp: ExperimentConfig, tables: dict[str, pd.DataFrame], metrics: list[str],
                     command: str) -> None:
    """The experiment's folder: its design (with seeds), the per-seed values, the tables,
    the markdown report and the picture."""
    (out / DESIGN).write_text(exp.model_dump_json(indent=1))
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    (out / "experiment.md").write_text(markdown(exp, tables, metrics, command))
    (out / "experiment.png").write_bytes(picture(exp, tables, metrics))


class Merged(NamedTuple):
    """Experiments of one design read back: the design (seeds joined), the per-seed tables,
    and the envelopes of a single folder's comparisons (None when several merge: the
    bootstrap over examples needs per-example data no folder keeps)."""

    experiment: ExperimentConfig
    by_seed: pd.DataFrame
    premise_by_seed: pd.DataFrame
    envelopes: pd.DataFrame | None
    artifacts: pd.DataFrame


def read_merged(folders: list[Path]) -> Merged:
    """Experiments of one design run over different seeds, as one. Refuses folders whose
    designs differ beyond their seeds, and a seed that two of them ran."""
    designs = [ExperimentConfig.model_validate_json((f / DESIGN).read_text()) for f in folders]
    if any(d.design() != designs[0].design() for d in designs):
        raise ValueError("these experiments ran different designs (their experiment.json differ beyond the seeds); "
                         "merge only seeds of one")
    seeds = [s for d in designs for s in d.seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed ran in more than one of {[str(f) for f in folders]}: {sorted(seeds)}")
    by_seed = pd.concat([pd.read_csv(f / BY_SEED) for f in folders], ignore_index=True)
    premise = pd.concat([pd.read_csv(f / PREMISE_BY_SEED) for f in folders], ignore_index=True)
    envelopes = None
    if len(folders) == 1 and (folders[0] / COMPARISONS).exists():
        compared = pd.read_csv(folders[0] / COMPARISONS, keep_default_na=False, na_values=[""])
        envelopes = compared[compared["interval"] == "envelope"]
    merged = designs[0].model_copy(update={"seeds": tuple(sorted(seeds))})
    listed = [pd.read_csv(f / f"{ARTIFACTS}.csv") for f in folders if (f / f"{ARTIFACTS}.csv").exists()]
    return Merged(merged, by_seed, premise, envelopes,
                  pd.concat(listed, ignore_index=True) if listed else pd.DataFrame(columns=ARTIFACT_COLUMNS))
