"""The experiment flow: every run of a declared experiment as a child flow run of the RMC
flow (one store, so shared stages are computed once and a rerun recomputes only what
changed), then the declared comparisons as cached tasks, then one report.

`rmc experiment FILE` starts it; `python -m rmc.deployments.serve` serves it (the weekly
benchmark is one experiment file on a schedule); its form is `ExperimentParameters`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.states import State
from pydantic import BaseModel, Field

from rmc.flows.rmc_flow import RmcParameters, RunnerConfig, distinct, policy_refusal, rmc_flow, table_rows
from rmc.flows.run_form import Reach
from rmc.tasks.result_records import flow_results, record_storage
from rmc.tasks.stages import TASK_OF, bound_to_store
from rmc_core.experiment import ArmRun, ExperimentConfig
from rmc_core.experiment_report import headline_metric, markdown, picture
from rmc_core.experiment_run import ArmOutcome, run_experiment
from rmc_core.schema import Form
from rmc_core.store import Ref, Store


class ExperimentParameters(Form):
    """Everything an experiment run takes; the Prefect UI renders it as a form."""

    experiment: ExperimentConfig = Field(title="Experiment", description="the runs, seeds and comparisons "
                                         "(an experiment file's contents)")
    store_root: str = Field("rmc-runs/store", description="artifact store shared by every run of the experiment; a "
                            f"relative path is under the serving process's folder ({Path.cwd()} here)")
    devices: list[str] = Field(default_factory=list, description="e.g. ['cuda:0']; empty: every visible GPU, else cpu")
    runner: RunnerConfig = Field(RunnerConfig(), title="Task runner", description="where the stages run")

    def reaches(self) -> list[Reach]:
        """What a served run of this experiment reaches, run by run, for the serve policy."""
        return [Reach(r.label, self.store_root, r.config, self.runner.address) for r in self.experiment.runs()]


class ExperimentSummary(BaseModel):
    report: Ref = Field(description="the report's tables (by_seed, models, comparisons, premise, ...)")
    metrics: list[str]
    runs: dict[str, Ref] = Field(description="each run's summary report, by run label")


def experiment_run_name() -> str:
    """`synthetic-controls-6runs-seeds0-1-2-1207-123308-4f3a` in the runs list: what the experiment covers, and when."""
    exp = ExperimentParameters.model_validate(flow_run.parameters["params"]).experiment
    return distinct(f"{exp.name}-{len(exp.runs())}runs-seeds{'-'.join(map(str, exp.seeds))}")


def publish(exp: ExperimentConfig, tables: dict[str, Any], metrics: list[str], store: Store, report: Ref) -> None:
    """The experiment's page: its comparisons on the headline metric, the report and its picture."""
    headline = headline_metric(exp, metrics)
    compared = tables["comparisons"]
    shown = compared.loc[compared["metric"] == headline, ["a_run", "a", "b_run", "b", "difference", "low", "high",
                                                          "interval", "n_seeds", "resolved"]]
    create_table_artifact(key="rmc-experiment-comparisons", table=table_rows(shown),
                          description=f"{exp.name}: every comparison on {headline} (95 % intervals)")
    image = base64.b64encode(picture(exp, tables, metrics)).decode()
    text = markdown(exp, tables, metrics, f"rmc experiment (served run; tables in {store.path(report)})")
    create_markdown_artifact(key="rmc-experiment", markdown=f"{text}\n![comparisons](data:image/png;base64,{image})",
                             description=f"experiment {exp.name}")


@flow(name="rmc-experiment", flow_run_name=experiment_run_name, **flow_results())
def experiment_flow(params: ExperimentParameters) -> ExperimentSummary | State:
    """Every run of the experiment (child flow runs of `rmc`), the declared comparisons,
    and one report; a served run is first checked against the serving process's policy (a
    refusal: Failed, with the policy's sentence as the state message)."""
    logger = get_run_logger()
    exp = params.experiment
    runs = exp.runs()
    if (refused := policy_refusal(params.reaches())) is not None:
        return refused
    root = Path(params.store_root).resolve()
    store = Store(root)
    records = record_storage(root)
    logger.info("experiment %s: %d runs (%s), seeds %s", exp.name, len(runs), ", ".join(r.label for r in runs), exp.seeds)
    reports: dict[str, Ref] = {}

    def run_arm(arm: ArmRun) -> ArmOutcome:
        child = rmc_flow.with_options(flow_run_name=lambda: distinct(f"{exp.name}-{arm.label}"))
        summary = child(RmcParameters(config=arm.config, store_root=params.store_root, devices=params.devices,
                                      runner=params.runner))
        reports[arm.label] = summary.report
        return ArmOutcome(summary.report, [dict(m) for m in summary.models], summary.data)

    def call(stage: Any, *args: Any, **kwargs: Any) -> Any:
        return bound_to_store(TASK_OF[stage], records).submit(*args, **kwargs)

    tables, metrics = run_experiment(exp, store, run_arm, call, resolve=lambda future: future.result())
    report = store.put_tables(tables, meta={"experiment": exp.name, "seeds": list(exp.seeds)})
    publish(exp, tables, metrics, store, report)
    return ExperimentSummary(report=report, metrics=metrics, runs=reports)
