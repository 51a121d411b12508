"""Building a RunConfig from a file and `key.path=value` overrides (CLI, deployments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rmc_core.config import RunConfig


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects as dicts, refusing a key given twice (json keeps the last silently, so
    `"epochs": 3, ..., "epochs": 1` would train one epoch without a word)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def strict_json(text: str | bytes) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicates)


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, lists, true/null), else the plain string."""
    try:
        return strict_json(text)
    except json.JSONDecodeError:
        return text


def one_line(err: ValidationError) -> str:
    """Every error of a validation on one line: `field.path: message (got value)`."""
    def shown(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                     + (f" (got {shown(e['input'])})" if "input" in e and not isinstance(e["input"], dict) else "")
                     for e in err.errors())


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
        try:
            parsed = parse_value(value)
        except DuplicateKey as err:
            raise ValueError(f"override {item!r}: {err}") from err
        if leaf == "kind" and node.get("kind", parsed) != parsed:
            node.clear()
        node[leaf] = parsed
    return out


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """A validated config: defaults < file < overrides."""
    base = {}
    if path is not None:
        try:
            base = strict_json(Path(path).read_text())
        except FileNotFoundError as err:
            raise ValueError(f"config file {path} does not exist") from err
        except (json.JSONDecodeError, UnicodeDecodeError, DuplicateKey) as err:
            raise ValueError(f"config file {path} is not valid JSON: {err}") from err
        if not isinstance(base, dict):
            raise ValueError(f"config file {path} must hold a JSON object, not {type(base).__name__}")
    return RunConfig.model_validate(apply_overrides(base, overrides or []))
