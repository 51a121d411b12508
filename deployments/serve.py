"""Serve the RMC deployments: `python -m rmc.deployments.serve` (needs PREFECT_API_URL).

- `rmc/rmc`: the RMC flow, triggered from the UI (its parameters form is RmcParameters).
- `rmc-experiment/experiment`: an experiment (rmc_core/experiment.py), triggered from the UI.
- `rmc-experiment/weekly-benchmark`: the experiment `experiments/weekly.yaml` on a cron
  schedule (Saturdays 02:00 UTC; `RMC_SWEEP_CRON`; `--weekly FILE` names another file).

`serve` runs flow runs in subprocesses of this process: no work pool or worker needed.
Whoever reaches the UI can start runs, so a served run stays inside the operator's
allow-lists (rmc_core/serve_policy.py): `--allow-root DIR` (repeatable; default
`./rmc-runs` and `../shared/data`), `--allow-cluster ADDRESS` (repeatable; default none)
and `--allow-hub` (default off).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner

from rmc.flows.experiment_flow import ExperimentParameters, experiment_flow
from rmc.flows.rmc_flow import RmcParameters, rmc_flow
from rmc_core.experiment import read_experiment
from rmc_core.serve_policy import ServePolicy

SWEEP_CRON = os.environ.get("RMC_SWEEP_CRON", "0 2 * * 6")
WEEKLY = Path("experiments/weekly.yaml")


def default_store(policy: ServePolicy) -> str:
    """The store a served form offers: inside the first folder the operator allowed, so that
    a run submitted with the defaults is one the policy accepts."""
    return str(policy.roots[0] / "store")


def deployments(weekly: ExperimentParameters, policy: ServePolicy, cron: str = SWEEP_CRON) -> list[RunnerDeployment]:
    """The served deployments, their forms' defaults inside `policy` (the store under its
    first folder; the experiment form starts from the weekly experiment); the weekly
    experiment and its schedule are arguments so that a test (or a site) can serve one that
    is due now and small."""
    store = default_store(policy)
    return [
        rmc_flow.to_deployment(name="rmc", tags=["rmc"], description="RMC and baselines for one configuration.",
                               parameters={"params": RmcParameters(store_root=store).model_dump(mode="json")}),
        experiment_flow.to_deployment(name="experiment", tags=["rmc", "experiment"],
                                      parameters={"params": weekly.model_copy(update={"store_root": store}).model_dump(
                                          mode="json")},
                                      description="A grid of runs over seeds, compared arm against arm "
                                                  "(the contents of an experiment file, experiments/*.yaml)."),
        experiment_flow.to_deployment(
            name="weekly-benchmark",
            cron=cron,
            tags=["rmc", "benchmark"],
            parameters={"params": weekly.model_dump(mode="json")},
            description=f"The experiment {weekly.experiment.name!r} on a schedule: {weekly.experiment.description}",
        ),
    ]


DEFAULT_ROOTS = (Path("rmc-runs"), Path("../shared/data"))


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rmc.deployments.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--allow-root", type=Path, action="append", metavar="DIR",
                        help="a folder served runs may read and write (store, data, local models); repeatable")
    parser.add_argument("--allow-cluster", action="append", default=[], metavar="ADDRESS",
                        help="a Ray or Dask address served runs may connect to; repeatable")
    parser.add_argument("--allow-hub", action="store_true", help="let served runs download models and datasets from the hub")
    parser.add_argument("--weekly", type=Path, default=WEEKLY, help="the experiment file served on the weekly schedule")
    return parser.parse_args(argv)


def refused_defaults(policy: ServePolicy, served: list[RunnerDeployment]) -> list[str]:
    """What `policy` would refuse of each deployment's own defaults (its parameters, every
    run of an experiment), one line each: a deployment or schedule whose defaults are
    refused would fail every run started from its form or its schedule."""
    form = {rmc_flow.name: RmcParameters, experiment_flow.name: ExperimentParameters}
    found = []
    for d in served:
        if (params := d.parameters.get("params")) is not None:
            found += [f"{d.flow_name}/{d.name}: {v}" for r in form[d.flow_name].model_validate(params).reaches()
                      for v in policy.violations(r.store_root, r.config, r.address)]
    return list(dict.fromkeys(found))


def policy_from(argv: list[str] | None = None) -> ServePolicy:
    args = arguments(argv)
    roots = tuple(r.resolve() for r in (args.allow_root or DEFAULT_ROOTS))
    return ServePolicy(roots=roots, clusters=tuple(args.allow_cluster), hub=args.allow_hub)


# How long flow runs get to stop on SIGTERM before they are killed.
STOP_GRACE_SECONDS = 3.0


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (flow runs are started in sessions of
    their own, so a signal to the serving process's group does not reach them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


class PromptRunner(Runner):
    """Prefect's runner, stopping in seconds on SIGTERM. Prefect's own shutdown asks the API
    to cancel each flow run and pause each schedule, and waits on the runs: with the server
    gone or the runs busy training it was still alive 10 s after a SIGTERM to its group.
    Here the flow runs are told to stop (their training loops stop at the next step), given
    a few seconds, then killed, and the process exits 143. A run's finished stages stay in
    the store; the schedules stay as they were."""

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        runs = descendants(os.getpid()) if Path("/proc").is_dir() else []
        _signal_all(runs, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in runs):
            time.sleep(0.1)
        _signal_all(descendants(os.getpid()) if Path("/proc").is_dir() else [], signal.SIGKILL)
        print("rmc serve: stopped by SIGTERM", flush=True)
        os._exit(128 + signal.SIGTERM)


def serve_with(policy: ServePolicy, *served: RunnerDeployment) -> None:
    """Serve, with every flow run (a subprocess inheriting this environment) held to `policy`;
    refused (exit 2) when the policy would refuse a deployment's own defaults."""
    if refused := refused_defaults(policy, list(served)):
        print("rmc serve: not started: these defaults would be refused by the policy, so every run of them would fail:\n  "
              + "\n  ".join(refused) + "\nallow their folders with --allow-root, or serve another --weekly file", flush=True)
        raise SystemExit(2)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    policy.to_env()
    print(f"rmc serve: runs may use folders {[str(r) for r in policy.roots]}, clusters {list(policy.clusters) or 'none'}, "
          f"the hub {'yes' if policy.hub else 'no'}", flush=True)
    runner = PromptRunner()
    for deployment in served:
        runner.add_deployment(deployment)
    print(f"rmc serve: serving {', '.join(f'{d.flow_name}/{d.name}' for d in served)}; stop with Ctrl-C or SIGTERM", flush=True)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        print("rmc serve: stopped", flush=True)


def weekly_from(policy: ServePolicy, argv: list[str] | None = None) -> ExperimentParameters:
    """The weekly experiment's parameters: its file (checked now: a bad file stops the serve
    instead of failing every Saturday), the store under the first allowed folder, the
    default runner."""
    return ExperimentParameters(experiment=read_experiment(arguments(argv).weekly), store_root=default_store(policy))


if __name__ == "__main__":
    served_policy = policy_from()
    serve_with(served_policy, *deployments(weekly_from(served_policy), served_policy))
