"""The evaluations: each thing a run measures is one `EvaluationSpec`, registered once.

A spec declares what it needs (every model's predictions and the data always; the
difficulty scores and the sub-networks' predictions when it names them; or the trained
models themselves), the per-model columns it writes with the direction of each (higher or
lower is better), which of them get paired comparisons, and any tables of its own. An
evaluation of predictions is its own cached stage per seed; one of the models themselves
(`measure`, e.g. size and speed) runs once per run, after the summary, on the first seed's
models, alone. One that queries each model (`query`, the adversarial attack) runs as a
cached stage per model and seed, and its per-row outcomes join the paired comparisons as
splits of their own. The results table, the intervals over seeds, the paired comparisons,
the printed and Prefect summaries and the experiment reports are built from these declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from rmc_core.registry import Registry, own_settings

if TYPE_CHECKING:  # annotations only: the data registry imports the config, which imports this package
    from rmc_core.data.registry import TaskData, TaskSpec


Better = Literal["higher", "lower"]
Shown = Literal["headline", "detail", "hidden"]
# What an evaluation can ask for beyond every model's predictions and the data; "models":
# the trained models themselves (it then has `measure` instead of `results`/`tables`);
# "train": every model's predictions on its training rows too (students otherwise predict
# only dev and the OOD sets: on MNLI the train rows are three times dev).
NEEDS = ("difficulty", "subnetworks", "models", "train")
# One paired metric: per-seed observed values and, per bootstrap resample, per-seed values.
Paired = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Column:
    """One per-model result column. `better`: which way is good (None: a description, not a
    score); `paired`: RMC-vs-baseline comparisons apply; `label`: its name for people
    (default: the column name in words); `shown`: in the headline summary table (which has
    to fit a UI pane), in the detail table, or in neither (a column that repeats another, kept
    in the results files); `legend`: what it measures, in one sentence, under every summary
    that shows it; `share`: a share of rows (an accuracy, a rate), which reports read in
    percent and whose differences they read in points."""

    name: str
    better: Better | None
    paired: bool = False
    label: str | None = None
    shown: Shown = "detail"
    legend: str = ""
    share: bool = False

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")


@dataclass(frozen=True)
class Inputs:
    """What an evaluation's functions receive. probs[model][split]: class probabilities
    (split "dev" or an OOD set, and "train" when the spec needs it); difficulty: the dev
    rows' loss variance; subnetworks: each sub-network's dev probabilities (both None
    unless the spec needs them);
    queried[model]: the tables its `query` stage wrote for that model (None without one);
    settings: the run's settings of the evaluation (`settings_of`; None without a settings class)."""

    task: TaskSpec
    data: TaskData
    probs: dict[str, dict[str, np.ndarray]]
    teacher: str = "teacher"
    difficulty: np.ndarray | None = None
    subnetworks: dict[str, np.ndarray] | None = None
    queried: dict[str, dict[str, pd.DataFrame]] | None = None
    settings: Any = None


@dataclass(frozen=True)
class Measured:
    """What an evaluation of the models themselves receives: each model's checkpoint
    folder, the data, the longest input the students train on, and its settings (the
    RunConfig section its spec names)."""

    models: dict[str, Path]
    data: TaskData
    max_length: int
    settings: Any


@dataclass(frozen=True)
class Queried:
    """What an evaluation that queries a model receives, once per model and seed: the
    model's checkpoint folder, the task and its data, its settings (the RunConfig section
    its spec names), how that model's own predictions are made (`predict`: its
    TrainConfig, for precision, max_length and batch size) on `device`, and a progress
    callback (share done) for the UI."""

    model: Path
    task: TaskSpec
    data: TaskData
    settings: Any
    predict: Any
    device: str = "cpu"
    desc: str = "model"
    on_progress: Callable[[float], None] | None = None


# The table a `query` stage may write for the paired comparisons: one 0/1 column per split
# of its own (the attack's "attack": right after the attack), rows the same for every model.
CORRECT = "correct"


@dataclass(frozen=True)
class Resampled:
    """What a paired metric receives: correct[split] as (seeds, rows) 0/1 arrays, the
    bootstrap's example weights per split, the data, the metrics already computed for this
    model and, for students, the same-seed teacher's."""

    correct: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    data: TaskData
    own: Paired
    teacher: Paired | None


