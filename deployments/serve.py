"""Serve the RMC deployments: `python -m rmc.deployments.serve` (needs PREFECT_API_URL).

- `rmc/rmc`: the RMC flow, triggered from the UI (its parameters form is RmcParameters).
- `rmc-sweep/weekly-benchmark`: the benchmark sweep on a cron schedule (Saturdays 02:00 UTC).

`serve` runs flow runs in subprocesses of this process: no work pool or worker needed.
"""

from __future__ import annotations

import os

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from rmc.flows.rmc_flow import rmc_flow
from rmc.flows.sweep_flow import SweepParameters, sweep_flow

SWEEP_CRON = os.environ.get("RMC_SWEEP_CRON", "0 2 * * 6")
WEEKLY_SWEEP = SweepParameters()  # every method, on the synthetic task


def deployments(sweep_cron: str = SWEEP_CRON, sweep: SweepParameters = WEEKLY_SWEEP) -> list[RunnerDeployment]:
    """The served deployments; the sweep's schedule and parameters are arguments so that a
    test (or a site) can serve a sweep that is due now and small."""
    return [
        rmc_flow.to_deployment(name="rmc", tags=["rmc"], description="RMC and baselines for one configuration."),
        sweep_flow.to_deployment(
            name="weekly-benchmark",
            cron=sweep_cron,
            tags=["rmc", "benchmark"],
            parameters={"params": sweep.model_dump(mode="json")},
            description="Methods x sparsities x tasks x seeds, one results table.",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    serve(*deployments())
