"""Tasks and their data: a registry of tasks, readers for local files and the hub, and the
synthetic shortcut task."""

from rmc_core.data.registry import TASKS, TaskData, TaskSpec, load_task_data
from rmc_core.data.sources import DataError

__all__ = ["TASKS", "DataError", "TaskData", "TaskSpec", "load_task_data"]
