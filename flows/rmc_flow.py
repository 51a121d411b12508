"""The RMC flow: the rmc_core DAG with every stage a cached Prefect task.

    prepare-data -> prepare-base -> train-teacher -> predict-teacher ------------------+
                                 \\-> train-subnet-{20..85} (concurrent) -> predict --+-> difficulty
          -> student-inputs-{method} -> train-{student} -> predict -> evaluate-{evaluation} -> report
          -> summarize (across seeds) -> measure-inference (the models themselves, alone)

The DAG itself is `rmc_core.pipeline.run`; this flow hands it a `call` hook that submits
each stage as its task, so orchestration adds caching, concurrency, devices, logs and
artifacts without a second copy of the wiring.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import Task, flow, get_client, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from rmc.flows.run_form import Reach, RmcParameters, RunnerConfig
from rmc.tasks.result_records import flow_results, record_storage
from rmc.tasks.stages import TASK_OF, best_effort_progress, bound_to_store
from rmc_core import pipeline
from rmc_core.devices import available_devices, default_concurrency, default_devices
from rmc_core.evaluation.registry import documents
from rmc_core.pipeline import ModelRecord
from rmc_core.report import inference_lines, legend, markdown_report, summary_tables
from rmc_core.report_plot import report_png
from rmc_core.serve_policy import REFUSED, PolicyViolation, check_served
from rmc_core.store import Ref, Store
from rmc_core.training import stopping

CONCURRENCY_ENV = "RMC_CONCURRENCY"
# Stages of this process's runs that finished (computed or cached), in order: what an
# interrupted `rmc run` reports as kept.
FINISHED: list[str] = []
# What the process that started the flow does on a termination signal, at once (the CLI
# registers its exit here). A flow run replaces the SIGTERM handler with Prefect's, which
# raises TerminationSignal and lets the engine report the crash first; with the temporary
# server killed by the same signal (sent to the process group, as `timeout` and systemd
# do), that report retried the dead server for over a minute. Empty: Prefect's handling.
ON_TERMINATION: list[Callable[[int], None]] = []


class RefusalWithoutTraceback(logging.Filter):
    """A served run the policy refuses ends Failed with the policy's sentence as its state
    message; Prefect's engine then logs that same failure again, with a traceback, on the
    run's page. That one record is dropped; every other failure keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or REFUSED not in str(error)


logging.getLogger("prefect.flow_runs").addFilter(RefusalWithoutTraceback())


def concurrency_setting() -> int:
    """Tasks that may run at once: $RMC_CONCURRENCY, else one per GPU, else what the CPU
    cores hold without oversubscription."""
    value = os.environ.get(CONCURRENCY_ENV)
    return int(value) if value else default_concurrency(available_devices())


EXTRA = {"ray": ("prefect_ray", "pip install -e '.[ray]'"), "dask": ("prefect_dask", "pip install -e '.[dask]'")}


def task_runner(runner: RunnerConfig, api_url: str) -> TaskRunner:
    """The Prefect task runner for `runner`. Workers started here inherit this process's
    environment; Ray workers of an existing cluster get the API URL through the job's
    runtime environment, so their task runs report to this run's server."""
    try:
        if runner.kind == "ray":
            from prefect_ray import RayTaskRunner

            init = {"runtime_env": {"env_vars": {"PREFECT_API_URL": api_url}}} if runner.address else {"include_dashboard": False}
            return RayTaskRunner(address=runner.address, init_kwargs=init)
        if runner.kind == "dask":
            from prefect_dask import DaskTaskRunner

            if runner.address:
                return DaskTaskRunner(address=runner.address)
            return DaskTaskRunner(cluster_kwargs={"n_workers": concurrency_setting(), "threads_per_worker": 1,
                                                  "processes": True, "dashboard_address": None})
    except ImportError as err:
        module, install = EXTRA[runner.kind]
        raise RuntimeError(f"runner {runner.kind!r} needs {module}: {install}") from err
    return ThreadPoolTaskRunner(max_workers=concurrency_setting())


@contextlib.contextmanager
def placed(runner: RunnerConfig, device: str) -> Iterator[str]:
    """Submit a stage so that the cluster gives it what `device` asks for, and yield the
    device name it uses on its worker: one GPU per GPU stage (Ray `num_gpus=1`; Dask the
    `GPU` resource, one worker per GPU), seen there as `cuda:0`."""
    gpu = device.startswith("cuda")
    if runner.kind == "ray":
        from prefect_ray.context import remote_options

        with remote_options(**({"num_gpus": 1} if gpu else {"num_cpus": runner.cpus_per_task})):
            yield "cuda:0" if gpu else device
    elif runner.kind == "dask" and gpu:
        import dask

        with dask.annotate(resources={"GPU": 1}):
            yield "cuda:0"
    else:
        yield device


