"""Building a RunConfig from a file and `key.path=value` overrides (CLI, deployments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rmc_core.config import RunConfig


class DuplicateKey(ValueError):
    pass


# Errors shown on the one line, and the longest a field path or value is shown: a config
# with 50,000 bad entries once printed a 59.9 MB line.
SHOWN_ERRORS = 5
SHOWN_CHARS = 80
# No RunConfig field is nested deeper than a few levels; a deeper value is refused as such
# instead of ending in Python's RecursionError (JSON nested 100,000 deep did).
MAX_DEPTH = 64


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects as dicts, refusing a key given twice (json keeps the last silently, so
    `"epochs": 3, ..., "epochs": 1` would train one epoch without a word)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value`, without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def strict_json(text: str | bytes) -> Any:
    """JSON refusing a duplicate key and nesting deeper than any setting (ValueError)."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError as err:
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep; no rmc setting nests so deep") from err
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep; no rmc setting nests so deep")
    return value


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, lists, true/null), else the plain string."""
    try:
        return strict_json(text)
    except json.JSONDecodeError:
        return text


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """The field names of the section at `loc` in `model`, where a plain path of nested
    models leads there (None through a union, a list or a dict)."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return list(model.model_fields)


def one_line(err: ValidationError, model: type[BaseModel] | None = RunConfig) -> str:
    """The errors of a validation on one line, `field.path: message (got value)`: the first
    few, then how many more, so that a config with thousands of bad entries stays readable.
    An unknown key lists the keys its section has."""
    def shown(value: Any) -> str:
        return shorten(repr(value), 40)

    def valid(e: dict) -> str:
        keys = _fields_at(model, tuple(e["loc"][:-1])) if model is not None and e["type"] == "extra_forbidden" else None
        return f" (keys here: {', '.join(keys)})" if keys else ""

    errors = err.errors()
    text = "; ".join(shorten(f"{'.'.join(str(p) for p in e['loc']) or 'config'}", SHOWN_CHARS) + f": {shorten(e['msg'], 4 * SHOWN_CHARS)}"
                     + (f" (got {shown(e['input'])})" if "input" in e and not isinstance(e["input"], dict) else "")
                     + valid(e) for e in errors[:SHOWN_ERRORS])
    return text + (f"; and {len(errors) - SHOWN_ERRORS} more errors" if len(errors) > SHOWN_ERRORS else "")


def set_path(config: dict[str, Any], key: str, value: Any) -> None:
    """`config[a][b][c] = value` for key `a.b.c`, creating sections on the way.

    Setting a section's `kind` to another value starts that section afresh (the settings
    of the previous kind do not apply to the new one): `student.compression.kind=distilled`
    drops IMP's sparsity, and later settings fill in the distilled student's fields."""
    node = config
    *parents, leaf = key.split(".")
    if not all((*parents, leaf)):
        raise ValueError(f"{shorten(repr(key))} is not a field path (a.b.c)")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"{shorten(repr(p))} is not a section")
    if leaf == "kind" and node.get("kind", value) != value:
        node.clear()
    node[leaf] = value


def apply_overrides(base: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`teacher_train.epochs=2` sets base["teacher_train"]["epochs"] = 2 (`set_path`)."""
    out = json.loads(json.dumps(base))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {shorten(repr(item))} is not of the form key.path=value")
        try:
            set_path(out, key, parse_value(value))
        except ValueError as err:  # a key given twice, nesting deeper than any setting, a value as a section
            raise ValueError(f"override {shorten(repr(item))}: {err}") from err
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
            raise ValueError(f"config file {path} is not valid JSON: {shorten(str(err), 300)}") from err
        except ValueError as err:
            raise ValueError(f"config file {path}: {err}") from err
        if not isinstance(base, dict):
            raise ValueError(f"config file {path} must hold a JSON object, not {type(base).__name__}")
    return RunConfig.model_validate(apply_overrides(base, overrides or []))
