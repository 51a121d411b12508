"""Prefect tasks: one per rmc_core stage, adding caching, persisted results and logging."""