class RunSummary(BaseModel):
    report: Ref
    measured: dict[str, Ref] = Field(description="each evaluation of the models themselves (size and speed: `inference`)")
    artifacts: dict[str, Ref | None] = Field(description="each stage's artifact, by task-run name")
    models: list[ModelRecord] = Field(description="every trained model of every seed: what it is, its weights and predictions")
    computed: list[str]
    cached: list[str]
    data: Ref | None = Field(None, description="the data artifact every model was scored on")

    @property
    def inference(self) -> Ref | None:
        """The models' size and speed (rmc_core/evaluation/inference_cost.py), when measured."""
        return self.measured.get("inference")


def _record_finished(future: PrefectFuture[Any], name: str) -> None:
    """Done callback: `wait` takes the state from the finished future itself (the API's
    copy of a task's state can lag behind it)."""
    future.wait(0)
    if future.state.is_completed():
        FINISHED.append(name)


def _run_name(t: Task, stage: Any, args: tuple, kwargs: dict) -> str:
    """The task-run name Prefect renders from the task's template, without an API round trip."""
    bound = inspect.signature(stage).bind(*args, **kwargs)
    bound.apply_defaults()
    return t.task_run_name.format(**bound.arguments)


def table_rows(frame: Any, digits: int = 4) -> list[dict[str, Any]]:
    """Table-artifact rows, rounded so that the UI's table fits and reads; JSON has no NaN,
    so undefined metrics become null."""
    return [{k: (None if math.isnan(v) else round(v, digits)) if isinstance(v, float) else v for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def distinct(readable: str) -> str:
    """A run's name: what it computes, then when it started (UTC) and the start of its id,
    so that two runs of one config started in the same second still differ in the runs list."""
    return f"{readable}-{datetime.now(UTC):%m%d-%H%M%S}-{str(flow_run.id or '')[:4]}".rstrip("-")


def run_name() -> str:
    """`mnli-vanilla-rmc-seeds0-1-1207-123308-4f3a` in the runs list, instead of a random name."""
    params = flow_run.parameters["params"]
    cfg = RmcParameters.model_validate(params).config
    return distinct(f"{cfg.task_name}-{'-'.join(cfg.methods)}-seeds{'-'.join(map(str, cfg.seeds))}")


def publish(store: Store, report: Ref, inference: Ref | None, task: str) -> None:
    """The run page's artifacts: the headline table (it fits the pane) with its legend, the
    detail table, the picture (embedded: the UI shows only images it can fetch, and a
    served run's files are on the serving machine), and the whole summary."""
    tables = store.tables(report)
    notes = "\n".join(f"- {line}" for line in legend(tables))
    artifacts = (("rmc-results", "headline columns (more in rmc-results-detail)"), ("rmc-results-detail", "the other columns"))
    for (key, what), table in zip(artifacts, summary_tables(tables, digits=None)):
        create_table_artifact(key=key, table=table_rows(table), description=f"RMC results on {task}: {what}.\n\n{notes}")
    picture = base64.b64encode(report_png(tables, task)).decode()
    create_markdown_artifact(key="rmc-report-plot", markdown=f"![ID and OOD accuracy per model](data:image/png;base64,{picture})",
                             description=f"ID and OOD accuracy per model on {task} (`rmc run` writes it as report.png)")
    speed = ["## Size and inference speed", "", *inference_lines(store.table(inference, "inference")), ""] if inference else []
    markdown = "\n".join([markdown_report(tables, task), "", *speed, f"All tables: `{store.path(report)}` (parquet)."])
    create_markdown_artifact(key="rmc-summary", markdown=markdown, description=f"RMC summary on {task}")
    for name, text in documents(tables).items():
        create_markdown_artifact(key=f"rmc-{name.removesuffix('.md').replace('_', '-')}", markdown=text,
                                 description=f"{name} (`rmc run` writes it to --out)")


@flow(name="rmc", flow_run_name=run_name, task_runner=ThreadPoolTaskRunner(max_workers=concurrency_setting()), log_prints=False,
      **flow_results())
def rmc_flow(params: RmcParameters = RmcParameters()) -> RunSummary | State:
    """Teacher, five pruned sub-networks, difficulty, students for RMC and each baseline,
    evaluation; stages whose inputs and code are unchanged come from the cache.

    With a Ray or Dask runner the DAG runs as a child flow on that runner: a flow's task
    runner is fixed before it starts, and the runner is one of the run's parameters.
    A served run is first checked against the serving process's policy: a refusal ends it
    Failed with the policy's sentence as its state message, not a traceback.
    """
    if (refused := policy_refusal(params.reaches())) is not None:
        return refused
    if params.runner.kind == "local":
        return run_dag(params)
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    on_cluster = flow(run_dag, name=f"rmc-on-{params.runner.kind}", task_runner=task_runner(params.runner, api_url),
                      log_prints=False, **flow_results())
    with api_in_environment(api_url):
        return on_cluster(params)


def policy_refusal(reaches: list[Reach]) -> State | None:
    """In a served flow run, the Failed state (the policy's sentence as its message) that
    ends a run whose parameters reach outside the serve policy; None where it may run."""
    try:
        for reach in reaches:
            check_served(reach.store_root, reach.config, reach.address)
    except PolicyViolation as err:
        return Failed(message=f"run {reach.label}: {err}" if reach.label else str(err))
    return None


@contextlib.contextmanager
def api_in_environment(api_url: str) -> Iterator[None]:
    """PREFECT_API_URL set while a cluster started here spawns its workers (they inherit
    it, also when this run's server is the temporary one), and restored afterwards."""
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = previous or api_url
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PREFECT_API_URL"]


def run_dag(params: RmcParameters) -> RunSummary:
    """The DAG on the current flow's task runner: submit every stage, wait, report."""
    logger = get_run_logger()
    stopping.STOP.clear()  # a stop requested of an earlier run in this process is not one of this run
    root = Path(params.store_root).resolve()
    store = Store(root)
    here = params.runner.kind == "local"
    devices = params.devices or default_devices(here)
    logger.info("task %s, methods %s, devices %s, store %s", params.config.task_name, list(params.config.methods), devices, root)

    submitted: list[PrefectFuture[Any]] = []
    names: list[str] = []
    seen: Counter[str] = Counter()

    records = record_storage(root)

    def call(stage: Any, *args: Any, **kwargs: Any) -> PrefectFuture[Any]:
        t = bound_to_store(TASK_OF[stage], records)
        name = _run_name(t, stage, args, kwargs)
        seen[name] += 1
        name = name if seen[name] == 1 else f"{name}#{seen[name]}"
        with placed(params.runner, kwargs.get("device", "cpu")) as device:
            future = t.submit(*args, **(kwargs | {"device": device} if "device" in kwargs else kwargs))
        future.add_done_callback(lambda f: _record_finished(f, name))
        submitted.append(future)
        names.append(name)
        return future

    try:
        outputs = pipeline.run(params.config, store, devices, call=call, devices_here=here)
        # Cached stages finish in milliseconds, and each update is a request to the server:
        # the same throttle as a training's progress (a cached rerun sent 25 in 3 s).
        progress = best_effort_progress(create_progress_artifact(0.0, key="stages", description="stages of this run finished"))
        for done, _ in enumerate(as_completed(submitted), start=1):
            progress(done / len(submitted))
    except (KeyboardInterrupt, TerminationSignal) as err:
        # SIGTERM (Prefect's TerminationSignal) or Ctrl-C while stages run: the task runner
        # waits for running tasks before the flow can end, so make them stop at their next step.
        stopping.STOP.set()
        for handle in ON_TERMINATION if isinstance(err, TerminationSignal) else ():
            handle(err.signal)
        raise
    failed = [f for f in submitted if f.state.is_failed()]
    if failed:
        failed[0].result()  # re-raises the first failing stage's own exception
    report, measured = outputs.report.result(), {name: f.result() for name, f in outputs.measured.items()}
    cached = [n for n, f in zip(names, submitted) if f.state.name == "Cached"]
    computed = [n for n, f in zip(names, submitted) if f.state.name != "Cached"]
    logger.info("computed %d stages, reused %d from cache: %s", len(computed), len(cached), computed)
    publish(store, report, measured.get("inference"), params.config.task_name)
    artifacts = {n: f.result() for n, f in zip(names, submitted)}
    models = [ModelRecord(**{**m, "model": m["model"].result(), "predictions": m["predictions"].result()}) for m in outputs.models]
    return RunSummary(report=report, measured=measured, artifacts=artifacts, models=models, computed=computed, cached=cached,
                      data=outputs.data.result())
