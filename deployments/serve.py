"""Serve the RMC deployments: `python -m deployments.serve` (needs PREFECT_API_URL).

- `rmc/rmc`: the RMC flow, triggered from the UI (its parameters form is RmcParameters).
- `rmc-sweep/weekly-benchmark`: the benchmark sweep on a cron schedule (Saturdays 02:00 UTC).

`serve` runs flow runs in subprocesses of this process: no work pool or worker needed.
"""

from __future__ import annotations

import os

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.rmc_flow import rmc_flow
from flows.sweep_flow import SweepParameters, sweep_flow

SWEEP_CRON = os.environ.get("RMC_SWEEP_CRON", "0 2 * * 6")


def deployments() -> list[RunnerDeployment]:
    return [
        rmc_flow.to_deployment(name="rmc", tags=["rmc"], description="RMC and baselines for one configuration."),
        sweep_flow.to_deployment(
            name="weekly-benchmark",
            cron=SWEEP_CRON,
            tags=["rmc", "benchmark"],
            parameters={"params": SweepParameters(methods=["vanilla", "distil", "smooth", "focal", "jtt", "rmc"]).model_dump(mode="json")},
            description="Methods x sparsities x tasks x seeds, one results table.",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    serve(*deployments())
