"""The benchmark flow: every run of a profile as a child RMC flow run, then the paper's
tables and figures from their reports. Interrupted, it resumes from the store's cache."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from rmc.benchmarks import report as bench_report
from rmc.benchmarks.profiles import PROFILE_SETTINGS, ProfileName, bench_runs
from rmc.flows.rmc_flow import RmcParameters, rmc_flow
from rmc.tasks.result_records import flow_results
from rmc_core.costs import cost_table
from rmc_core.out_folder import check_out, written_whole
from rmc_core.store import Store


class BenchParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: ProfileName = "cpu-small"
    data_root: str = "../shared/data"
    store_root: str = "rmc-runs/store"
    out: str = Field("rmc-runs/bench", description="where tables, figures and results.md are written: a new or empty "
                     "folder, or one rmc wrote (replaced whole)")
    replace: bool = Field(False, description="replace `out` whole even if it holds files rmc did not write")
    devices: list[str] | None = None


@flow(name="rmc-bench", flow_run_name="bench-{params.profile}", **flow_results())
def bench_flow(params: BenchParameters = BenchParameters()) -> str:
    logger = get_run_logger()
    out = Path(params.out)
    check_out(out, Path(params.store_root), replace=params.replace)
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
                                               stats, store.table(summary.inference, "inference") if summary.inference else pd.DataFrame(), wall,
                                               len(summary.computed), len(summary.cached)))
        logger.info("%s/%s done in %.0f s (%d stages computed)", run.task, run.role, wall, len(summary.computed))
    with written_whole(out, "rmc bench") as folder:
        bench_report.write(finished, folder, PROFILE_SETTINGS[params.profile])
    create_markdown_artifact(key="rmc-bench", markdown=(out / "results.md").read_text(), description=f"benchmark {params.profile}")
    return str(out)