@dataclass(frozen=True)
class EvaluationSpec:
    """One evaluation. columns(data): the columns it writes for this data (OOD sets vary by
    task); results(inputs): one row per model ("model" + those columns); tables(inputs):
    tables of its own; paired(resampled): its paired columns per seed and resample;
    applies(data): whether it has anything to measure on this data; measure(measured):
    tables computed from the models themselves (needs "models"); settings: the class of its
    own settings (a `Frozen` subclass), set in `RunConfig.evaluation_settings[name]`, or, for
    a built-in that has a section of the run config (attack, inference), in that `section`;
    query(queried): the tables of one model queried
    (its own cached stage per model and seed), which reach `results` and `tables` as
    `Inputs.queried`; enabled(settings): whether the run's settings switch it on (an
    attack of 0 rows is off); documents(tables): files it adds to a run's output folder
    (name -> markdown), from the summary's tables; check(settings, task): raises
    ValueError, before any work, when the run's task cannot be evaluated this way;
    by_default: whether a run measures it unless its config lists its evaluations (False: a
    measure that costs more than it tells most runs, asked for by name)."""

    name: str
    summary: str
    columns: Callable[[TaskData], list[Column]]
    results: Callable[[Inputs], pd.DataFrame] | None = None
    tables: Callable[[Inputs], dict[str, pd.DataFrame]] | None = None
    paired: Callable[[Resampled], Paired] | None = None
    applies: Callable[[TaskData], bool] = lambda data: True
    needs: tuple[str, ...] = field(default=())
    measure: Callable[[Measured], dict[str, pd.DataFrame]] | None = None
    settings: type | None = None
    section: str | None = None
    query: Callable[[Queried], dict[str, pd.DataFrame]] | None = None
    enabled: Callable[[Any], bool] = lambda settings: True
    documents: Callable[[dict[str, pd.DataFrame]], dict[str, str]] | None = None
    check: Callable[[Any, TaskSpec], None] | None = None
    by_default: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"evaluation {self.name!r} needs {sorted(unknown)}; known: {', '.join(NEEDS)}")
        if ("models" in self.needs) != (self.measure is not None):
            raise ValueError(f"evaluation {self.name!r}: an evaluation of the models themselves needs \"models\" and `measure`")
        if self.section is not None and self.settings is None:
            raise ValueError(f"evaluation {self.name!r}: a settings section needs its settings class")
        if self.query is not None and self.measure is not None:
            raise ValueError(f"evaluation {self.name!r}: `query` (per model and seed) and `measure` (once per run) exclude "
                             f"each other")


EVALUATIONS: Registry[EvaluationSpec] = Registry("evaluation")


def register(spec: EvaluationSpec) -> EvaluationSpec:
    return EVALUATIONS.add(spec.name, spec)


def default_evaluations() -> tuple[str, ...]:
    """What a run measures when its config does not say: every registered evaluation but
    the opt-in ones."""
    return tuple(name for name, spec in EVALUATIONS.items() if spec.by_default)


def settings_of(spec: EvaluationSpec, cfg: Any) -> Any:
    """The run's settings of `spec` (None when it has none): its section of the run config,
    else its entry in `evaluation_settings`, else its settings class's defaults."""
    if spec.section is not None:
        return getattr(cfg, spec.section)
    return own_settings(spec, cfg.evaluation_settings)


def active(names: tuple[str, ...], cfg: Any) -> list[str]:
    """The named evaluations that the run's settings switch on (`enabled`)."""
    return [n for n in names if EVALUATIONS[n].enabled(settings_of(EVALUATIONS[n], cfg))]


def columns(names: tuple[str, ...], data: TaskData) -> list[Column]:
    """Every column the named evaluations write on this data, in registration order."""
    return [c for name in EVALUATIONS if name in names and EVALUATIONS[name].applies(data)
            for c in EVALUATIONS[name].columns(data)]


DECLARED = "columns"


def directed_columns(declared_table: pd.DataFrame, present: Any) -> list[str]:
    """The declared columns that have a better direction, among those `present`: what a
    summary puts intervals on and compares."""
    return [c for c in declared_table.loc[declared_table["better"] != "", "column"] if c in present]


def declared(spec: EvaluationSpec, data: TaskData) -> pd.DataFrame:
    """A spec's columns on this data as a table that travels with the report, so that any
    reader (the summary, the experiment report) selects columns by declaration, not by name."""
    return pd.DataFrame([{"column": c.name, "evaluation": spec.name, "better": c.better or "", "paired": c.paired,
                          "label": c.title, "shown": c.shown, "legend": c.legend, "share": c.share}
                         for c in spec.columns(data)],
                        columns=["column", "evaluation", "better", "paired", "label", "shown", "legend", "share"])


def compute(spec: EvaluationSpec, inputs: Inputs) -> dict[str, pd.DataFrame]:
    """One evaluation's tables: `results` (per model), its declared `columns` and its own;
    none where it does not apply (no annotated hard rows, no heuristics), which only the
    loaded data can tell."""
    out: dict[str, pd.DataFrame] = {}
    if not spec.applies(inputs.data):
        return out
    out[DECLARED] = declared(spec, inputs.data)
    if spec.results is not None:
        out["results"] = spec.results(inputs)
    if spec.tables is not None:
        out |= spec.tables(inputs)
    return out


def documents(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Every evaluation's files for a run's output folder (name -> markdown), from its summary."""
    return {name: text for spec in EVALUATIONS.values() if spec.documents is not None
            for name, text in spec.documents(tables).items()}
