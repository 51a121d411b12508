"""Prefect flows wiring the rmc_core stages into a cached DAG, and the `rmc` command."""
