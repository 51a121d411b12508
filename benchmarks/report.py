"""The benchmark's tables and figures, from the report tables of its runs.

Table 4 (per model: ID dev, each OOD set, F_bias per task and averaged, loyalty), HANS by
heuristic x gold label, MNLI easy/hard (Table 6) with the variance-split agreement, the two
difficulty estimators' agreement, the sub-networks' easy/hard accuracy (Fig. 1), Vanilla vs
RMC OOD accuracy across student sparsities (Fig. 3, where a profile runs several) and cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rmc.benchmarks.profiles import PAPER_TABLE3, PAPER_TABLE4  # noqa: E402
from rmc_core.objectives.difficulty import variance_hard_split  # noqa: E402
from rmc_core.evaluation.tables import split_agreement  # noqa: E402
from rmc_core.report import to_markdown, write_tables  # noqa: E402

OWN_SUBNETWORKS = ("pruned", "estimator-imp", "estimator-oneshot")  # distilled and sweep runs reuse the pruned run's


@dataclass(frozen=True)
class RunTables:
    """One finished run of a benchmark: what it was and what it produced."""

    task: str
    role: str
    seed: int
    tables: dict[str, pd.DataFrame]
    train_variance: np.ndarray
    stage_stats: pd.DataFrame
    inference: pd.DataFrame
    wall_seconds: float
    computed: int
    cached: int


STUDENT_ROLES = ("pruned", "distilled", "structured")


def _models(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    """A run's per-model rows under their report names: a distilled or structured run's
    teacher is the pruned run's teacher (dropped), and its students are named by their
    compression and method columns (distilled-rmc, structured-rmc)."""
    if role not in ("distilled", "structured"):
        return frame
    frame = frame[frame["role"] != "teacher"]
    return frame.assign(model=frame["compression"] + "-" + frame["method"])


def in_paper_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the paper's Table 4 model order; models the paper lacks go last."""
    order = {m: i for i, m in enumerate(PAPER_TABLE4)}
    return frame.sort_values("model", key=lambda c: c.map(lambda m: order.get(m, len(order))))


# The evaluations whose declared columns make up the paper's Table 4.
TABLE4_EVALUATIONS = ("accuracy", "f_bias", "loyalty")


def table4(runs: list[RunTables]) -> pd.DataFrame:
    """One row per model, one column block per task (the columns the Table 4 evaluations
    declare in each report); F_bias averaged over tasks."""
    per_task: dict[str, list[pd.DataFrame]] = {}
    for r in runs:
        if r.role not in ("pruned", "distilled"):
            continue  # structured students are MNLI-only: Table 3
        res = _models(r.tables["results"], r.role)
        declared = r.tables["columns"]
        wanted = declared.loc[declared["evaluation"].isin(TABLE4_EVALUATIONS), "column"]
        cols = {c: f"{r.task}:{c.removeprefix('acc_')}" for c in wanted}
        per_task.setdefault(r.task, []).append(res[["model", *cols]].rename(columns=cols))
    merged = None
    for frames in per_task.values():
        block = pd.concat(frames, ignore_index=True)
        merged = block if merged is None else merged.merge(block, on="model", how="outer")
    f_cols = [c for c in merged.columns if c.endswith(":f_bias")]
    merged["avg_f_bias"] = merged[f_cols].mean(axis=1, skipna=False)
    return in_paper_order(merged).reset_index(drop=True)


def attack(runs: list[RunTables]) -> pd.DataFrame:
    """Accuracy under attack and its companions, per model of each run that ran the attack
    (the columns the attack evaluation declares)."""
    frames = []
    for r in runs:
        declared = r.tables["columns"]
        wanted = list(declared.loc[declared["evaluation"] == "attack", "column"])
        if wanted and r.role in STUDENT_ROLES:
            frames.append(_models(r.tables["results"], r.role)[["model", *wanted]].assign(task=r.task))
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True).drop_duplicates(["task", "model"])
    return table[["task", *table.columns.drop("task")]]


