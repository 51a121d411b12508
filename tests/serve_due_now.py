"""Serve the project's deployments with the sweep due every minute and sized for a test:
`python -m tests.serve_due_now STORE`. Used by the end-to-end UI tests; the deployments
themselves are the ones `python -m rmc.deployments.serve` serves."""

from __future__ import annotations

import sys

from prefect import serve

from rmc.deployments.serve import deployments
from rmc.flows.sweep_flow import SweepParameters
from tests.conftest import tiny_run_config

EVERY_MINUTE = "* * * * *"

if __name__ == "__main__":
    sweep = SweepParameters(base=tiny_run_config(), methods=["vanilla", "rmc"], store_root=sys.argv[1])
    serve(*deployments(EVERY_MINUTE, sweep))
