"""The Prefect run forms: every field a user can set says what it does."""

from __future__ import annotations

from typing import Any

import pytest

from rmc.flows.rmc_flow import RmcParameters
from rmc.flows.experiment_flow import ExperimentParameters


def undescribed(schema: dict[str, Any], defs: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    """Dotted paths of the properties without a description, through refs, unions and lists."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        if name in seen:
            return []
        schema, seen = defs[name], seen | {name}
    out = [p for key in ("anyOf", "oneOf", "allOf") for s in schema.get(key, []) for p in undescribed(s, defs, path, seen)]
    if isinstance(schema.get("items"), dict):
        out += undescribed(schema["items"], defs, path, seen)
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            out.append(f"{path}.{name}")
        out += undescribed(prop, defs, f"{path}.{name}", seen)
    return out


@pytest.mark.parametrize("form", [RmcParameters, ExperimentParameters])
def test_every_form_field_has_a_description(form):
    schema = form.model_json_schema()
    assert sorted(set(undescribed(schema, schema.get("$defs", {}), form.__name__, set()))) == []


def test_relative_paths_are_shown_resolved_where_the_form_is_served():
    from pathlib import Path

    schema = RmcParameters.model_json_schema()
    assert str(Path.cwd()) in schema["properties"]["store_root"]["description"]


def test_the_config_and_its_form_load_neither_torch_nor_transformers():
    """The registries hold light specs (each kind's settings in its `*_config.py`, the
    methods' losses and the evaluations' models imported where they run): validating a
    config and drawing the run form is quick and needs no torch."""
    import subprocess
    import sys

    code = ("import sys, time; t = time.perf_counter(); import rmc_core.config, rmc_core.experiment; "
            "from rmc_core.config import RunConfig; RunConfig.model_json_schema(); RunConfig(); "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)")
    seconds, torch, transformers = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout.split()
    assert (torch, transformers) == ("False", "False")
    assert float(seconds) < 6  # about 2 s here (it was 6-8 s with torch); a loaded 2-core machine is slower
