"""The DAG on a Ray or a Dask cluster: one Prefect server sees every task, the store is
the shared cache, and GPU stages ask the cluster for one GPU each."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmc.flows.rmc_flow import RmcParameters, RunnerConfig, placed, rmc_flow, task_runner
from rmc_core.config import SubnetworkConfig
from tests.conftest import FAST, free_port, tiny_run_config

SMALL = {"methods": ("rmc",), "subnetworks": SubnetworkConfig(sparsities=(0.2, 0.5), train=FAST)}


def test_gpu_stages_ask_for_one_gpu_and_see_it_as_cuda_0():
    pytest.importorskip("prefect_ray")
    pytest.importorskip("dask")
    from prefect_ray.context import RemoteOptionsContext

    ray = RunnerConfig(kind="ray", cpus_per_task=2)
    with placed(ray, "cuda:3") as device:
        assert device == "cuda:0" and RemoteOptionsContext.get().current_remote_options == {"num_gpus": 1}
    with placed(ray, "cpu") as device:
        assert device == "cpu" and RemoteOptionsContext.get().current_remote_options == {"num_cpus": 2}
    import dask

    with placed(RunnerConfig(kind="dask"), "cuda:1") as device:
        assert device == "cuda:0" and dask.get_annotations() == {"resources": {"GPU": 1}}
    with placed(RunnerConfig(), "cuda:1") as device:
        assert device == "cuda:1"


def test_a_missing_extra_is_named_with_its_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "prefect_ray", None)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[ray\]'"):
        task_runner(RunnerConfig(kind="ray"), "http://127.0.0.1:4200/api")


@contextlib.contextmanager
def ray_cluster(token: str) -> Iterator[str]:
    """A Ray cluster started apart from this process (`ray start --head`), as users run
    one; its workers do not inherit this process's environment. Yields its GCS address,
    which the flow connects to as an existing cluster (prefect-ray's "auto" would start a
    local instance instead: the cluster's temporary folder is not the default one). Socket
    paths must stay short, hence a temporary folder right under /tmp. One CPU, and idle
    workers kept: stages run one at a time in reused workers, instead of each new worker
    importing torch (~10 s here). Token authentication on, with `token`."""
    ray = Path(sys.executable).with_name("ray")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "RAY_idle_worker_killing_time_threshold_ms": "600000", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rmc-ray-", dir="/tmp") as temp:
        started = subprocess.run([str(ray), "start", "--head", "--port", str(port), "--num-cpus", "1",
                                  "--include-dashboard", "false", "--temp-dir", temp],
                                 env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr[-2000:]
        try:
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_each_runner_is_built_for_where_its_workers_start():
    """Workers started here inherit this process's environment (and a local Ray needs no
    dashboard); an existing Ray cluster's workers get the API URL from the job. The runs
    below use clusters given by address, the way users run them; the local ones differ only
    in these arguments."""
    pytest.importorskip("prefect_ray")
    pytest.importorskip("prefect_dask")
    url = "http://127.0.0.1:4200/api"
    local_ray = task_runner(RunnerConfig(kind="ray"), url)
    assert local_ray.address is None and local_ray.init_kwargs["include_dashboard"] is False
    existing_ray = task_runner(RunnerConfig(kind="ray", address="ray://head:10001"), url)
    assert existing_ray.address == "ray://head:10001"
    assert existing_ray.init_kwargs["runtime_env"] == {"env_vars": {"PREFECT_API_URL": url}}
    local_dask = task_runner(RunnerConfig(kind="dask"), url)
    assert local_dask.address is None and local_dask.cluster_kwargs["processes"] is True
    assert task_runner(RunnerConfig(kind="dask", address="tcp://scheduler:8786"), url).address == "tcp://scheduler:8786"


@pytest.mark.slow
def test_stages_computed_on_one_cluster_are_cache_hits_on_another(prefect_api, tmp_path, monkeypatch):
    """An existing Ray cluster given by address computes every stage; a Dask scheduler given
    by address then finds every stage in the shared store, and both clusters' task runs
    report to the one server. The Ray cluster requires a token, as docs/orchestration.md
    sets one up: the submitting process gives RAY_AUTH_MODE=token and the same token
    (a fresh machine has none in ~/.ray, which once made `ray start` fail here)."""
    token = secrets.token_hex(32)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    pytest.importorskip("prefect_ray")
    pytest.importorskip("prefect_dask")
    from distributed import LocalCluster
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId

    cfg = tiny_run_config(**SMALL)
    store = str(tmp_path / "store")
    with ray_cluster(token) as address:
        on_ray = rmc_flow(RmcParameters(config=cfg, store_root=store, runner=RunnerConfig(kind="ray", address=address)))
    assert {"train-teacher", "train-subnet-20", "train-subnet-50", "train-imp40-rmc", "evaluate-accuracy", "report"} <= set(on_ray.computed)

    # Its worker is a thread of this process (every stage is a cache hit: nothing to isolate),
    # which spares a worker process importing torch; the runner still goes through the scheduler.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as scheduler:
        on_dask = rmc_flow(RmcParameters(config=cfg, store_root=store,
                                         runner=RunnerConfig(kind="dask", address=scheduler.scheduler_address)))
    assert on_dask.computed == [] and on_dask.report == on_ray.report

    with get_client(sync_client=True) as client:
        for kind, state in (("ray", "Completed"), ("dask", "Cached")):
            children = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[f"rmc-on-{kind}"])))
            assert len(children) == 1
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[children[0].id])))
            assert len(tasks) == len(on_ray.computed) + len(on_ray.cached)
            assert {t.state.name for t in tasks if t.name == "train-teacher"} == {state}
