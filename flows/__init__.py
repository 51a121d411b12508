"""Prefect flows wiring the rmc_core stages into a cached DAG, and the `rmc` command."""

import logging
import os

# rmc_core logs through the standard `logging` module; Prefect forwards these loggers to
# the run's logs in the UI. Set before Prefect configures logging on import.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "rmc_core")
# The same stages also run outside any flow (the plain-Python pipeline): no API to log to.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
logging.getLogger("rmc_core").setLevel(logging.INFO)
