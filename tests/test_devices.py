"""Device placement, with fake device lists."""

from __future__ import annotations

import pytest

from rmc_core.devices import assign_devices, default_concurrency
from rmc_core.pipeline import run
from rmc_core.store import Store
from tests.conftest import tiny_run_config


def test_one_gpu_each_when_there_are_enough():
    assert assign_devices(5, [f"cuda:{i}" for i in range(8)]) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:4"]


def test_round_robin_when_gpus_are_fewer_than_jobs():
    assert assign_devices(5, ["cuda:0", "cuda:1"]) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]


def test_cpu_only():
    assert assign_devices(3, ["cpu"]) == ["cpu"] * 3


def test_no_devices_is_an_error():
    with pytest.raises(ValueError):
        assign_devices(2, [])


def test_default_concurrency():
    assert default_concurrency(["cuda:0", "cuda:1", "cuda:2"]) == 3
    assert default_concurrency(["cpu"], cpu_count=2) == 1
    assert default_concurrency(["cpu"], cpu_count=16) == 4


def test_pipeline_places_each_subnetwork_on_its_device(tmp_path, monkeypatch):
    """The DAG hands each sub-network's training its own device (recorded, not run, so the
    GPUs need not exist)."""
    monkeypatch.setattr("rmc_core.pipeline.check_devices", lambda devices, here=True: None)
    placed: dict[str, str] = {}

    def record(stage, *args, **kwargs):
        if kwargs.get("desc", "").startswith("subnet-") and stage.__name__ == "train":
            placed[kwargs["desc"]] = kwargs["device"]
        return None

    five = tiny_run_config().subnetworks.model_copy(update={"sparsities": (0.2, 0.4, 0.6, 0.7, 0.85)})
    run(tiny_run_config(subnetworks=five), Store(tmp_path), devices=["cuda:0", "cuda:1", "cuda:2"], call=record)
    assert placed == {"subnet-20": "cuda:0", "subnet-40": "cuda:1", "subnet-60": "cuda:2",
                      "subnet-70": "cuda:0", "subnet-85": "cuda:1"}
