"""The benchmark flow: every run of a profile as a child RMC flow run, then the paper's
tables and figures from their reports. Interrupted, it resumes from the store's cache."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from flows.rmc_flow import RmcParameters, rmc_flow
from rmc_core import bench_report
from rmc_core.data.registry import TASKS, load_task_data
from rmc_core.models import check_labels
from rmc_core.profiles import ProfileName, bench_runs
from rmc_core.store import Store
from rmc_core.costs import cost_table

PROFILE_SETTINGS = {
    "cpu-small": "packaged all-MiniLM-L6-v2 teacher, 3,000 stratified training rows per task, teacher 2 epochs, "
                 "students 1 epoch, lr 5e-5, batch 32, max length 128, seed 0; MNLI dev-matched 9,815 rows, "
                 "HANS stratified 6,000 rows; QQP held-out 1,000 rows, PAWS-qqp 677 and PAWS-wiki 8,000; "
                 "difficulty from the teacher pruned one-shot per matrix at 0.1-0.5 with 0.25 epoch recovery; "
                 "IMP sub-networks (0.2-0.85) vs one-shot compared on an 800-row MNLI training subset "
                 "(scored on a 3,000-row stratified dev sample).",
    "paper": "bert-base-uncased, full MNLI/FEVER/QQP from the hub, 5 epochs, lr 2e-5, 3 seeds, IMP sub-networks at "
             "0.2-0.85, students at 40 % sparsity and MiniLM-L6.",
    "tiny": "test profile: a tiny random BERT on a few hundred rows of the shared data.",
}


class BenchParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: ProfileName = "cpu-small"
    data_root: str = "../shared/data"
    store_root: str = "rmc-runs/store"
    out: str = Field("rmc-runs/bench", description="where tables, figures and results.md are written")
    devices: list[str] | None = None


def check(params: BenchParameters) -> list[tuple[str, str]]:
    """Validate every input of a profile without training: each distinct model source and
    each distinct task dataset once. Returns (input, problem) for each that fails."""
    runs = bench_runs(params.profile, Path(params.data_root))
    problems = []
    models = {(s.source, run.task): s for run in runs for s in (run.config.teacher, run.config.student.model) if s}
    for (source, task), spec in sorted(models.items()):
        try:
            check_labels(spec, TASKS[task].labels, "model")
        except Exception as err:  # noqa: BLE001 - every failure is reported, none hidden
            problems.append((f"model {source}", f"{type(err).__name__}: {str(err).splitlines()[0]}"))
    datasets = {(run.task, run.config.data.model_dump_json()): run.config.data for run in runs}
    for (task, _), data in datasets.items():
        try:
            load_task_data(task, data)
        except Exception as err:  # noqa: BLE001
            problems.append((f"data {task} ({data.source})", f"{type(err).__name__}: {str(err).splitlines()[0]}"))
    return sorted(set(problems))


@flow(name="rmc-bench", flow_run_name="bench-{params.profile}")
def bench_flow(params: BenchParameters = BenchParameters()) -> str:
    logger = get_run_logger()
    runs = bench_runs(params.profile, Path(params.data_root))
    store = Store(params.store_root)
    logger.info("benchmark %s: %d runs", params.profile, len(runs))
    finished = []
    for run in runs:
        start = time.perf_counter()
        summary = rmc_flow(RmcParameters(config=run.config, store_root=params.store_root, devices=params.devices))
        wall = time.perf_counter() - start
        stats = cost_table(summary.artifacts, summary.cached, store)
        variance = store.table(summary.artifacts["difficulty"], "train")["variance"].to_numpy()
        finished.append(bench_report.RunTables(run.task, run.role, run.seed, store.tables(summary.report), variance,
                                               stats, wall, len(summary.computed), len(summary.cached)))
        logger.info("%s/%s done in %.0f s (%d stages computed)", run.task, run.role, wall, len(summary.computed))
    out = Path(params.out)
    bench_report.write(finished, out, PROFILE_SETTINGS[params.profile])
    create_markdown_artifact(key="rmc-bench", markdown=(out / "results.md").read_text(), description=f"benchmark {params.profile}")
    return str(out)
