"""Human-readable views of a run's report tables."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rmc_core.evaluation.registry import DECLARED
from rmc_core.evaluation.uncertainty import verdicts
from rmc_core.objectives.methods import UPPER_BOUND

SPARSITY_LEGEND = "achieved sparsity: share of the encoder's prunable weights that are zero or removed."


UPPER_BOUND_HEADING = ("OOD-information upper bound (trained on the task's OOD training rows as well: not a method, "
                       "compared with nothing)")


def _declared(tables: dict[str, pd.DataFrame], shown: str) -> pd.DataFrame:
    """The run's declared columns (`rmc_core.evaluation.registry.Column`) shown at `shown`
    that its results hold, in registration order."""
    declared = tables[DECLARED].drop_duplicates("column")
    return declared[(declared["shown"] == shown) & declared["column"].isin(tables["results"].columns)]


def summary_columns(tables: dict[str, pd.DataFrame], shown: str = "headline") -> dict[str, str]:
    """The results columns of one summary table and their names for people: the headline
    (what fits a UI pane) or the detail (the rest, and the achieved sparsity)."""
    declared = _declared(tables, shown)
    columns = {"model": "model", **dict(zip(declared["column"], declared["label"]))}
    if shown == "detail" and "achieved_sparsity" in tables["results"].columns:
        columns["achieved_sparsity"] = "achieved sparsity"
    return columns


def metric_labels(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Each shown column's name for people (hidden ones left out)."""
    declared = tables[DECLARED].drop_duplicates("column")
    shown = declared[declared["shown"] != "hidden"]
    return dict(zip(shown["column"], shown["label"]))


def legend(tables: dict[str, pd.DataFrame]) -> list[str]:
    """One line per shown column saying what it measures, as its evaluation declares it."""
    lines = [text for shown in ("headline", "detail") for text in _declared(tables, shown)["legend"] if text]
    return [*lines, SPARSITY_LEGEND] if "achieved_sparsity" in tables["results"].columns else lines


def seed_count(tables: dict[str, pd.DataFrame]) -> int:
    """How many seeds the report averages (1 when it has no intervals over seeds)."""
    intervals = tables.get("results_interval")
    return 1 if intervals is None or intervals.empty else int(intervals["n_seeds"].max())


def summary_tables(tables: dict[str, pd.DataFrame], digits: int | None = 3) -> list[pd.DataFrame]:
    """The headline table, and the detail table when the run has detail columns (upper
    bounds left out: `upper_bound_table`)."""
    detail = summary_table(tables, "detail", digits)
    return [summary_table(tables, "headline", digits), *([detail] if len(detail.columns) > 1 else [])]


def upper_bound_table(tables: dict[str, pd.DataFrame], digits: int | None = 3) -> pd.DataFrame | None:
    """The students trained with OOD information (`MethodSpec.upper_bound`), headline
    columns, apart from the models they would otherwise seem to beat; None when there are none."""
    frame = summary_table(tables, "headline", digits, upper_bound=True)
    return frame if len(frame) else None


def _is_upper_bound(results: pd.DataFrame) -> pd.Series:
    return results["role"] == UPPER_BOUND if "role" in results.columns else pd.Series(False, index=results.index)


def summary_table(tables: dict[str, pd.DataFrame], shown: str = "headline", digits: int | None = 3,
                  upper_bound: bool = False) -> pd.DataFrame:
    """One summary table, columns named for people. With several seeds, `digits` set, each
    metric reads 'mean [low, high]' (95 % t-interval over seeds); `digits` None keeps the
    numbers (for a table artifact). `upper_bound`: the upper bounds' rows instead of the others."""
    columns = summary_columns(tables, shown)
    results = tables["results"]
    frame = results.loc[_is_upper_bound(results) == upper_bound, list(columns)].reset_index(drop=True)
    if digits is not None and seed_count(tables) > 1:
        cells = {(r.model, r.metric): f"{r.mean:.{digits}f} [{r.low:.{digits}f}, {r.high:.{digits}f}]"
                 for r in tables["results_interval"].itertuples()}
        for column in frame.columns[1:]:
            frame[column] = [cells.get((m, column), _cell(v, digits)) for m, v in zip(frame["model"], frame[column])]
    return frame.rename(columns=columns)


def headline_lines(tables: dict[str, pd.DataFrame], digits: int = 3) -> list[str]:
    """One log line per model with its headline columns ("imp40-rmc: ID dev 0.912, OOD 0.804, ...")."""
    columns = summary_columns(tables)
    rows = tables["results"][list(columns)]
    return [f"{row['model']}: " + ", ".join(f"{label} {_cell(row[c], digits)}" for c, label in list(columns.items())[1:])
            for _, row in rows.iterrows()]


def _cell(v: object, digits: int) -> str:
    """A number rounded; an undefined one (NaN: F_bias of the teacher) blank, as the table artifacts show it."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def to_markdown(frame: pd.DataFrame, digits: int = 3, max_columns: int | None = None) -> str:
    """GitHub-style tables, without the optional `tabulate` dependency. A frame wider than
    `max_columns` is split into several tables that each repeat the first (key) column,
    so that it fits a UI pane or a terminal instead of running off the side."""
    key, rest = frame.columns[0], list(frame.columns[1:])
    width = max((max_columns or len(frame.columns)) - 1, 1)
    tables = []
    for start in range(0, max(len(rest), 1), width):
        part = frame[[key, *rest[start:start + width]]]
        header = "| " + " | ".join(map(str, part.columns)) + " |"
        rule = "|" + "|".join("---" for _ in part.columns) + "|"
        body = ["| " + " | ".join(_cell(v, digits) for v in row) + " |" for row in part.itertuples(index=False)]
        tables.append("\n".join([header, rule, *body]))
    return "\n\n".join(tables)


def comparison_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The paired comparisons in words (RMC against each baseline, each student against the teacher)."""
    comparisons = tables.get("comparisons")
    if comparisons is None or comparisons.empty:
        return []
    n_seeds = int(comparisons["n_seeds"].max())
    head = ("Differences (a - b) with 95 % intervals: "
            + ("the envelope of a paired bootstrap over examples and seeds and a t-interval over the per-seed "
               "differences" if n_seeds > 1 else "a paired bootstrap over examples")
            + f" ({n_seeds} seed{'s' if n_seeds > 1 else ''}); "
            "accuracies in points, lower F_bias is better"
            + (":" if n_seeds > 1 else "; with one seed, 'resolved' means beyond example noise only: seed-to-seed "
               "variation is not measured (run with several seeds to include it):"))
    return [head, *(f"- {line}" for line in verdicts(comparisons, metric_labels(tables)))]


