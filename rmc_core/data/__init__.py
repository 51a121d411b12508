"""Tasks and their data: a registry of tasks (registry.py), readers for local files and the
hub (sources.py), tasks declared from files (task_file.py), and the synthetic shortcut task.
Nothing is imported here: the run config imports task_file.py, and the registry imports
the run config."""
