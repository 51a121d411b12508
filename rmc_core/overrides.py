"""Building a RunConfig from a file and `key.path=value` overrides (CLI, deployments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rmc_core.config import RunConfig


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, lists, true/null), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(base: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`teacher_train.epochs=2` sets base["teacher_train"]["epochs"] = 2.

    Setting a section's `kind` to another value starts that section afresh (the settings
    of the previous kind do not apply to the new one): `student.compression.kind=distilled`
    drops IMP's sparsity, and later overrides fill in the distilled student's fields."""
    out = json.loads(json.dumps(base))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key.path=value")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section")
        parsed = parse_value(value)
        if leaf == "kind" and node.get("kind", parsed) != parsed:
            node.clear()
        node[leaf] = parsed
    return out


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """A validated config: defaults < file < overrides."""
    base = {}
    if path is not None:
        try:
            base = json.loads(Path(path).read_text())
        except FileNotFoundError as err:
            raise ValueError(f"config file {path} does not exist") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"config file {path} is not valid JSON: {err}") from err
        if not isinstance(base, dict):
            raise ValueError(f"config file {path} must hold a JSON object, not {type(base).__name__}")
    return RunConfig.model_validate(apply_overrides(base, overrides or []))
