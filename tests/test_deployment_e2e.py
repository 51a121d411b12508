"""The Prefect side as users meet it, end to end: a real `prefect server start` on a
loopback port other than 4200, the project's deployments served (the sweep due every
minute), and then what a user does: wait for the schedule, list and run with the
`prefect` CLI, read a run's logs, and drive the UI in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL, temporary_settings

from rmc.flows.rmc_flow import RmcParameters
from tests.conftest import REPO, TINY_SPARSITIES, free_port, tiny_run_config

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# rmc_core's line at the end of each training stage.
TRAINED = re.compile(r"^(\S+): \d+ steps in \d+ s \([\d.]+ examples/s\), final loss [\d.]+, achieved sparsity [\d.]+$")


UNUSED_SERVICES = ("CANCELLATION_CLEANUP", "DB_VACUUM", "EVENT_LOGGER", "FOREMAN", "LATE_RUNS", "PAUSE_EXPIRATIONS",
                   "REPOSSESSOR", "CLEANUP_RECONCILER", "TRIGGERS")


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` on a free port, as docs/orchestration.md says to start it there: with
    PREFECT_UI_API_URL, or the UI would call port 4200. The scheduler loops every 5 s
    (60 s by default) so that a run due within the minute is created in time, and the serving
    process looks for runs every 2 s (10 s by default: up to 10 s idle per run). Services these
    tests never exercise are off: each is one more writer to the SQLite file, and under CI load
    their writes made the form's submit meet SQLite's busy answer (503) twice in a row."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": url, "PREFECT_UI_API_URL": url, "PYTHONPATH": str(REPO), "RMC_CONCURRENCY": "1",
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5", "PREFECT_RUNNER_POLL_FREQUENCY": "2", "COLUMNS": "250",
           **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in UNUSED_SERVICES}}
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    log_path = tmp / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200, 180, "prefect server")
            yield {"url": url, "env": env, "log": log_path, "tmp": tmp}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def scheduled_sweeps(client) -> list:
    """The sweep deployment's runs its schedule created, newest first."""
    sweep = client.read_deployment_by_name("rmc-experiment/weekly-benchmark")
    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[sweep.id])),
                                 sort=FlowRunSort.START_TIME_DESC)
    return [r for r in runs if r.auto_scheduled]


def pause_after_the_first_scheduled_sweep(url: str, stop: threading.Event) -> None:
    """One scheduled run is all the schedule test needs: pausing the sweep once it finished
    deletes the runs due later (each a flow-run process importing torch beside the tests)."""
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        wait_until(lambda: stop.is_set() or any(r.state.is_final() for r in scheduled_sweeps(client)), 360,
                   "a scheduled sweep run")
        if not stop.is_set():
            client.pause_deployment(client.read_deployment_by_name("rmc-experiment/weekly-benchmark").id)


@pytest.fixture(scope="module")
def served(server):
    """The deployments served by a worker-less `serve` process, the sweep due every minute
    until its first scheduled run has finished."""
    store = server["tmp"] / "sweep-store"
    stop = threading.Event()
    with open(server["tmp"] / "serve.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.serve_due_now", str(store), str(server["tmp"])], cwd=REPO,
                                env=server["env"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            with temporary_settings({PREFECT_API_URL: server["url"]}), get_client(sync_client=True) as client:
                wait_until(lambda: client.read_deployment_by_name("rmc-experiment/weekly-benchmark").schedules, 180,
                           "served deployments")
                threading.Thread(target=pause_after_the_first_scheduled_sweep, args=(server["url"], stop), daemon=True).start()
                yield client
        finally:
            stop.set()
            proc.terminate()
            proc.wait(timeout=30)


def server_errors(log: Path, lines: int = 40) -> str:
    """The server's logged exceptions, last first, so that a CI failure shows why the server refused."""
    text = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(text) if "Encountered" in line or "Error" in line]
    return "\n".join(text[starts[-1]:starts[-1] + lines]) if starts else "(none logged)"


def prefect_cli(server, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "prefect", *args], check=False, env=server["env"], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for_run(client, run_id, timeout: float = 420):
    wait_until(lambda: client.read_flow_run(run_id).state.is_final(), timeout, f"flow run {run_id}")
    run = client.read_flow_run(run_id)
    assert run.state.is_completed(), run.state
    return run


def run_log_messages(client, run_id) -> list[str]:
    """Every log line of a run, through the API (which pages at 200)."""
    found, page = [], None
    while page is None or len(page) == 200:
        page = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200, offset=len(found))
        found += [m.message for m in page]
    return found


