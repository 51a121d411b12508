"""A run's numbers with their uncertainty: means and intervals over seeds, and the paper's
comparisons (RMC against each baseline) as paired intervals, in words: the envelope of
the paired bootstrap and, with 2 or more seeds, the t-interval over per-seed differences
(`statistics` says why; each comparison row keeps both).

The per-seed reports come from `evaluation`; this module only combines seeds and
resamples examples (`statistics` has the arithmetic). Every comparison is scored on the
same rows for both models (the data sample is fixed across seeds), so the bootstrap is
paired: one resample of rows and seeds serves both sides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rmc_core.evaluation.registry import EVALUATIONS, Paired, Resampled, columns
from rmc_core.evaluation.statistics import CONFIDENCE, difference_interval, example_weights, seed_interval, seed_resamples
from rmc_core.evaluation.tables import ood_predictions

if TYPE_CHECKING:  # annotations only: the data registry imports the config, which imports this package
    from rmc_core.data.registry import TaskData, TaskSpec


def mean_over_seeds(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One table from per-seed copies: float columns averaged, the others (names, counts)
    kept as the keys that identify a row."""
    both = pd.concat(frames, ignore_index=True)
    if both.empty:
        return both
    keys = [c for c in both.columns if not pd.api.types.is_float_dtype(both[c])]
    if not keys:
        return both.mean().to_frame().T
    return both.groupby(keys, sort=False, as_index=False).mean()[list(both.columns)]


def seed_intervals(by_seed: pd.DataFrame, metrics: list[str], by: tuple[str, ...] = ("model",)) -> pd.DataFrame:
    """Per group of rows (by default per model) and metric: mean over seeds and its
    t-interval (nan bounds for one seed)."""
    rows = []
    for key, group in by_seed.groupby(list(by), sort=False, dropna=False):
        for metric in metrics:
            iv = seed_interval(group[metric].to_numpy())
            rows.append({**dict(zip(by, key)), "metric": metric, "mean": iv.estimate, "low": iv.low, "high": iv.high,
                         "n_seeds": len(group)})
    return pd.DataFrame(rows, columns=[*by, "metric", "mean", "low", "high", "n_seeds"])


def correctness(probs: dict[str, np.ndarray], data: TaskData, spec: TaskSpec) -> dict[str, np.ndarray]:
    """1.0 where a model's prediction is right, per split (OOD predictions mapped to the OOD labels)."""
    out = {"dev": (np.argmax(probs["dev"], axis=1) == data.dev["label"].to_numpy()).astype(np.float32)}
    for name, frame in data.ood.items():
        out[name] = (ood_predictions(probs[name], spec, name) == frame["label"].to_numpy()).astype(np.float32)
    return out


def compare(
    correct: dict[str, dict[str, np.ndarray]],
    data: TaskData,
    pairs: list[tuple[str, str]],
    evaluations: tuple[str, ...] | None = None,
    teacher: str = "teacher",
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired intervals of (a - b) for each pair (low/high: the envelope that decides
    `resolved`; bootstrap_* and t_*: its two parts), on every paired column the
    named evaluations declare (accuracy on dev, each OOD set and their union; the hard dev
    rows; F_bias against the same-seed teacher, not in pairs with the teacher itself);
    `evaluations` None: every registered one.

    correct[model][split]: (seeds, rows) 0/1 arrays, seeds in the same order for every model;
    splits beyond dev and the OOD sets (the attacked rows) get example weights of their own.
    """
    evaluations = tuple(EVALUATIONS) if evaluations is None else evaluations
    rng = np.random.default_rng(seed)
    splits = ["dev", *data.ood]
    n_seeds = next(iter(correct.values()))["dev"].shape[0]
    weights = {s: example_weights(len(correct[teacher][s][0]), n_resamples, rng) for s in [*splits, *sorted(
        set(correct[teacher]) - set(splits))]}
    seeds = seed_resamples(n_seeds, n_resamples, rng)
    specs = [EVALUATIONS[n] for n in EVALUATIONS if n in evaluations and EVALUATIONS[n].paired and EVALUATIONS[n].applies(data)]
    lower = {c.name for c in columns(evaluations, data) if c.better == "lower"}

    def metrics(model: str, of_teacher: Paired | None) -> Paired:
        """Each paired metric as (per-seed observed value, per-resample per-seed value)."""
        out: Paired = {}
        for spec in specs:
            out |= spec.paired(Resampled(correct[model], weights, data, out, of_teacher))
        return out

    t = metrics(teacher, None)
    cache = {m: t if m == teacher else metrics(m, t) for m in {teacher, *(x for p in pairs for x in p)}}
    rows = []
    for a, b in pairs:
        for metric in [m for m in cache[a] if m in cache[b]]:
            (obs_a, boot_a), (obs_b, boot_b) = cache[a][metric], cache[b][metric]
            iv = difference_interval(obs_a, obs_b, boot_a, boot_b, seeds)
            better = (iv.low > 0) if metric not in lower else (iv.high < 0)
            rows.append({"a": a, "b": b, "metric": metric, "a_value": float(np.mean(obs_a)),
                         "b_value": float(np.mean(obs_b)), "difference": iv.estimate, "low": iv.low, "high": iv.high,
                         "resolved": iv.resolved, "a_better": bool(better and iv.resolved),
                         "bootstrap_low": iv.bootstrap.low, "bootstrap_high": iv.bootstrap.high,
                         "t_low": iv.over_seeds.low, "t_high": iv.over_seeds.high, "n_seeds": n_seeds,
                         "confidence": CONFIDENCE})
    return pd.DataFrame(rows)


def verdicts(comparisons: pd.DataFrame, labels: dict[str, str] | None = None) -> list[str]:
    """Each comparison as a sentence that says whether the interval resolves it; with
    `labels` (column -> name for people), metrics are named as the summaries name them and
    those without a label (a column that repeats another) are left out. Accuracies (columns
    named `acc_*`, `dev_*` or `*_accuracy`) read in points, other metrics as they are."""
    lines = []
    for r in comparisons.itertuples():
        if labels is not None and r.metric not in labels:
            continue
        scale, unit = (100, " points") if r.metric.startswith(("acc_", "dev_")) or r.metric.endswith("_accuracy") else (1, "")
        span = f"{r.difference * scale:+.2f}{unit} [{r.low * scale:+.2f}, {r.high * scale:+.2f}]"
        if np.isnan(r.low):
            word = "no interval (one seed, compared over seeds only)"
        elif not r.resolved:
            word = "not resolved (the interval contains 0)"
        else:
            word = f"resolved: {r.a if r.a_better else r.b} is better"
        lines.append(f"{r.a} - {r.b}, {labels[r.metric] if labels else r.metric}: {span}, {word}")
    return lines
