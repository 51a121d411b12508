"""Serve the RMC deployments: `python -m rmc.deployments.serve` (needs PREFECT_API_URL).

- `rmc/rmc`: the RMC flow, triggered from the UI (its parameters form is RmcParameters).
- `rmc-sweep/weekly-benchmark`: the benchmark sweep on a cron schedule (Saturdays 02:00 UTC).

`serve` runs flow runs in subprocesses of this process: no work pool or worker needed.
Whoever reaches the UI can start runs, so a served run stays inside the operator's
allow-lists (rmc_core/serve_policy.py): `--allow-root DIR` (repeatable; default
`./rmc-runs` and `../shared/data`), `--allow-cluster ADDRESS` (repeatable; default none)
and `--allow-hub` (default off).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from rmc.flows.rmc_flow import rmc_flow
from rmc.flows.sweep_flow import SweepParameters, sweep_flow
from rmc_core.serve_policy import ServePolicy

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


DEFAULT_ROOTS = (Path("rmc-runs"), Path("../shared/data"))


def policy_from(argv: list[str] | None = None) -> ServePolicy:
    parser = argparse.ArgumentParser(prog="python -m rmc.deployments.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--allow-root", type=Path, action="append", metavar="DIR",
                        help="a folder served runs may read and write (store, data, local models); repeatable")
    parser.add_argument("--allow-cluster", action="append", default=[], metavar="ADDRESS",
                        help="a Ray or Dask address served runs may connect to; repeatable")
    parser.add_argument("--allow-hub", action="store_true", help="let served runs download models and datasets from the hub")
    args = parser.parse_args(argv)
    roots = tuple(r.resolve() for r in (args.allow_root or DEFAULT_ROOTS))
    return ServePolicy(roots=roots, clusters=tuple(args.allow_cluster), hub=args.allow_hub)


def serve_with(policy: ServePolicy, *served: RunnerDeployment) -> None:
    """Serve, with every flow run (a subprocess inheriting this environment) held to `policy`."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    policy.to_env()
    print(f"rmc serve: runs may use folders {[str(r) for r in policy.roots]}, clusters {list(policy.clusters) or 'none'}, "
          f"the hub {'yes' if policy.hub else 'no'}", flush=True)
    serve(*served)


if __name__ == "__main__":
    serve_with(policy_from(), *deployments())
