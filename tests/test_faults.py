"""Crash safety and concurrent runs, with real processes: a killed run resumes from what
it finished and never mistakes a partial artifact for a finished one; two identical runs
started together leave one artifact per stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from rmc.tasks.stages import best_effort_progress
from rmc_core.store import directory_digest
from tests.conftest import REPO, tiny_run_config


def small_run(subnet_epochs: int = 2) -> str:
    """The Vanilla student alone and two sub-networks: with the tiny config that student is
    the 40 % sub-network (same base, data, loss and settings), so a run is the teacher and
    two sub-networks, and each check costs less. More `subnet_epochs` make the sub-networks
    (alone) slow enough to be killed in the middle; the student, trained for two, is then
    its own stage. As JSON, for `rmc run --config`."""
    subnets = tiny_run_config().subnetworks
    subnets = subnets.model_copy(update={"sparsities": (0.2, 0.4), "train": subnets.train.model_copy(update={"epochs": subnet_epochs})})
    return tiny_run_config(methods=("vanilla",), subnetworks=subnets).model_dump_json()


@pytest.fixture(scope="module")
def own_server_home(tmp_path_factory) -> dict[str, str]:
    """One PREFECT_HOME for the runs that start their own temporary server, as a user's
    `rmc run` does: its database is created once, not by every run."""
    return {"PREFECT_HOME": str(tmp_path_factory.mktemp("own-server-home"))}


def start_run(config: Path, store: Path, out: Path, api_url: str | None, env: dict[str, str] | None = None,
              **popen: object) -> subprocess.Popen:
    """`rmc run` in a subprocess: against the test server, or (api_url None) with its own
    temporary server, as a user runs it."""
    env = {**os.environ, "RMC_CONCURRENCY": "1", "PYTHONPATH": str(REPO), **(env or {})}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    cmd = [sys.executable, "-m", "rmc.flows.cli", "run", "--config", str(config), "--store", str(store), "--out", str(out)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def read_until(proc: subprocess.Popen, marker: str, bound_s: float = 900) -> str:
    """Output up to `marker` (a wait bound for slow machines, not a timing assert)."""
    seen, deadline = "", time.time() + bound_s
    while marker not in seen and time.time() < deadline and proc.poll() is None:
        seen += proc.stdout.read(64)
    assert marker in seen, seen[-2000:]
    return seen


def assert_store_is_sound(store: Path) -> None:
    """Every published artifact is complete: its bytes hash to its name."""
    objects = [d for kind in (store / "objects").iterdir() for d in kind.iterdir()]
    assert objects
    for d in objects:
        assert directory_digest(d) == d.name, f"partial or corrupt artifact {d}"


def test_a_killed_run_resumes_and_two_identical_runs_started_together_share_one_artifact_per_stage(prefect_api, tmp_path):
    """A run SIGKILLed in the middle of its 40 % sub-network leaves only whole artifacts;
    then the same run started twice at once over that store: each resumes from what the
    killed run finished (the unfinished stage is computed, never taken from the partial
    one), both end with the same report, and the store holds one artifact per stage."""
    config = tmp_path / "run.json"
    config.write_text(small_run(subnet_epochs=12))
    store = tmp_path / "store"
    proc = start_run(config, store, tmp_path / "killed", prefect_api)
    read_until(proc, "subnet-40:")
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()
    assert_store_is_sound(store)

    procs = [start_run(config, store, tmp_path / f"out{i}", prefect_api) for i in range(2)]
    for p in procs:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log[-3000:]
    summaries = [json.loads((tmp_path / f"out{i}" / "summary.json").read_text()) for i in range(2)]
    for summary in summaries:
        assert {"prepare-data", "prepare-base", "train-teacher", "train-subnet-20"} <= set(summary["cached"])
    # Both may compute it, or the later one find the earlier one's: never both take it as done.
    assert any("train-subnet-40" in s["computed"] for s in summaries)
    assert summaries[0]["report"] == summaries[1]["report"]
    timings = [s["artifacts"].pop("measure-inference") for s in summaries]
    assert summaries[0]["artifacts"] == summaries[1]["artifacts"]
    assert all(t["kind"] == "tables" for t in timings), "each run records the timings it measured"
    models = {r["digest"] for r in summaries[0]["artifacts"].values() if r and r["kind"] == "model"}
    assert {d.name for d in (store / "objects" / "model").iterdir()} == models
    assert_store_is_sound(store)


SERVER_START = "Starting temporary server"


@pytest.mark.parametrize("signum, to_group, marker", [
    (signal.SIGINT, True, "teacher:"), (signal.SIGTERM, False, "teacher:"),
    (signal.SIGTERM, True, "teacher:"), (signal.SIGTERM, True, SERVER_START)],
    ids=["ctrl-c", "sigterm", "sigterm-to-group", "sigterm-to-group-while-the-server-starts"])
def test_a_signal_stops_the_run_in_seconds_and_leaves_no_process(signum, to_group, marker, tmp_path, own_server_home):
    """Ctrl-C reaches the whole process group (CLI and its temporary server), and so does
    SIGTERM from `timeout` or systemd; a plain `kill` reaches the CLI alone, which must stop
    the server itself. Either way, also while the server starts: exit 128 + signal within
    15 s, no process left, the finished stages listed and every published artifact whole
    (that a later run resumes from such a store is the killed-run test's). The signal follows the
    teacher's start by milliseconds, long before the run could finish. (A SIGTERM to the
    group used to kill the server first and leave rmc retrying it for over a minute.)"""
    config = tmp_path / "run.json"
    config.write_text(small_run())
    store, out = tmp_path / "store", tmp_path / "out"
    proc = start_run(config, store, out, None, own_server_home, start_new_session=True)
    read_until(proc, marker)
    sent = time.time()
    os.killpg(proc.pid, signum) if to_group else proc.send_signal(signum)
    rest, _ = proc.communicate(timeout=60)
    assert time.time() - sent < 15
    assert proc.returncode == 128 + signum, rest[-2000:]
    kept = "prepare-data" if marker == "teacher:" else "none"
    assert f"stopped by {signal.Signals(signum).name}. Finished stages, kept in the store {store}: {kept}" in rest
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nobody left in the run's process group: no orphaned server
    if kept != "none":
        assert_store_is_sound(store)


def test_progress_updates_to_an_unreachable_server_neither_fail_nor_stall(caplog):
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # nothing listens on port 9
        start = time.time()
        best_effort_progress(uuid.uuid4())(1.0)
    assert time.time() - start < 15  # a bound for a busy machine; one failed try takes ~2 s here
    assert "progress update failed" in caplog.text


def test_progress_is_sent_at_most_once_per_interval_and_always_at_the_end(monkeypatch):
    sent = []
    monkeypatch.setattr("rmc.tasks.stages.update_progress_artifact", lambda _id, percent: sent.append(percent))
    now = [0.0]
    report = best_effort_progress(uuid.uuid4(), clock=lambda: now[0])
    for step in range(1, 21):
        now[0] = step * 0.5  # a step every half second: an update every fourth step
        report(step / 20)
    assert sent == [20.0, 40.0, 60.0, 80.0, 100.0]


def test_a_failing_run_exits_1_with_one_line_and_leaves_no_process(tmp_path, own_server_home):
    """A data error inside the flow: exit 1, the error once without a traceback, and the
    temporary server stopped with the CLI."""
    from rmc_core.data.registry import TASKS

    sources = TASKS["qqp"].sources["local"]
    for src in (sources.dev, *sources.ood.values()):
        (tmp_path / src.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / src.path).touch()
    (tmp_path / sources.train.path).write_text('{"0": {"text_a": "a", "text_b": "b", "label": "7"}}')
    config = tmp_path / "run.json"
    config.write_text(tiny_run_config(task="qqp", data=tiny_run_config().data.model_copy(update={"data_root": tmp_path}))
                      .model_dump_json())
    proc = start_run(config, tmp_path / "store", tmp_path / "out", None, own_server_home, start_new_session=True)
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, log[-2000:]
    assert "Traceback" not in log and "NotReady" not in log
    assert log.count("rmc: DataError:") == 1 and "unknown label values ['7']" in log
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


def test_serve_stops_within_seconds_on_sigterm_to_its_group(prefect_api, tmp_path):
    """Reproduction: SIGTERM to the serving process's group (systemd, `timeout`, a container
    stop) left it alive 10 s later; it needed SIGKILL."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rmc.deployments.serve", "--allow-root", str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen, deadline = "", time.time() + 300
    while "rmc serve: serving" not in seen and time.time() < deadline and proc.poll() is None:
        seen += proc.stdout.readline()
    assert "rmc serve: serving rmc/rmc" in seen, seen[-2000:]
    time.sleep(3)  # the runner is polling the API for work
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - start < 6, "stopped within a few seconds"
    assert code == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of its group is left
