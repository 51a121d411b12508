"""The model card an exported model carries (README.md beside its weights): how it was made
and what it scored in the run that made it, so that a model found later says where it came
from without its run folder.

Every figure is read from the run's own tables (the report across seeds, its paired
comparisons and, when measured, the size and speed table); nothing is recomputed here.
"""

from __future__ import annotations

import json
import math
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd

from rmc_core.report import metric_labels


def rmc_version() -> str:
    try:
        return version("rmc")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _number(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _interval(row: pd.Series) -> str:
    if math.isnan(row["low"]):
        return "no interval (one seed, compared over seeds only)"
    if not row["resolved"]:
        verdict = "unresolved: the interval contains 0"
    elif row.get("n_seeds", 2) < 2:
        verdict = "excludes 0 over rows only (one seed: seed-to-seed variation not measured)"
    else:
        verdict = "resolved"
    return f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}], {verdict}"


def metric_rows(tables: dict[str, pd.DataFrame], model: str) -> list[str]:
    """Each shown metric: this model's mean, the teacher's, and the paired difference with
    its 95 % interval (model - teacher) where the run compared them."""
    results = tables["results"].set_index("model")
    comparisons = tables.get("comparisons", pd.DataFrame())
    against = comparisons[(comparisons["a"] == model) & (comparisons["b"] == "teacher")].set_index("metric") \
        if not comparisons.empty else pd.DataFrame()
    lines = ["| metric | this model | teacher | this model - teacher (95 % interval) |", "|---|---|---|---|"]
    for column, label in metric_labels(tables).items():
        if column not in results.columns or column == "achieved_sparsity":
            continue
        teacher = results.loc["teacher", column] if "teacher" in results.index else None
        difference = _interval(against.loc[column]) if column in against.index else "not compared"
        lines.append(f"| {label} | {_number(results.loc[model, column])} | {_number(teacher)} | {difference} |")
    return lines


def speed_rows(inference: pd.DataFrame | None, model: str) -> list[str]:
    if inference is None or model not in set(inference["model"]):
        return ["Not measured in this run (evaluation `inference`)."]
    row = inference.set_index("model").loc[model]
    shown = [c for c in row.index if c not in ("ref", "role", "compression", "sparsity", "method", "seeds", "acc_dev")]
    return ["| measure | value |", "|---|---|", *(f"| {c} | {row[c]:.4g} |" if isinstance(row[c], float) else f"| {c} | {row[c]} |"
                                                 for c in shown)]


def model_card(model: str, tables: dict[str, pd.DataFrame], config: dict[str, Any],
               labels: tuple[str, ...], inference: pd.DataFrame | None = None) -> str:
    """The README.md of an exported model of a run."""
    results = tables["results"].set_index("model")
    if model not in results.index:
        raise ValueError(f"model {model!r} is not in the run (models: {', '.join(results.index)})")
    row = results.loc[model]
    task = config.get("task")
    task_name = task if isinstance(task, str) else task.get("name")
    teacher = config.get("teacher", {})
    made = "used as given (already fine-tuned)" if teacher.get("fine_tuned") else \
        f"fine-tuned here for {config.get('teacher_train', {}).get('epochs')} epochs"
    seeds = row.get("seeds", "")
    ood = [c.removeprefix("acc_") for c in results.columns if c.startswith("acc_") and c not in ("acc_dev", "acc_ood", "acc_train")]
    return "\n".join([
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        f"tags: [rmc, {row['compression']}, {row['method']}]",
        "---",
        "",
        f"# {model}: task {task_name}",
        "",
        f"Made by rmc (robust model compression), rmc version {rmc_version()}.",
        "",
        "## How it was made",
        "",
        f"- teacher: `{teacher.get('source')}`, {made}",
        f"- role: {row['role']}; compression: {row['compression']}, nominal sparsity {_number(row['sparsity'])}, "
        f"achieved sparsity {_number(row.get('achieved_sparsity'))}",
        f"- method: {row['method']}",
        f"- data: task {task_name}; labels {', '.join(labels)}; OOD sets {', '.join(ood) or 'none'}",
        f"- seeds averaged: {seeds}; the exported weights are the first seed's",
        "",
        "## Results in its run",
        "",
        "Means over seeds. Differences against the teacher are paired (same rows, same seeds); "
        "'resolved' means the 95 % interval excludes 0 over several seeds. F_bias is a model's "
        "ID-to-OOD drop relative to the teacher's, so the teacher has none.",
        "",
        *metric_rows(tables, model),
        "",
        "## Size and speed",
        "",
        *speed_rows(inference, model),
        "",
        "## Labels",
        "",
        ", ".join(f"{i}: {name}" for i, name in enumerate(labels)),
        "",
        "## The run's config",
        "",
        "```json",
        json.dumps(config, indent=1, sort_keys=True),
        "```",
        "",
    ])
