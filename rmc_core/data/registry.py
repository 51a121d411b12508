"""The task registry: label names, ID train/dev splits, OOD sets and the OOD label mapping.

The built-in tasks are declarations in data/tasks/ (their local sources point into the
shared data folder, whose README gives provenance; hub sources are what users with
internet run at full scale); a task declared by a user is resolved into the same `TaskSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rmc_core.config import DataConfig
from rmc_core.data import shortcut, synthetic
from rmc_core.data.annotate import ANNOTATION_FILES
from rmc_core.data.sources import DataError, LocalSource, Source, check_readable, load_source
from rmc_core.schema import Frozen


class TaskSources(Frozen):
    train: Source
    dev: Source
    ood: dict[str, Source]
    # Training rows from the OOD distribution, labelled like the OOD sets (the upper bound
    # of SRNets, method ood-upper); None: the task has none.
    ood_train: Source | None = None
    # The folder local paths are relative to; None: the run's data.data_root. A task
    # declared from files has absolute paths (resolved where it was declared) and root "/".
    root: str | None = None


class OodLabels(Frozen):
    """One challenge set's own labels and where each task label counts (many-to-one: MNLI's
    neutral and contradiction both count as HANS's non-entailment; None: always wrong)."""

    labels: tuple[str, ...]
    label_map: dict[str, str | None]


class TaskSpec(Frozen):
    """What a task is, independent of where its rows come from."""

    name: str
    labels: tuple[str, ...]
    # The OOD label set of every OOD set without one of its own in `ood_sets`, and of the
    # OOD training rows (the upper bound).
    ood_labels: tuple[str, ...]
    ood_label_map: dict[str, str | None]
    # OOD sets with labels of their own (a task declared from files gives each its own).
    ood_sets: dict[str, OodLabels] = {}
    # Each row is one text (sentiment, topic, intent), not a pair: its frames have no text_b.
    single_text: bool = False
    default_alpha: float
    sources: dict[str, TaskSources]
    # Its training rows carry a `hard` annotation (the oracle difficulty control reads it).
    train_annotated: bool = False
    # The known-bias methods' default bias-only model (objectives/bias_model.py): the
    # hypothesis-only bias of NLI, FEVER's claim-only bias; word overlap for QQP (SRNets).
    bias_model: str = "hypothesis-only"
    # The side of each pair the adversarial attack rewrites (evaluation/attack.py): NLI's
    # hypothesis, FEVER's claim, QQP's and PAWS's second question or sentence (the pair's
    # text_b everywhere: the side that carries each task's known bias); None: no text to perturb.
    attacked: str | None = "text_b"

    def ood_label_sets(self) -> np.ndarray:
        """Per OOD label, a 0/1 row over the task's labels: those that count as it (HANS's
        non-entailment: neutral and contradiction), the mapping `ood_label_ids` applies."""
        ids = np.array(self._mapped_ids())
        return (ids[None, :] == np.arange(len(self.ood_labels))[:, None]).astype(float)

    @property
    def generated(self) -> bool:
        """Its rows are generated (the synthetic task), not read from any source."""
        return not self.sources

    def ood_labels_of(self, ood_set: str) -> tuple[str, ...]:
        """The label names of `ood_set`'s rows."""
        if ood_set == shortcut.OOD_NAME:
            return self.labels
        own = self.ood_sets.get(ood_set)
        return own.labels if own is not None else self.ood_labels

    def ood_label_ids(self, ood_set: str) -> list[int]:
        """For each task label id, the id it counts as on `ood_set` (-1: always wrong): the
        OOD set's own mapping, the task's OOD label set's, or the task's own labels on the
        injected shortcut's OOD copy of dev."""
        if ood_set == shortcut.OOD_NAME:
            return list(range(len(self.labels)))
        own = self.ood_sets.get(ood_set)
        return self._mapped_ids() if own is None else self._mapped_ids(own.labels, own.label_map)

    def _mapped_ids(self, labels: tuple[str, ...] | None = None, mapping: dict[str, str | None] | None = None) -> list[int]:
        labels, mapping = labels or self.ood_labels, mapping or self.ood_label_map
        return [labels.index(t) if (t := mapping[name]) is not None else -1 for name in self.labels]


# The one source of a task declared from files (its files are what they are, local or hub).
FILES = "files"
# The built-in tasks that read files are declarations shipped beside this module
# (data/tasks/*.yaml), in the format users declare their own tasks in (data/task_file.py),
# and read by the same code; the synthetic task is a generator.
BUILT_IN = Path(__file__).parent / "tasks"


