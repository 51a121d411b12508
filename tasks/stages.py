"""Each rmc_core stage as a Prefect task, and the mapping the flow submits through.

The tasks are the stage functions themselves (no method logic here); they add a task-run
name, the artifact-aware cache policy, persisted results (so the cache survives the
process), retries for the cheap I/O stages, and a UI progress bar for training.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from rmc_core import stages
from rmc_core.store import Ref
from tasks.caching import ArtifactCachePolicy

COMMON: dict[str, Any] = {"cache_policy": ArtifactCachePolicy(), "persist_result": True}


def with_progress(stage: Callable[..., Ref]) -> Callable[..., Ref]:
    """The stage, with its training progress shown in the UI as a progress artifact."""

    @functools.wraps(stage)
    def run(*args: Any, **kwargs: Any) -> Ref:
        bound = inspect.signature(stage).bind(*args, **kwargs)
        progress = create_progress_artifact(0.0, description=f"{stage.__name__} {bound.arguments.get('desc', '')}")
        bound.arguments["on_progress"] = lambda done: update_progress_artifact(progress, 100.0 * done)
        return stage(*bound.args, **bound.kwargs)

    return run


prepare_data = task(stages.prepare_data, name="prepare-data", task_run_name="prepare-data", retries=1, **COMMON)
prepare_base = task(stages.prepare_base, name="prepare-base", task_run_name="prepare-base", **COMMON)
truncate_base = task(stages.truncate_base, name="truncate-base", task_run_name="truncate-base-{num_layers}", **COMMON)
train = task(with_progress(stages.train), name="train", task_run_name="train-{desc}", **COMMON)
prune_oneshot = task(with_progress(stages.prune_oneshot), name="prune-oneshot", task_run_name="prune-oneshot-{desc}", **COMMON)
predict = task(stages.predict, name="predict", task_run_name="predict-{desc}", **COMMON)
difficulty = task(stages.difficulty, name="difficulty", task_run_name="difficulty", **COMMON)
student_inputs = task(stages.student_inputs, name="student-inputs", task_run_name="student-inputs-{method}", **COMMON)
evaluate = task(stages.evaluate, name="evaluate", task_run_name="evaluate", retries=1, **COMMON)

TASK_OF: dict[Callable[..., Any], Task] = {
    stages.prepare_data: prepare_data,
    stages.prepare_base: prepare_base,
    stages.truncate_base: truncate_base,
    stages.train: train,
    stages.prune_oneshot: prune_oneshot,
    stages.predict: predict,
    stages.difficulty: difficulty,
    stages.student_inputs: student_inputs,
    stages.evaluate: evaluate,
}


def bound_to_store(t: Task, root: Path) -> Task:
    """The task with its results persisted beside the artifacts they point to, so that a
    store folder is a complete, shareable cache.

    Isolation stays READ_COMMITTED: Prefect's file locks carry no expiry, and a run killed
    while holding one would block every later run forever. Two identical runs started
    together may both compute a stage; the content-addressed store keeps one artifact.
    """
    return t.with_options(result_storage=root / "prefect-results")
