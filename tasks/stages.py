"""Each rmc_core stage as a Prefect task, and the mapping the flow submits through.

The tasks are the stage functions themselves (no method logic here); they add a task-run
name, the artifact-aware cache policy, persisted results (so the cache survives the
process; data-only records, never pickles), retries for the cheap I/O stages, a UI
progress bar for training, and a cost record (wall seconds, rows, peak memory) written
beside the artifact each stage makes.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pyarrow.parquet as pq
from prefect import Task, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES

from rmc.tasks.caching import ArtifactCachePolicy
from rmc.tasks.result_records import RecordStorage, RefSerializer
from rmc.tasks.run_logs import send_core_logs_to_runs
from rmc_core import stages
from rmc_core.costs import COST
from rmc_core.store import Ref, Store
from rmc_core.training.loop import peak_rss_mb

log = logging.getLogger(__name__)
send_core_logs_to_runs()
COMMON: dict[str, Any] = {"cache_policy": ArtifactCachePolicy(), "persist_result": True, "result_serializer": RefSerializer()}


def transient(task: Task, task_run: Any, state: Any) -> bool:
    """Retry I/O stages on what may pass (a network hiccup), not on what will fail again:
    bad data, a missing file, a bad value."""
    try:
        state.result()
    except (ValueError, FileNotFoundError):
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient
        return True
    return False


PROGRESS_SETTINGS = {PREFECT_API_REQUEST_TIMEOUT: 5.0, PREFECT_CLIENT_MAX_RETRIES: 0}


PROGRESS_INTERVAL_S = 2.0


def best_effort_progress(artifact_id: UUID, clock: Callable[[], float] = time.monotonic) -> Callable[[float], None]:
    """A progress callback that can neither fail nor stall a training: one try of at most
    5 s per update (Prefect's defaults: 60 s per request, and retries on server errors),
    and at most one update per PROGRESS_INTERVAL_S besides the last (each is a blocking
    request of ~45 ms here: twenty of them cost a second of a few-second stage). The
    artifact starts at 0 %, so the first update waits an interval too, and a stage shorter
    than that sends only its end. The settings for these requests are made once, at the
    first update: making them costs ~40 ms."""
    last = clock()
    settings: Any = None

    def report(done: float) -> None:
        nonlocal last, settings
        if done < 1.0 and clock() - last < PROGRESS_INTERVAL_S:
            return
        last = clock()
        try:
            if settings is None:
                context = get_settings_context()
                settings = context.profile, context.settings.copy_with_update(updates=PROGRESS_SETTINGS)
            with SettingsContext(profile=settings[0], settings=settings[1]):
                update_progress_artifact(artifact_id, 100.0 * done)
        except Exception as err:  # noqa: BLE001 - a progress bar must never fail a training
            log.warning("progress update failed (%s); training goes on", type(err).__name__)

    return report


def artifact_key(text: str) -> str:
    """`text` as a Prefect artifact key (lowercase letters, digits and dashes): the card's title."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def with_progress(stage: Callable[..., Ref]) -> Callable[..., Ref]:
    """The stage, with its training progress shown in the UI as a progress artifact."""

    @functools.wraps(stage)
    def run(*args: Any, **kwargs: Any) -> Ref:
        bound = inspect.signature(stage).bind(*args, **kwargs)
        desc = bound.arguments.get("desc", "")
        progress = create_progress_artifact(0.0, key=artifact_key(f"{stage.__name__}-{desc}"),
                                            description=f"{stage.__name__} {desc}: share of the steps done")
        bound.arguments["on_progress"] = best_effort_progress(progress)
        return stage(*bound.args, **bound.kwargs)

    return run


def measured(stage: Callable[..., Ref]) -> Callable[..., Ref]:
    """The stage, recording what making its artifact cost (wall seconds, rows, peak memory)
    as the artifact's `cost` record in the store.

    It runs only when the stage really runs (a cache hit does not call it), so a rerun
    keeps the figures of the run that computed the artifact. The peak RSS is the process's
    high-water mark when the stage ended: per stage only while stages run one at a time.
    """

    @functools.wraps(stage)
    def run(*args: Any, **kwargs: Any) -> Ref:
        bound = inspect.signature(stage).bind(*args, **kwargs)
        start = time.perf_counter()
        ref = stage(*args, **kwargs)
        seconds = time.perf_counter() - start
        if ref is None:
            return ref
        store: Store = bound.arguments["store"]
        rows = sum(pq.read_metadata(p).num_rows for p in store.path(ref).glob("*.parquet"))
        store.write_record(ref, COST, {"stage": stage.__name__, "desc": bound.arguments.get("desc"), "seconds": seconds,
                                       "rows": rows, "process_peak_rss_mb": peak_rss_mb(),
                                       "finished_at": datetime.now(UTC).isoformat()})
        return ref

    return run


prepare_data = task(measured(stages.prepare_data), name="prepare-data", task_run_name="prepare-data", retries=1, retry_condition_fn=transient, **COMMON)
prepare_base = task(measured(stages.prepare_base), name="prepare-base", task_run_name="prepare-base", **COMMON)
import_teacher = task(measured(stages.import_teacher), name="import-teacher", task_run_name="import-teacher", **COMMON)
prepare_student = task(measured(stages.prepare_student), name="prepare-student", task_run_name="prepare-student-{compression.kind}", **COMMON)
mask_student = task(measured(stages.mask_student), name="mask-student", task_run_name="mask-student", **COMMON)
quantize = task(measured(stages.quantize), name="quantize", task_run_name="quantize-{desc}", **COMMON)
train = task(measured(with_progress(stages.train)), name="train", task_run_name="train-{desc}", **COMMON)
prune_oneshot = task(measured(with_progress(stages.prune_oneshot)), name="prune-oneshot", task_run_name="prune-oneshot-{desc}", **COMMON)
predict = task(measured(stages.predict), name="predict", task_run_name="predict-{desc}", **COMMON)
difficulty = task(measured(stages.difficulty), name="difficulty", task_run_name="difficulty", **COMMON)
bias_model = task(measured(stages.bias_model), name="bias-model", task_run_name="bias-model-{kind}", **COMMON)
student_inputs = task(measured(stages.student_inputs), name="student-inputs", task_run_name="student-inputs-{method}", **COMMON)
query_model = task(measured(with_progress(stages.query_model)), name="query-model", task_run_name="{desc}", **COMMON)
evaluate = task(measured(stages.evaluate), name="evaluate", task_run_name="evaluate-{desc}", retries=1, retry_condition_fn=transient, **COMMON)
report = task(measured(stages.report), name="report", task_run_name="{desc}", **COMMON)
summarize = task(measured(stages.summarize), name="summarize", task_run_name="summarize", retries=1, retry_condition_fn=transient, **COMMON)
compare_models = task(measured(stages.compare_models), name="compare-models", task_run_name="compare-models", **COMMON)
measure_models = task(measured(stages.measure_models), name="measure-models", task_run_name="measure-{evaluation}", **COMMON)

TASK_OF: dict[Callable[..., Any], Task] = {
    stages.prepare_data: prepare_data,
    stages.prepare_base: prepare_base,
    stages.import_teacher: import_teacher,
    stages.prepare_student: prepare_student,
    stages.mask_student: mask_student,
    stages.quantize: quantize,
    stages.train: train,
    stages.prune_oneshot: prune_oneshot,
    stages.predict: predict,
    stages.difficulty: difficulty,
    stages.bias_model: bias_model,
    stages.student_inputs: student_inputs,
    stages.query_model: query_model,
    stages.evaluate: evaluate,
    stages.report: report,
    stages.summarize: summarize,
    stages.measure_models: measure_models,
    stages.compare_models: compare_models,
}


def bound_to_store(t: Task, records: RecordStorage) -> Task:
    """The task with its results persisted beside the artifacts they point to, so that a
    store folder is a complete, shareable cache: as JSON records that name artifacts by
    digest, read only after a check of their shape (tasks/result_records.py).

    Isolation stays READ_COMMITTED: Prefect's file locks carry no expiry, and a run killed
    while holding one would block every later run forever. Two identical runs started
    together may both compute a stage; the content-addressed store keeps one artifact
    (measure-inference excepted: each run that times the models keeps the timings it saw).
    """
    return t.with_options(result_storage=records)
