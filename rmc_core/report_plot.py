"""The run's one picture: ID and OOD accuracy per model, the teacher marked, with the
95 % interval over seeds when there are several. What a user looks at first: does a
compressed model keep its teacher's OOD accuracy, and does RMC keep more of it than its
baselines?"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core.evaluation.tables import OOD_UNION
from rmc_core.report import seed_count

PANELS = {"acc_dev": "ID dev accuracy", f"acc_{OOD_UNION}": "OOD accuracy"}


def _points(tables: dict[str, pd.DataFrame], metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Each model's value, and its interval as error-bar half-widths when there are seeds."""
    results = tables["results"]
    values = results[metric].to_numpy(dtype=float)
    if seed_count(tables) < 2:
        return values, None
    intervals = tables["results_interval"]
    iv = intervals[intervals["metric"] == metric].set_index("model").reindex(results["model"])
    return values, np.vstack([values - iv["low"].to_numpy(float), iv["high"].to_numpy(float) - values])


def report_png(tables: dict[str, pd.DataFrame], task: str) -> bytes:
    """The picture as PNG bytes (the CLI writes them to report.png, the flow attaches them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = tables["results"]
    models = list(results["model"])
    teacher = (results["role"] == "teacher").to_numpy() if "role" in results.columns else np.array([m == "teacher" for m in models])
    y = np.arange(len(models))[::-1]
    n_seeds = seed_count(tables)
    panels = {m: t for m, t in PANELS.items() if m in results.columns}  # no OOD panel without challenge sets
    fig, axes = plt.subplots(1, len(panels), figsize=(9, 1.2 + 0.38 * len(models)), sharey=True, layout="constrained",
                             squeeze=False)
    axes = axes[0]
    for ax, (metric, title) in zip(axes, panels.items()):
        values, err = _points(tables, metric)
        colors = np.where(teacher, "#444444", "#1f77b4")
        ax.barh(y, values, color=colors, alpha=0.85, xerr=err, capsize=3, ecolor="black")
        if teacher.any():
            ax.axvline(values[teacher][0], color="#444444", linestyle="--", linewidth=1)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlim(0, 1.12)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [f"{m} (teacher)" if t and m != "teacher" else m for m, t in zip(models, teacher)], fontsize=9)
    seeds = f"mean of {n_seeds} seeds, bars: 95 % t-interval" if n_seeds > 1 else "one seed"
    fig.suptitle(f"{task}: accuracy per model ({seeds}; dashed line: the teacher)", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_report_png(tables: dict[str, pd.DataFrame], task: str, out: Path) -> Path:
    path = out / "report.png"
    path.write_bytes(report_png(tables, task))
    return path
