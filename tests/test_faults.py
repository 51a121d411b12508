"""Crash safety and concurrent runs, with real processes: a killed run resumes from what
it finished and never mistakes a partial artifact for a finished one; two identical runs
started together leave one artifact per stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rmc_core.store import directory_digest
from tests.conftest import REPO, tiny_run_config

SLOW_DATA = tiny_run_config().data.model_copy(update={"synthetic_train": 3000})


def start_run(config: Path, store: Path, out: Path, api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url, "RMC_CONCURRENCY": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", str(config), "--store", str(store), "--out", str(out)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def assert_store_is_sound(store: Path) -> None:
    """Every published artifact is complete: its bytes hash to its name."""
    objects = [d for kind in (store / "objects").iterdir() for d in kind.iterdir()]
    assert objects
    for d in objects:
        assert directory_digest(d) == d.name, f"partial or corrupt artifact {d}"


def test_killed_run_resumes_without_recomputing_finished_stages(prefect_api, tmp_path):
    config = tmp_path / "run.json"
    config.write_text(tiny_run_config(data=SLOW_DATA).model_dump_json())
    store, out = tmp_path / "store", tmp_path / "out"
    proc = start_run(config, store, out, prefect_api)
    seen, deadline = "", time.time() + 900  # a wait bound for slow machines, not a timing assert
    while "subnet-40:" not in seen and time.time() < deadline and proc.poll() is None:
        seen += proc.stdout.read(64)
    assert "subnet-40:" in seen, seen[-2000:]
    time.sleep(0.5)
    proc.kill()  # SIGKILL in the middle of the 40 % sub-network
    proc.wait()
    assert not (out / "summary.json").exists()
    assert_store_is_sound(store)

    again = start_run(config, store, out, prefect_api)
    log, _ = again.communicate(timeout=600)
    assert again.returncode == 0, log[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert {"prepare-data", "prepare-base", "train-teacher", "train-subnet-20"} <= set(summary["cached"])
    assert "train-subnet-40" in summary["computed"]
    assert_store_is_sound(store)


def test_two_identical_runs_started_together_share_one_artifact_per_stage(prefect_api, tmp_path):
    config = tmp_path / "run.json"
    config.write_text(tiny_run_config().model_dump_json())
    store = tmp_path / "store"
    procs = [start_run(config, store, tmp_path / f"out{i}", prefect_api) for i in range(2)]
    for p in procs:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log[-3000:]
    summaries = [json.loads((tmp_path / f"out{i}" / "summary.json").read_text()) for i in range(2)]
    assert summaries[0]["report"] == summaries[1]["report"]
    assert summaries[0]["artifacts"] == summaries[1]["artifacts"]
    models = {r["digest"] for r in summaries[0]["artifacts"].values() if r and r["kind"] == "model"}
    assert {d.name for d in (store / "objects" / "model").iterdir()} == models
    assert_store_is_sound(store)