def hans_breakdown(runs: list[RunTables]) -> pd.DataFrame:
    frames = []
    for r in runs:
        if r.role in STUDENT_ROLES and "heuristics" in r.tables:
            frames.append(_models(r.tables["heuristics"], r.role).assign(task=r.task))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def easy_hard(runs: list[RunTables]) -> pd.DataFrame:
    """Table 6: accuracy on the annotated easy and hard dev rows, per model."""
    frames = []
    for r in runs:
        res = _models(r.tables["results"], r.role)
        if r.role in STUDENT_ROLES and "dev_hard" in res.columns:
            frames.append(pd.DataFrame({"task": r.task, "model": res["model"],
                                        "easy": res["dev_easy"], "hard": res["dev_hard"], "gap": res["dev_gap"]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def estimator_agreement(runs: list[RunTables]) -> pd.DataFrame:
    """Each estimator's variance split against the annotated dev split, and the two
    estimators' train splits against each other (same rows, median split)."""
    rows = []
    by_role = {r.role: r for r in runs}
    for r in runs:
        if "split_agreement" in r.tables and r.role in OWN_SUBNETWORKS:
            a = r.tables["split_agreement"].iloc[0]
            rows.append({"task": r.task, "run": r.role, "compared_with": "annotated hard split (dev)",
                         "agreement": a["agreement"], "chance": a["chance"], "n": int(a["n"])})
    if {"estimator-imp", "estimator-oneshot"} <= set(by_role):
        imp, cheap = by_role["estimator-imp"].train_variance, by_role["estimator-oneshot"].train_variance
        rows.append({"task": by_role["estimator-imp"].task, "run": "estimator-oneshot",
                     "compared_with": "estimator-imp split (train subset)",
                     "agreement": split_agreement(variance_hard_split(cheap), variance_hard_split(imp)),
                     "chance": 0.5, "n": len(imp)})
    return pd.DataFrame(rows)


def subnetworks(runs: list[RunTables]) -> pd.DataFrame:
    """Each estimator's sub-networks once (the distilled and sweep runs share the pruned run's)."""
    frames = [r.tables["subnetworks"].assign(task=r.task, run=r.role) for r in runs
              if "subnetworks" in r.tables and r.role in OWN_SUBNETWORKS]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).drop_duplicates(["task", "run", "subnetwork"])


def sparsity_sweep(runs: list[RunTables]) -> pd.DataFrame:
    """Fig. 3's data: OOD accuracy (HANS for MNLI) of the Vanilla and RMC students at each
    student sparsity run, for the tasks run at two or more sparsities (seed means)."""
    rows = []
    for r in runs:
        if r.role not in ("pruned", "sparsity-sweep"):
            continue
        for _, row in r.tables["results"].iterrows():
            if row["compression"] == "pruned" and row["method"] in ("vanilla", "rmc"):
                rows.append({"task": r.task, "seed": r.seed, "sparsity": row["sparsity"],
                             "method": row["method"], "ood": row["acc_ood"], "dev": row["acc_dev"]})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table[table.groupby("task")["sparsity"].transform("nunique") >= 2]
    return table if table.empty else table.groupby(["task", "sparsity", "method"], as_index=False)[["ood", "dev"]].mean()


def _save(fig: plt.Figure, ax: plt.Axes, path: Path, xlabel: str, ylabel: str, legend_size: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sparsity_sweep(table: pd.DataFrame, path: Path) -> None:
    """Fig. 3: Vanilla vs RMC OOD accuracy across student sparsities."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (task, method), g in table.groupby(["task", "method"]):
        g = g.sort_values("sparsity")
        ax.plot(g["sparsity"], g["ood"], marker="o", label=f"{task} {method}")
    _save(fig, ax, path, "student sparsity", "OOD accuracy (HANS for MNLI)", legend_size=7)


def cost(runs: list[RunTables]) -> pd.DataFrame:
    frames = [r.stage_stats.assign(task=r.task, run=r.role, run_wall_seconds=r.wall_seconds,
                                   stages_computed=r.computed, stages_cached=r.cached) for r in runs]
    return pd.concat(frames, ignore_index=True)


def plot_subnetworks(table: pd.DataFrame, path: Path) -> None:
    """Fig. 1: sub-networks' accuracy on easy vs hard dev rows across sparsities."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (task, run), g in table.groupby(["task", "run"]):
        g = g.sort_values("sparsity")
        ax.plot(g["sparsity"], g["easy"], marker="o", label=f"{task} {run}: easy")
        ax.plot(g["sparsity"], g["hard"], marker="s", linestyle="--", label=f"{task} {run}: hard")
    _save(fig, ax, path, "sparsity", "dev accuracy", legend_size=6)


def paper_comparison(t4: pd.DataFrame) -> pd.DataFrame:
    """Measured next to the paper's Table 4 (percent), for the columns both have."""
    pairs = {"mnli:dev": "mnli_dev", "mnli:hans": "hans", "qqp:dev": "qqp_dev", "qqp:paws-wiki": "paws-wiki",
             "qqp:paws-qqp": "paws-qqp", "avg_f_bias": "avg_f_bias"}
    rows = []
    for _, row in t4.iterrows():
        paper = PAPER_TABLE4.get(row["model"], {})
        out = {"model": row["model"]}
        for ours, theirs in pairs.items():
            if ours in row.index:
                scale = 1 if ours == "avg_f_bias" else 100
                out[f"{theirs} (ours)"] = row[ours] * scale
                out[f"{theirs} (paper)"] = paper.get(theirs, np.nan)
        rows.append(out)
    return pd.DataFrame(rows)


def table3(runs: list[RunTables]) -> pd.DataFrame:
    """Structured head pruning on MNLI (paper Table 3): the teacher and each structured
    student, measured (percent; F_bias a ratio), then the paper's three 116-head versions."""
    rows = []
    for r in runs:
        if r.role != "structured" or r.task != "mnli":
            continue
        for _, row in r.tables["results"].iterrows():
            name = "teacher" if row["role"] == "teacher" else f"{row['compression']}-{row['method']}"
            rows.append({"model": name, "source": "measured", "mnli_dev": 100 * row["acc_dev"],
                         "hans": 100 * row["acc_ood"], "f_bias": row["f_bias"], "sparsity": row["achieved_sparsity"]})
    if not rows:
        return pd.DataFrame()
    rows += [{"model": m, "source": "paper", **v} for m, v in PAPER_TABLE3.items()]
    return pd.DataFrame(rows)


def inference_costs(runs: list[RunTables]) -> pd.DataFrame:
    """Every run's size-and-speed table, each model once (the teacher is in every run)."""
    frames = [_models(r.inference, r.role).assign(task=r.task, run=r.role) for r in runs
              if r.role in STUDENT_ROLES and not r.inference.empty]
    return pd.concat(frames, ignore_index=True).drop_duplicates(["task", "model"]) if frames else pd.DataFrame()


def hans_view(hans: pd.DataFrame) -> pd.DataFrame:
    """HANS as one row per model, one column per heuristic x gold label (for reading)."""
    wide = hans.pivot_table(index="model", columns=["heuristic", "gold"], values="accuracy", sort=False)
    wide.columns = [f"{h} / {g}" for h, g in wide.columns]
    return in_paper_order(wide.reset_index())


def write(runs: list[RunTables], out: Path, setting: str) -> dict[str, pd.DataFrame]:
    """Every table as CSV + parquet, Fig. 1 as PNG, and a markdown page."""
    t4 = table4(runs)
    tables = {"table4": t4, "hans": hans_breakdown(runs), "easy_hard": easy_hard(runs),
              "estimators": estimator_agreement(runs), "subnetworks": subnetworks(runs),
              "sparsity_sweep": sparsity_sweep(runs), "cost": cost(runs),
              "paper_comparison": paper_comparison(t4), "table3": table3(runs), "inference": inference_costs(runs),
              "attack": attack(runs)}
    write_tables(tables, out)
    if not tables["subnetworks"].empty:
        plot_subnetworks(tables["subnetworks"], out / "fig1_subnetworks_easy_hard.png")
    if not tables["sparsity_sweep"].empty:
        plot_sparsity_sweep(tables["sparsity_sweep"], out / "fig3_vanilla_vs_rmc_sparsity.png")
    views = dict(tables, hans=hans_view(tables["hans"]) if not tables["hans"].empty else tables["hans"],
                 cost=tables["cost"].drop_duplicates(["stage", "seconds"]))
    sections = [f"# RMC benchmark\n\nSetting: {setting}\n"]
    for name, title in (("paper_comparison", "Table 4: measured vs the paper (percent; F_bias as a ratio)"),
                        ("table4", "Table 4, all measured columns (fractions)"),
                        ("table3", "Table 3: attention heads pruned during fine-tuning (MNLI; percent, F_bias a ratio)"),
                        ("inference", "Size and CPU inference speed of each model (fp32; rmc_core/evaluation/inference_cost.py)"),
                        ("attack", "Accuracy under the TextFooler-style attack (fractions; docs/attack.md)"),
                        ("hans", "HANS by heuristic and gold label"),
                        ("easy_hard", "Easy/hard dev accuracy (Table 6)"),
                        ("estimators", "Difficulty estimators: split agreement"),
                        ("subnetworks", "Sub-networks on easy vs hard dev rows (Fig. 1)"),
                        ("sparsity_sweep", "Vanilla vs RMC across student sparsities (Fig. 3)"),
                        ("cost", "Cost of each stage, as recorded when it computed (an artifact shared by runs listed once)")):
        if not views[name].empty:
            sections.append(f"## {title}\n\n{to_markdown(views[name])}\n")
    if tables["sparsity_sweep"].empty:
        sections.append("Fig. 3 (OOD accuracy of Vanilla vs RMC across student sparsities) needs students at "
                        "several sparsities; this profile runs 40 % only.\n")
    (out / "results.md").write_text("\n".join(sections))
    return tables
