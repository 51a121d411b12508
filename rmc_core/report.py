"""Human-readable views of a run's report tables."""

from __future__ import annotations

import pandas as pd

SUMMARY = {
    "model": "model",
    "acc_dev": "ID dev",
    "acc_ood": "OOD",
    "f_bias": "F_bias",
    "label_loyalty": "label loyalty",
    "prob_loyalty": "prob. loyalty",
}


def results_summary(results: pd.DataFrame) -> pd.DataFrame:
    """The issue's headline columns, plus each OOD set and the easy/hard gap when present."""
    extra = [c for c in results.columns if c.startswith("acc_") and c not in SUMMARY]
    extra += [c for c in ("dev_easy", "dev_hard", "dev_gap", "sparsity") if c in results.columns]
    return results[list(SUMMARY) + extra].rename(columns=SUMMARY)


def to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-style table, without the optional `tabulate` dependency."""
    def cell(v: object) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