def tiny_params(store: Path, methods: tuple[str, ...] = ("vanilla", "rmc")) -> dict:
    return {"params": RmcParameters(config=tiny_run_config(methods=methods), store_root=str(store)).model_dump(mode="json")}


def test_cli_lists_deployments_runs_one_and_shows_its_stage_logs(server, served):
    deployed = prefect_cli(server, "deployment", "ls")
    assert "rmc/rmc" in deployed and "rmc-experiment/weekly-benchmark" in deployed

    started = prefect_cli(server, "deployment", "run", "rmc/rmc", "--params", json.dumps(tiny_params(server["tmp"] / "cli-store")))
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)
    run = wait_for_run(served, run_id)
    assert re.fullmatch(rf"synthetic-vanilla-rmc-seeds0-\d{{4}}-\d{{6}}-{str(run.id)[:4]}", run.name), run.name
    listed = prefect_cli(server, "flow-run", "ls", "--flow-name", "rmc", "--state-type", "COMPLETED")
    assert str(run.id) in listed and run.name in listed

    logs = prefect_cli(server, "flow-run", "logs", run_id)
    messages = run_log_messages(served, run.id)
    trained = {m.group(1) for line in messages if (m := TRAINED.match(line))}
    assert {"teacher", *(f"subnet-{round(100 * s)}" for s in TINY_SPARSITIES), "imp40-rmc"} <= trained
    # With the tiny config the Vanilla student is the 40 % sub-network (same base, data,
    # loss and training settings), so the cache hands it over instead of training it twice.
    assert "train-imp40-vanilla: Finished in state Cached(type=COMPLETED)" in messages
    assert "teacher: 300 rows" in logs  # `prefect flow-run logs` shows them too
    assert "train-teacher: Finished in state Completed()" in messages  # task lines name their task
    assert any(re.fullmatch(r"synthetic data: 300 train, 90 dev \(\d+ annotated hard\), OOD synthetic-ood 100", m) for m in messages)
    headline = [m for m in messages if m.startswith("report: imp40-rmc: ID dev ")]
    assert len(headline) == 1 and re.search(r"OOD [\d.]+, F_bias -?[\d.]+", headline[0]), headline
    assert any(m.startswith("summary over seeds 0: ") and "imp40-rmc" in m for m in messages)
    assert not [m for m in messages if messages.count(m) > 1 and "length predicts the label" in m]

    artifacts = {a.key: a for a in served.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))}
    assert {"rmc-results", "rmc-results-detail", "rmc-report-plot", "rmc-summary", "stages", "train-teacher"} <= set(artifacts)
    rows = json.loads(artifacts["rmc-results"].data)
    assert list(rows[0]) == ["model", "ID dev", "OOD", "F_bias", "label loyalty", "prob. loyalty"]  # fits the pane
    cells = [v for row in rows for v in row.values() if isinstance(v, float)]
    assert cells and all(round(v, 4) == v for v in cells)  # rounded for the UI
    assert "F_bias: the model's relative" in artifacts["rmc-results"].description  # the legend
    assert artifacts["rmc-report-plot"].data.startswith("![ID and OOD accuracy per model](data:image/png;base64,")


def test_a_served_run_reaching_outside_the_operators_folders_is_refused_before_it_starts(server, served, tmp_path):
    outside = tmp_path / "elsewhere"  # not under the folder the server allows (server["tmp"])
    rmc = served.read_deployment_by_name("rmc/rmc")
    run = served.create_flow_run_from_deployment(rmc.id, parameters=tiny_params(outside))
    wait_until(lambda: served.read_flow_run(run.id).state.is_final(), 300, "the refused run")
    state = served.read_flow_run(run.id).state
    assert state.is_failed() and "refused by this server's policy" in state.message, state
    assert f"store_root '{outside}' is outside the allowed folders" in state.message
    assert not outside.exists()
    assert not [m for m in run_log_messages(served, run.id) if "Traceback" in m]  # the sentence, not a traceback
    # Runs of the same config are told apart by name (this one and the CLI test's).
    names = [r.name for r in served.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[rmc.id])))]
    assert len(names) == len(set(names)), names


USUAL_FIELDS = ("Task", "Teacher", "Compression", "Sparsity", "Methods", "Seeds", "Store")
VIEWPORT = {"width": 1440, "height": 900}


