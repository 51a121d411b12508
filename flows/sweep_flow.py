"""A benchmark sweep: tasks x student sparsities x seeds, every RMC method in each run,
one flow run per combination (sharing the store, so shared stages are computed once),
collected into one results table."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rmc.flows.rmc_flow import RmcParameters, RunnerConfig, rmc_flow, table_rows
from rmc.tasks.result_records import flow_results
from rmc_core.config import Method, RunConfig, Sparsity, TaskName
from rmc_core.objectives.methods import compared_methods
from rmc_core.pipeline import seeded
from rmc_core.serve_policy import check_served
from rmc_core.store import Ref, Store


class SweepParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: RunConfig = Field(RunConfig(), title="Base run", description="every run's settings except those swept below")
    tasks: list[TaskName] = Field(default_factory=lambda: ["synthetic"], description="one run per task ...")
    methods: list[Method] = Field(default_factory=lambda: list(compared_methods()),
                                  description="... with a student per method (default: all but the controls) ...")
    student_sparsities: list[Sparsity] = Field(default_factory=lambda: [0.4], description="... per student sparsity ...")
    seeds: list[int] = Field(default_factory=lambda: [0], description="... per seed")
    store_root: str = Field("rmc-runs/store", description="artifact store shared by every run of the sweep; a relative "
                            f"path is under the serving process's folder ({Path.cwd()} here)")
    devices: list[str] | None = Field(None, description="e.g. ['cuda:0']; default: every visible GPU, else cpu")
    runner: RunnerConfig = Field(RunnerConfig(), title="Task runner", description="where the stages run")

    @model_validator(mode="after")
    def _every_run_valid(self) -> SweepParameters:
        self.runs()
        return self

    def runs(self) -> list[tuple[str, float, int, RunConfig]]:
        """Every combination as a validated RunConfig (bad combinations fail before any run)."""
        out = []
        for task, sparsity, seed in itertools.product(self.tasks, self.student_sparsities, self.seeds):
            data = self.base.model_dump()
            data.update(task=task, methods=self.methods)
            data["student"]["compression"]["sparsity"] = sparsity
            out.append((task, sparsity, seed, seeded(RunConfig.model_validate(data), seed)))
        return out


def sweep_run_name() -> str:
    """`sweep-synthetic-6methods-1runs` in the runs list: what the sweep covers."""
    params = SweepParameters.model_validate(flow_run.parameters["params"])
    return f"sweep-{'-'.join(params.tasks)}-{len(params.methods)}methods-{len(params.runs())}runs"


@flow(name="rmc-sweep", flow_run_name=sweep_run_name, **flow_results())
def sweep_flow(params: SweepParameters = SweepParameters()) -> Ref:
    """Run every combination as a child flow run and publish one table of all results."""
    logger = get_run_logger()
    runs = params.runs()
    for *_, cfg in runs:
        check_served(params.store_root, cfg, params.runner.address)
    logger.info("sweep of %d runs: tasks %s, sparsities %s, seeds %s", len(runs), params.tasks, params.student_sparsities, params.seeds)
    store = Store(params.store_root)
    frames = []
    for task, sparsity, seed, cfg in runs:
        summary = rmc_flow(RmcParameters(config=cfg, store_root=params.store_root, devices=params.devices,
                                         runner=params.runner))
        results = store.table(summary.report, "results")
        frames.append(results.assign(task=task, student_sparsity=sparsity, seed=seed))
    table = pd.concat(frames, ignore_index=True)
    create_table_artifact(key="rmc-sweep", table=table_rows(table), description="all runs of the sweep")
    return store.put_tables({"sweep": table})
