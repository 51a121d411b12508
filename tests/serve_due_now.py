"""Serve the project's deployments with the sweep due every minute and sized for a test:
`python -m tests.serve_due_now STORE ALLOWED_ROOT`. Used by the end-to-end UI tests; the
deployments and the policy flags are the ones `python -m rmc.deployments.serve` serves."""

from __future__ import annotations

import sys

from rmc.deployments.serve import deployments, policy_from, serve_with
from rmc.flows.sweep_flow import SweepParameters
from tests.conftest import tiny_run_config

EVERY_MINUTE = "* * * * *"

if __name__ == "__main__":
    sweep = SweepParameters(base=tiny_run_config(), methods=["vanilla", "rmc"], store_root=sys.argv[1])
    serve_with(policy_from(["--allow-root", sys.argv[2], "--allow-root", "../shared/data"]), *deployments(EVERY_MINUTE, sweep))
