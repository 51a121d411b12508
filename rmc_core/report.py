"""Human-readable views of a run's report tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rmc_core.data.registry import TaskData
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.uncertainty import verdicts


def summary_labels() -> dict[str, str]:
    """The headline columns and their names, as the registered evaluations declare them
    (`Column.label`), in registration order."""
    empty = pd.DataFrame()
    no_data = TaskData(train=empty, dev=empty, ood={})
    return {"model": "model", **{c.name: c.label for spec in EVALUATIONS.values() for c in spec.columns(no_data) if c.label}}


METRIC_NOTE = ("F_bias: the model's relative ID-to-OOD accuracy drop, (dev - OOD) / dev, over the teacher's "
               "(above 1: it leans on shortcuts more than its teacher). "
               "Label loyalty: share of dev rows where the model predicts the teacher's label. Prob. loyalty: "
               "1 - mean Jensen-Shannon distance to the teacher's dev probabilities, with base-2 logarithms "
               "(so in [0, 1]).")


def summary_columns(results: pd.DataFrame) -> list[str]:
    """The declared headline columns present, plus each OOD set, the easy/hard gap and the
    achieved sparsity when present."""
    labels = summary_labels()
    extra = [c for c in results.columns if c.startswith("acc_") and c not in labels]
    extra += [c for c in ("dev_easy", "dev_hard", "dev_gap", "achieved_sparsity") if c in results.columns]
    return [c for c in labels if c in results.columns] + extra


def results_summary(results: pd.DataFrame) -> pd.DataFrame:
    return results[summary_columns(results)].rename(columns=summary_labels())


def headline(tables: dict[str, pd.DataFrame], digits: int = 3) -> pd.DataFrame:
    """The summary table; with several seeds each metric reads 'mean [low, high]' (95 %
    t-interval over seeds)."""
    results = tables["results"]
    frame = results[summary_columns(results)].copy()
    intervals = tables.get("results_interval")
    if intervals is not None and not intervals.empty and intervals["n_seeds"].max() > 1:
        cells = {(r.model, r.metric): f"{r.mean:.{digits}f} [{r.low:.{digits}f}, {r.high:.{digits}f}]"
                 for r in intervals.itertuples()}
        for column in frame.columns[1:]:
            frame[column] = [cells.get((m, column), _cell(v, digits)) for m, v in zip(frame["model"], frame[column])]
    return frame.rename(columns=summary_labels())


def _cell(v: object, digits: int) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


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
    """The paired comparisons in words; empty when the run has no RMC/baseline pair."""
    comparisons = tables.get("comparisons")
    if comparisons is None or comparisons.empty:
        return []
    n_seeds = int(comparisons["n_seeds"].max())
    head = (f"Differences (a - b) with 95 % paired bootstrap intervals over examples"
            f"{' and seeds' if n_seeds > 1 else ''} ({n_seeds} seed{'s' if n_seeds > 1 else ''}); "
            "accuracies in points, lower F_bias is better"
            + (":" if n_seeds > 1 else "; with one seed, 'resolved' means beyond example noise only: seed-to-seed "
               "variation is not measured (run with several seeds to include it):"))
    return [head, *(f"- {line}" for line in verdicts(comparisons))]


def premise_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """RMC's premise, checked on the annotated dev split: the teacher must know the rule
    (hard rows right), sub-networks must lose it (hard rows fall with sparsity while easy
    rows hold), and so the variance split must agree with the hard rows beyond chance.
    Empty when the dev set has no hard/easy annotation."""
    if "split_agreement" not in tables:
        return []
    teacher = tables["results"].set_index("model").loc["teacher"]
    subnets = tables["subnetworks"]
    agreement = tables["split_agreement"].iloc[0]
    sparsities = ", ".join(f"{round(s * 100)}" for s in subnets["sparsity"])
    return [
        "Premise checks on the annotated dev split (fractions):",
        f"- teacher: hard rows {teacher['dev_hard']:.3f}, easy rows {teacher['dev_easy']:.3f}",
        (f"- sub-networks at {sparsities} % sparsity: hard rows {' / '.join(f'{v:.2f}' for v in subnets['hard'])}, "
        f"easy rows {' / '.join(f'{v:.2f}' for v in subnets['easy'])}"),
        (f"- the loss-variance split agrees with the annotated one on {agreement['agreement']:.3f} of "
        f"{int(agreement['n'])} rows; chance (same hard fraction, independent) is {agreement['chance']:.3f}"),
    ]


PANE_COLUMNS = 6  # what the Prefect UI's artifact pane shows without overflowing
INFERENCE_NOTE = ("Size and CPU speed, fp32, measured in one process after every stage finished: latency is the "
                  "time per row at batch 1, throughput rows/s in batches of `batch_size`, each the median of repeated "
                  "rounds in which every model runs in turn. Speed-ups over the teacher (at batch 1 and batched) are "
                  "the median of per-round ratios with a distribution-free 95 % interval (nan under 6 rounds); one whose "
                  "interval contains 1 is unresolved. Deflated: the weights file zlib-compressed, "
                  "where unstructured zeros save space. Export a model with `rmc export REF --format hf|onnx --out DIR`.")


def inference_lines(costs: pd.DataFrame) -> list[str]:
    """The inference-cost table and how it was measured."""
    frame = costs.assign(ref=costs["ref"].str.slice(0, 18))
    return [to_markdown(frame, max_columns=PANE_COLUMNS), "", INFERENCE_NOTE]


def markdown_report(tables: dict[str, pd.DataFrame], task: str) -> str:
    """The run's summary for the Prefect UI: tables split to fit the artifact pane."""
    parts = [f"# RMC on `{task}`", "", to_markdown(headline(tables), max_columns=PANE_COLUMNS), "", METRIC_NOTE]
    if lines := premise_lines(tables):
        parts += ["", "## RMC's premise", "", *lines]
    if lines := comparison_lines(tables):
        parts += ["", "## RMC against each baseline", "", *lines]
    if "split_agreement" in tables:
        parts += ["", "## Variance split vs annotated hard split", "", to_markdown(tables["split_agreement"], max_columns=PANE_COLUMNS)]
    if "heuristics" in tables and not tables["heuristics"].empty:
        parts += ["", "## OOD accuracy by heuristic and gold label", "", to_markdown(tables["heuristics"], max_columns=PANE_COLUMNS)]
    return "\n".join(parts)


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> None:
    """Each table as CSV (to read) and parquet (to load with its dtypes)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
        frame.to_parquet(out / f"{name}.parquet", index=False)
