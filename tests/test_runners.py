"""The DAG on a Ray or a Dask cluster: one Prefect server sees every task, the store is
the shared cache, and GPU stages ask the cluster for one GPU each."""

from __future__ import annotations

import sys

import pytest

from rmc.flows.rmc_flow import RmcParameters, RunnerConfig, placed, rmc_flow, task_runner
from rmc_core.config import SubnetworkConfig
from tests.conftest import FAST, tiny_run_config

SMALL = {"methods": ("vanilla", "rmc"), "subnetworks": SubnetworkConfig(sparsities=(0.2, 0.5), train=FAST)}


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


@pytest.mark.slow
def test_stages_computed_on_ray_workers_are_cache_hits_for_dask_workers(prefect_api, tmp_path):
    pytest.importorskip("prefect_ray")
    pytest.importorskip("prefect_dask")
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId

    cfg = tiny_run_config(**SMALL)
    store = str(tmp_path / "store")
    on_ray = rmc_flow(RmcParameters(config=cfg, store_root=store, runner=RunnerConfig(kind="ray")))
    assert {"train-teacher", "train-subnet-20", "train-subnet-50", "train-imp40-rmc", "evaluate"} <= set(on_ray.computed)

    on_dask = rmc_flow(RmcParameters(config=cfg, store_root=store, runner=RunnerConfig(kind="dask")))
    assert on_dask.computed == [] and on_dask.report == on_ray.report

    # Each cluster's task runs reported to the one server, under the child flow run.
    with get_client(sync_client=True) as client:
        for kind, state in (("ray", "Completed"), ("dask", "Cached")):
            (child,) = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[f"rmc-on-{kind}"])))
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[child.id])))
            names = {t.name: t.state.name for t in tasks}
            assert len(names) == len(on_ray.computed) + len(on_ray.cached) and names["train-teacher"] == state