NO_ANNOTATION = ("Premise checks and easy/hard columns: not measured, the dev rows carry no hard/easy annotation "
                 "(a declared task gets one from its `hardness` column; docs/usage.md, \"Your model, your data\").")


def premise_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """RMC's premise, checked on the annotated dev split: the teacher must know the rule
    (hard rows right), sub-networks must lose it (hard rows fall with sparsity while easy
    rows hold), and so the variance split must agree with the hard rows beyond chance.
    Without a hard/easy annotation of dev, a line that says why they are missing."""
    if "split_agreement" not in tables:
        return [NO_ANNOTATION]
    teacher = tables["results"].set_index("model").loc["teacher"]
    subnets = tables["subnetworks"]
    agreement = tables["split_agreement"].iloc[0]
    sparsities = ", ".join(f"{round(s * 100)}" for s in subnets["sparsity"])
    # An estimator without sub-networks (teacher-loss, cartography) has no sub-network line.
    subnet_line = [(f"- sub-networks at {sparsities} % sparsity: hard rows {' / '.join(f'{v:.2f}' for v in subnets['hard'])}, "
                    f"easy rows {' / '.join(f'{v:.2f}' for v in subnets['easy'])}")] if len(subnets) else []
    split = "loss-variance split" if len(subnets) else "difficulty split"
    return [
        "Premise checks on the annotated dev split (fractions):",
        f"- teacher: hard rows {teacher['dev_hard']:.3f}, easy rows {teacher['dev_easy']:.3f}",
        *subnet_line,
        (f"- the {split} agrees with the annotated one on {agreement['agreement']:.3f} of "
        f"{int(agreement['n'])} rows; chance (same hard fraction, independent) is {agreement['chance']:.3f}"),
    ]


PANE_COLUMNS = 6  # what the Prefect UI's artifact pane shows without overflowing
INFERENCE_NOTE = ("Size and CPU speed, fp32 (int8 models: their int8 layers), measured in one process after every "
                  "stage finished: latency is the time per row at batch 1, throughput rows/s in batches of "
                  "`batch_size`, each the median of repeated "
                  "rounds in which every model runs in turn. Speed-ups over the teacher (at batch 1 and batched) are "
                  "the median of per-round ratios with a distribution-free 95 % interval (nan under 6 rounds); one whose "
                  "interval contains 1 is unresolved. Deflated: the weights file zlib-compressed, "
                  "where unstructured zeros save space. Export a model with `rmc export REF --format hf|onnx --out DIR`.")


def inference_lines(costs: pd.DataFrame) -> list[str]:
    """The inference-cost table and how it was measured; each model's full ref (what
    `rmc export` takes) in a table of its own at the end, so that no column of the
    figures is cut by the pane."""
    figures = costs.drop(columns="ref")
    return [to_markdown(figures, max_columns=PANE_COLUMNS), "", INFERENCE_NOTE, "",
            to_markdown(costs[["model", "ref"]])]


def heuristic_lines(heuristics: pd.DataFrame, digits: int = 3) -> list[str]:
    """OOD accuracy as model x heuristic, one table per OOD set and gold label (the mean
    over seeds where there are several)."""
    lines = []
    for (ood_set, gold), part in heuristics.groupby(["ood_set", "gold"], sort=False):
        table = part.pivot_table(index="model", columns="heuristic", values="accuracy", aggfunc="mean", sort=False)
        lines += [f"{ood_set}, gold label {gold}:", "", to_markdown(table.reset_index().rename_axis(columns=None), digits), ""]
    return lines[:-1]


def markdown_report(tables: dict[str, pd.DataFrame], task: str) -> str:
    """The run's summary for the Prefect UI: tables split to fit the artifact pane."""
    parts = [f"# RMC on `{task}`"]
    for table in summary_tables(tables):
        parts += ["", to_markdown(table, max_columns=PANE_COLUMNS)]
    parts += ["", *(f"- {line}" for line in legend(tables))]
    if (upper := upper_bound_table(tables)) is not None:
        parts += ["", f"## {UPPER_BOUND_HEADING}", "", to_markdown(upper, max_columns=PANE_COLUMNS)]
    if lines := premise_lines(tables):
        parts += ["", "## RMC's premise", "", *lines]
    if lines := comparison_lines(tables):
        parts += ["", "## RMC against each baseline", "", *lines]
    if "split_agreement" in tables:
        parts += ["", "## Variance split vs annotated hard split", "", to_markdown(tables["split_agreement"], max_columns=PANE_COLUMNS)]
    if "heuristics" in tables and not tables["heuristics"].empty:
        parts += ["", "## OOD accuracy by heuristic and gold label", "", *heuristic_lines(tables["heuristics"])]
    return "\n".join(parts)


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> None:
    """Each table as CSV (to read) and parquet (to load with its dtypes)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
        frame.to_parquet(out / f"{name}.parquet", index=False)
