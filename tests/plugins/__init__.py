"""Throw-away extensions, each one file: they prove that a compression or an evaluation
registered outside rmc_core runs through the whole workflow (tests/test_plugins.py)."""