def built_in(name: str) -> TaskSpec:
    from rmc_core.data.task_file import read_task_file, to_spec

    task = read_task_file(BUILT_IN / f"{name}.yaml")
    return to_spec(task, task.labels)


SYNTHETIC = TaskSpec(
    name="synthetic",
    labels=synthetic.LABELS,
    ood_labels=synthetic.OOD_LABELS,
    ood_label_map={"entailment": "entailment", "neutral": "non-entailment", "contradiction": "non-entailment"},
    default_alpha=0.5,
    sources={},
    train_annotated=True,
)

TASKS: dict[str, TaskSpec] = {t.name: t for t in (*(built_in(n) for n in ("mnli", "fever", "qqp")), SYNTHETIC)}
# What stages receive as their task: its whole spec (so that a worker elsewhere needs no
# registry, and a changed declaration changes every key that depends on it); a built-in
# task's name is accepted too (tools that call a stage directly).
TaskHandle = str | TaskSpec


def task_spec(task: TaskHandle) -> TaskSpec:
    return task if isinstance(task, TaskSpec) else TASKS[task]


def task_sources(spec: TaskSpec, cfg: DataConfig) -> TaskSources:
    """The sources a run reads: a declared task's files, else the configured source."""
    if FILES in spec.sources:
        return spec.sources[FILES]
    if cfg.source not in spec.sources:
        raise ValueError(f"task {spec.name!r} has no {cfg.source!r} source; available: {sorted(spec.sources)}")
    return spec.sources[cfg.source]


def data_root(srcs: TaskSources, cfg: DataConfig) -> Path:
    return Path(srcs.root) if srcs.root is not None else cfg.data_root


@dataclass(frozen=True)
class TaskData:
    """The rows of one task: ID train and dev, and each OOD set, as canonical frames."""

    train: pd.DataFrame
    dev: pd.DataFrame
    ood: dict[str, pd.DataFrame]


def stratified_sample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """At most n rows keeping the label (and heuristic, when present) proportions."""
    if n is None or n >= len(frame):
        return frame
    by = [c for c in ("label", "heuristic", "subcase") if c in frame.columns]
    picked = frame.groupby(by, group_keys=False).sample(frac=n / len(frame), random_state=seed)
    return picked.sort_index().reset_index(drop=True)


def ood_names(task: TaskHandle, source: str, shortcut_injected: bool = False) -> tuple[str, ...]:
    """The names of a task's OOD sets, known before any file is read (the DAG needs them)."""
    spec = task_spec(task)
    if spec.generated:
        return (synthetic.OOD_NAME,)
    srcs = task_sources(spec, DataConfig(source=source))
    return (*srcs.ood, *([shortcut.OOD_NAME] if shortcut_injected else []))


def annotated_training_rows(task: TaskHandle, cfg: DataConfig) -> bool:
    """The training rows carry a `hard` annotation: the synthetic task's planted split, a
    declared hardness column, or an injected shortcut's bias-conflicting rows."""
    return task_spec(task).train_annotated or cfg.shortcut_strength is not None


def local_files(task: TaskHandle, cfg: DataConfig, ood_train: bool = False) -> list[Path]:
    """Every local file a run of the task reads (its annotation files included)."""
    spec = task_spec(task)
    if spec.generated:
        return []
    srcs = task_sources(spec, cfg)
    root = data_root(srcs, cfg)
    every = (srcs.train, srcs.dev, *srcs.ood.values(), *([srcs.ood_train] if ood_train and srcs.ood_train else []))
    return [root / s.path for s in every if isinstance(s, LocalSource)] + [
        root / ANNOTATION_FILES[s.annotate] for s in every if s.annotate in ANNOTATION_FILES]


