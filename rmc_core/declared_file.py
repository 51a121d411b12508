"""Reading a declaration file (a task, an experiment): JSON or YAML, one object.

Both formats are read strictly: JSON refuses a key given twice (rmc_core/overrides.py),
YAML is read with `safe_load` (no Python objects). Errors name the file and say what kind
of declaration it should hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

YAML_SUFFIXES = (".yaml", ".yml")
SUFFIXES = (".json", *YAML_SUFFIXES)


def read_declaration(path: Path, what: str) -> dict[str, Any]:
    """The object in the JSON or YAML file `path`; `what` ("task file", "experiment file")
    names it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path} cannot be read: {err}") from err
    if path.suffix.lower() in YAML_SUFFIXES:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{what} {path} is not valid YAML: {str(err)[:300]}") from err
    else:
        from rmc_core.overrides import strict_json

        try:
            raw = strict_json(text)
        except ValueError as err:
            raise ValueError(f"{what} {path} is not valid JSON: {str(err)[:300]}") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{what} {path} must hold an object, not {type(raw).__name__}")
    return raw
