"""Shared fixtures: tiny models, tiny configs, and the shared real-data folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path

# Under pytest-xdist each of the two workers gets one core: one torch thread each (set
# before torch is imported; subprocesses inherit it), or their threads fight for the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from rmc_core.config import (  # noqa: E402
    DataConfig,
    InferenceCostConfig,
    ModelSpec,
    RunConfig,
    StudentConfig,
    SubnetworkConfig,
    TrainConfig,
)
from rmc_core.evaluation import EVALUATIONS  # noqa: E402
from rmc_core.model_spec import TinyBertSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# A busy 2-core machine starts the temporary Prefect server slower than its 20 s default allows.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
DATA_ROOT = Path(os.environ.get("RMC_DATA_ROOT", REPO.parent / "shared" / "data"))

TINY = ModelSpec(source="tiny", tiny=TinyBertSpec(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                                  intermediate_size=128, vocab_size=400))
TINY_SPARSITIES = (0.4, 0.7)
FAST = TrainConfig(epochs=2, lr=2e-3, batch_size=32, max_length=32, warmup_ratio=0.1)


def tiny_run_config(**overrides) -> RunConfig:
    """The whole method on ~400 synthetic rows with a ~100k-parameter BERT: seconds on CPU.
    Two sub-networks, not the method's five: difficulty is their loss variance either way
    (two is the least a variance needs), and each one more is two more stages in every
    flow the suite runs. Every registered evaluation, the opt-in ones included, so that the
    flow tests cover them all."""
    base = dict(
        task="synthetic",
        data=DataConfig(synthetic_train=300, synthetic_dev=90, synthetic_ood=100),
        teacher=TINY,
        teacher_train=FAST,
        subnetworks=SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST),
        student=StudentConfig(train=FAST),
        methods=("vanilla", "rmc"),
        evaluations=tuple(EVALUATIONS),
        inference=InferenceCostConfig(rows=16, repeats=2),
    )
    base.update(overrides)
    return RunConfig(**base)


def free_port() -> int:
    """A loopback port nobody listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_data_and_base(store):
    """The tiny run's data and base model in `store`, through the pipeline's own stages."""
    from rmc_core import stages

    cfg = tiny_run_config()
    data = stages.prepare_data(cfg.task, cfg.data, store)
    return data, stages.prepare_base(TINY, data, 0, store)


# The longest modules first (measured with --durations): two xdist workers then finish
# together instead of one running the end-to-end tests alone at the end.
LONGEST_FIRST = ("test_faults.py", "test_deployment_e2e.py", "test_flow.py", "test_runners.py",
                 "test_pipeline.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def data_root() -> Path:
    if not (DATA_ROOT / "README.md").exists():
        pytest.skip(f"shared data not found at {DATA_ROOT} (set RMC_DATA_ROOT to the shared/data folder)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """One temporary Prefect server for the whole session, with its home and default result
    storage in a temporary folder; yields its API URL for subprocesses. No test on it reads
    a run's logs from the API (the UI tests serve their own server), so they are not sent:
    each log line was a write to the server's database and a request from the run."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: False}), prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()