def check_sources(task: TaskHandle, cfg: DataConfig, ood_train: bool = False) -> None:
    """The task has the configured source, and each of its local files is where the
    registry says: found without reading any of them. `ood_train`: the run also needs the
    task's OOD training rows (method ood-upper)."""
    spec = task_spec(task)
    ood_names(spec, cfg.source)
    if ood_train and not has_ood_train(spec, cfg.source):
        raise ValueError(f"method ood-upper needs the task's OOD training rows; {spec.name} ({cfg.source}) has none "
                         f"(built-in tasks that have them: {', '.join(sorted(ood_train_tasks(cfg.source)))}; a declared "
                         "task names them as ood_train)")
    local = local_files(spec, cfg, ood_train)
    if not local:
        return
    root = data_root(task_sources(spec, cfg), cfg)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root.resolve()} does not exist (set data.data_root); "
                                f"{spec.name} ({cfg.source}) reads {[str(p.relative_to(root)) for p in local]} from it")
    missing = [str(path) for path in local if not path.exists() and not path.is_symlink()]
    if missing:
        raise FileNotFoundError(f"data files missing under {root.resolve()}: {missing}")
    for path in local:
        check_readable(path, root)


def load_ood_train(task: str, cfg: DataConfig) -> pd.DataFrame:
    """The task's OOD training rows (labels are OOD label ids), stratified to
    `max_ood_train`: what the OOD-information upper bound adds to a student's training.
    Each row also says which task labels its OOD label covers (`allows_<label>` columns,
    `TaskSpec.ood_label_sets`), so that training needs no task registry."""
    spec = task_spec(task)
    check_sources(spec, cfg, ood_train=True)
    if spec.generated:
        rows = synthetic.generate_ood(cfg.max_ood_train or cfg.synthetic_ood, cfg.seed, cfg.synthetic_order, "ood-train")
    else:
        srcs = task_sources(spec, cfg)
        rows = stratified_sample(load_source(srcs.ood_train, spec.ood_labels, data_root(srcs, cfg),
                                             f"{spec.name}/ood-train"), cfg.max_ood_train, cfg.seed)
    allows = spec.ood_label_sets()[rows["label"].to_numpy(dtype=int)]
    return rows.assign(**{f"{ALLOWS}{name}": allows[:, i] for i, name in enumerate(spec.labels)})


# The prefix of an OOD training row's columns that say which task labels its label covers.
ALLOWS = "allows_"


def has_ood_train(spec: TaskSpec, source: str) -> bool:
    if spec.generated:
        return True
    srcs = spec.sources.get(FILES) or spec.sources.get(source)
    return srcs is not None and srcs.ood_train is not None


def ood_train_tasks(source: str) -> set[str]:
    """The built-in tasks with an OOD training set in `source` (the synthetic task makes its own)."""
    return {name for name, spec in TASKS.items() if has_ood_train(spec, source)}


def load_task_data(task: TaskHandle, cfg: DataConfig) -> TaskData:
    """Read and subsample every split of a task; fails on the first missing or bad split."""
    spec = task_spec(task)
    task = spec.name
    if spec.generated:
        bias, order = cfg.synthetic_bias, cfg.synthetic_order
        train = synthetic.generate_split(cfg.synthetic_train, cfg.seed, "train", bias, order)
        dev = synthetic.generate_split(cfg.synthetic_dev, cfg.seed, "dev", bias, order)
        ood = {synthetic.OOD_NAME: synthetic.generate_ood(cfg.synthetic_ood, cfg.seed, order)}
    else:
        check_sources(spec, cfg)
        srcs = task_sources(spec, cfg)
        root = data_root(srcs, cfg)
        train = load_source(srcs.train, spec.labels, root, f"{task}/train")
        dev = load_source(srcs.dev, spec.labels, root, f"{task}/dev")
        ood = {name: load_source(s, spec.ood_labels_of(name), root, f"{task}/{name}") for name, s in srcs.ood.items()}
    data = TaskData(
        train=stratified_sample(train, cfg.max_train, cfg.seed),
        dev=stratified_sample(dev, cfg.max_dev, cfg.seed),
        ood={k: stratified_sample(v, cfg.max_ood, cfg.seed) for k, v in ood.items()},
    )
    if cfg.shortcut_strength is not None:
        k, strength = len(spec.labels), cfg.shortcut_strength
        data = TaskData(train=shortcut.inject(data.train, k, strength, (cfg.seed, 0)),
                        dev=shortcut.inject(data.dev, k, strength, (cfg.seed, 1)),
                        ood={**data.ood, shortcut.OOD_NAME: shortcut.anti(data.dev, k, (cfg.seed, 2))})
    sizes = {"train": len(data.train), "dev": len(data.dev), **{k: len(v) for k, v in data.ood.items()}}
    if not all(sizes.values()):
        raise DataError(f"{task}: a split is empty after sampling (rows: {sizes}); the per-label sample of "
                        f"max_train/max_dev/max_ood rounds to 0 rows below one row per label group")
    return data
