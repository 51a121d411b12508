"""rmc_core's log lines (rows, steps, throughput, sparsity per stage) in each run's logs,
and Prefect's task lines prefixed with their task's name in the UI."""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.configuration import ensure_logging_setup
from prefect.logging.formatters import PrefectFormatter
from prefect.logging.handlers import APILogHandler

CORE_LOGGER = "rmc_core"
# The UI shows time and level itself; what it does not show next to a task's line is
# which task wrote it ("Finished in state Completed()" x 22 otherwise).
API_FORMAT = PrefectFormatter("%(message)s", task_run_fmt="%(task_run_name)s: %(message)s")


def _inside_a_run(record: logging.LogRecord) -> bool:
    """The same stages run outside any flow (the plain-Python pipeline): nothing to log to."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def send_core_logs_to_runs() -> None:
    """Attach an API log handler to rmc_core's logger, once per process.

    Not through PREFECT_LOGGING_EXTRA_LOGGERS: Prefect reads it when it sets up logging,
    which a served or deployed run does at `import prefect`, before any rmc module could
    set it, so those runs' logs lacked every stage line.
    """
    ensure_logging_setup()
    core = logging.getLogger(CORE_LOGGER)
    core.setLevel(logging.INFO)
    if not any(isinstance(h, APILogHandler) for h in core.handlers):
        handler = APILogHandler()
        handler.setFormatter(API_FORMAT)
        handler.addFilter(_inside_a_run)
        core.addHandler(handler)
    for handler in logging.getLogger("prefect.task_runs").handlers:
        if isinstance(handler, APILogHandler):
            handler.setFormatter(API_FORMAT)
