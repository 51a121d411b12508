"""The UI path end to end: a real local Prefect server on a loopback port, the
deployments served, a run triggered through the API with non-default parameters, its
completion and artifacts checked, the server stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.rmc_flow import RmcParameters
from tests.conftest import REPO, tiny_run_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout} s")


@pytest.fixture
def server(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": url, "PYTHONPATH": str(REPO), "RMC_CONCURRENCY": "1"}
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200, 180, "prefect server")
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_trigger_served_deployment_through_the_api(server, tmp_path):
    url, env = server
    with urllib.request.urlopen(url.removesuffix("/api") + "/", timeout=10) as page:
        assert page.status == 200 and b"<html" in page.read().lower()  # the UI is served
    serve_log = open(tmp_path / "serve.log", "w")
    serving = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=REPO, env=env,
                               stdout=serve_log, stderr=subprocess.STDOUT)
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            def deployed() -> bool:
                with get_client(sync_client=True) as client:
                    return client.read_deployment_by_name("rmc/rmc") is not None and \
                        client.read_deployment_by_name("rmc-sweep/weekly-benchmark").schedules != []
            wait_until(deployed, 120, "served deployments")
            params = RmcParameters(config=tiny_run_config(methods=("vanilla", "smooth", "rmc")), store_root=str(tmp_path / "store"))
            flow_run = run_deployment("rmc/rmc", parameters={"params": params.model_dump(mode="json")}, timeout=0)
            with get_client(sync_client=True) as client:
                wait_until(lambda: client.read_flow_run(flow_run.id).state.is_final(), 420, "flow run")
                final = client.read_flow_run(flow_run.id)
                assert final.state.is_completed(), final.state
        # The sync client's read_artifacts sends nulls this server version refuses: ask the REST API.
        body = {"artifacts": {"flow_run_id": {"any_": [str(flow_run.id)]}}}
        artifacts = httpx.post(f"{url}/artifacts/filter", json=body, timeout=30).raise_for_status().json()
        keys = {a["key"] for a in artifacts}
        assert {"rmc-results", "rmc-summary", "rmc-progress"} <= keys
        table = next(a for a in artifacts if a["key"] == "rmc-results")
        assert "imp40-smooth" in str(table["data"])
        assert any((tmp_path / "store" / "objects" / "tables").iterdir())
    finally:
        serving.terminate()
        serving.wait(timeout=30)
        serve_log.close()
