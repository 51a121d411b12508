"""Serve the project's deployments with the weekly experiment due every minute and sized for a test:
`python -m tests.serve_due_now STORE ALLOWED_ROOT`. Used by the end-to-end UI tests; the
deployments and the policy flags are the ones `python -m rmc.deployments.serve` serves."""

from __future__ import annotations

import sys

from rmc.deployments.serve import deployments, policy_from, serve_with
from rmc.flows.experiment_flow import ExperimentParameters
from rmc_core.experiment import ExperimentConfig
from tests.conftest import tiny_run_config

EVERY_MINUTE = "* * * * *"

if __name__ == "__main__":
    base = tiny_run_config().model_dump(mode="json", exclude={"seeds"})
    weekly = ExperimentParameters(experiment=ExperimentConfig(name="weekly", base=base), store_root=sys.argv[1])
    policy = policy_from(["--allow-root", sys.argv[2], "--allow-root", "../shared/data"])
    serve_with(policy, *deployments(weekly, policy, EVERY_MINUTE))