def field(page, label: str):
    """The form's field of that label: the block that holds its label, input and error message."""
    title = page.locator(".p-label__label").filter(has_text=re.compile(rf"^{label}( \(Optional\))?$")).first
    return title.locator("xpath=ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' p-label ')][1]")


def form_measures(page) -> dict:
    """The page's width against the window, and the form's height (px)."""
    return page.evaluate("""() => {
        const form = document.querySelector('.flow-run-create-form-v2') || document.body;
        return {scroll_width: document.documentElement.scrollWidth, window_width: window.innerWidth,
                form_height: form.getBoundingClientRect().height}; }""")


def test_browser_deployments_page_and_a_custom_run_from_the_form(server, served):
    """At 1440x900: the run form fits the width, a usual run's fields are in the first
    screenful, a bad value is refused at its field, the form's store is one the server
    allows; the run's artifacts are keyed and its summary tables fit their pane. Screenshots
    go to the server's temporary folder, and a failure names them."""
    if CHROMIUM is None:
        pytest.skip("BROWSER TEST SKIPPED: no chromium on PATH (apt-get install chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="BROWSER TEST SKIPPED: playwright not installed").sync_playwright
    ui = server["url"].removesuffix("/api")
    rmc = served.read_deployment_by_name("rmc/rmc")
    # RMC alone in the CLI test's store: every model comes from its cache, so the UI's run is
    # quick, and its report (another set of models) is computed, with its headline log line.
    params = tiny_params(server["tmp"] / "cli-store", methods=("rmc",))
    http_errors: list[str] = []
    shots: list[Path] = []

    def shot(page, name: str, **kwargs) -> None:
        shots.append(server["tmp"] / f"{name}.png")
        page.screenshot(path=str(shots[-1]), **kwargs)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        page.on("response", lambda r: r.status >= 400 and http_errors.append(f"{r.status} {r.url}"))
        try:
            page.goto(f"{ui}/deployments")
            listing = page.locator("table")
            listing.get_by_text("weekly-benchmark").wait_for()
            assert listing.get_by_text("rmc", exact=True).count() >= 1
            assert listing.get_by_text("Every minute").count() == 1  # the sweep's schedule is shown

            page.goto(f"{ui}/deployments/deployment/{rmc.id}/run")
            page.get_by_text("Parameters", exact=True).wait_for()
            field(page, "Store").wait_for()
            shot(page, "run-form-first-screen")
            measures = form_measures(page)
            assert measures["scroll_width"] <= measures["window_width"], measures  # no sideways scroll
            # A usual run is set in the first screenful of the form: its fields come first, the
            # first of them on the page as it opens, and together they fit in one screen.
            boxes = {label: field(page, label).bounding_box() for label in USUAL_FIELDS}
            top, bottom = boxes["Task"]["y"], max(b["y"] + b["height"] for b in boxes.values())
            print(f"run form at 1440x900: page width {measures['scroll_width']} px, form height "
                  f"{measures['form_height']:.0f} px, usual fields from y={top:.0f} to y={bottom:.0f} px")
            assert top < VIEWPORT["height"] / 2 and bottom - top <= VIEWPORT["height"], (boxes, measures)
            assert [label for label, _ in sorted(boxes.items(), key=lambda kv: kv[1]["y"])] == list(USUAL_FIELDS)
            # Optional numbers and texts are plain fields; only optional sections (the teacher's
            # label map, a distilled student's own encoder) keep Prefect's type toggle.
            assert page.get_by_text('Property is type "None"').count() <= 2
            for section in ("Teacher model (advanced)", "Compression settings, by kind", "Student training"):
                assert page.get_by_text(re.compile(rf"^{re.escape(section)}( \(Optional\))?$")).count() == 1, section
            # The form's store is inside what this server allows (its first --allow-root).
            store = field(page, "Store").locator("input, textarea").first.input_value()
            assert store == str((server["tmp"] / "store").resolve()), store
            assert page.get_by_role("button", name="your task", exact=True).count() == 1  # the task's tabs say what they are
            page.get_by_role("button", name="synthetic", exact=True).focus()  # task is a drop-down, not free text
            page.keyboard.press("ArrowDown")
            options = page.locator(".p-select-option__text")
            options.first.wait_for()
            assert set(options.all_inner_texts()) == {"mnli", "fever", "qqp", "synthetic"}
            page.keyboard.press("Escape")

            # A bad value is refused at its field, in a sentence that gives the bound, and no run
            # is created (the bound reaches the UI's own check inside an `allOf`, rmc_core/schema.py).
            runs_before = len(served.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[rmc.id]))))
            sparsity = field(page, "Sparsity")
            sparsity.locator("input").first.fill("1.5")
            page.get_by_role("button", name="Submit").click()
            sparsity.get_by_text("1.5 is greater than or equal to the maximum of 1").wait_for(timeout=30_000)
            sparsity.scroll_into_view_if_needed()
            shot(page, "run-form-refused")
            assert len(served.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[rmc.id])))) == runs_before
            sparsity.locator("input").first.fill("")

            page.locator(".flow-run-create-form-v2__header button").click()
            page.get_by_text("Use JSON input").click()
            page.locator(".p-code-input textarea").fill(json.dumps(params, indent=2))
            # SQLite (WAL) refuses a write that meets another's newer snapshot at once, which Prefect
            # answers with 503 "retry"; the UI then shows an error and a user submits again. The served
            # sweep writes every minute, so on a loaded machine a submit can meet it: like a user, the
            # test waits a little longer before each new try.
            for attempt in range(6):
                with page.expect_response(lambda r: r.url.endswith("/create_flow_run")) as answer:
                    page.get_by_role("button", name="Submit").click()
                if answer.value.status != 503:
                    break
                time.sleep(2 * (attempt + 1))
            page.wait_for_url(re.compile(r".*/deployments/deployment/.*\?tab=Runs"), timeout=60_000)

            mine = served.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[rmc.id])),
                                         sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1)[0]
            assert mine.parameters == params
            run = wait_for_run(served, mine.id)
            page.goto(f"{ui}/runs/flow-run/{run.id}")
            page.get_by_text(run.name, exact=True).first.wait_for()
            page.get_by_text(re.compile(r"^\d+ Task runs$")).wait_for(timeout=90_000)
            page.locator("canvas").first.wait_for(timeout=90_000)  # the task graph
            assert page.get_by_text("Completed", exact=True).count() >= 1
            page.get_by_text("Artifacts", exact=True).click()
            page.get_by_text("rmc-results").first.wait_for()
            shot(page, "run-artifacts")
            page.get_by_text("Logs", exact=True).first.click()
            page.get_by_text(re.compile(r"^report: imp40-rmc: ID dev [\d.]+, OOD [\d.]+")).first.wait_for(timeout=30_000)

            artifacts = served.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            assert artifacts and all(a.key for a in artifacts), [a.type for a in artifacts if not a.key]  # no untitled card
            plot = next(a for a in artifacts if a.key == "rmc-report-plot")
            page.goto(f"{ui}/artifacts/artifact/{plot.id}")
            picture = page.locator("img[alt='ID and OOD accuracy per model']")
            picture.wait_for(timeout=30_000)
            assert picture.evaluate("img => img.complete && img.naturalWidth") > 200  # rendered, not a broken image
            shot(page, "report-plot-artifact", full_page=True)
            summary = next(a for a in artifacts if a.key == "rmc-summary")
            page.goto(f"{ui}/artifacts/artifact/{summary.id}")
            page.locator("table").first.wait_for(timeout=30_000)
            shot(page, "summary-artifact", full_page=True)
            overflowing = page.evaluate("""() => [...document.querySelectorAll('table')].filter(
                t => t.getBoundingClientRect().right > document.documentElement.clientWidth).length""")
            assert overflowing == 0 and form_measures(page)["scroll_width"] <= VIEWPORT["width"]
        except Exception as err:
            shot(page, "browser-failure", full_page=True)
            raise AssertionError(f"{err}\nHTTP errors seen: {http_errors}; screenshots: {', '.join(map(str, shots))}"
                                 f"\nserver errors:\n{server_errors(server['log'])}") from err
        finally:
            browser.close()


def test_the_weekly_sweep_runs_on_its_schedule_without_a_worker(server, served):
    def a_scheduled_run_finished():
        return [r for r in scheduled_sweeps(served) if r.state.is_final()]

    # Last in the module: the schedule (due every minute) fires while the tests above run,
    # so its wait overlaps their work instead of idling a worker for up to a minute.
    wait_until(a_scheduled_run_finished, 360, "a scheduled sweep run")
    run = a_scheduled_run_finished()[0]
    assert run.state.is_completed(), run.state
    assert re.fullmatch(rf"weekly-1runs-seeds0-\d{{4}}-\d{{6}}-{str(run.id)[:4]}", run.name), run.name
    server_log = server["log"].read_text()
    assert "Traceback" not in server_log and "InvalidRequestError" not in server_log, server_log[-3000:]
