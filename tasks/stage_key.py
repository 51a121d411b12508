"""What identifies one stage call, shared by the Prefect cache policy (caching.py) and the
in-process runner (in_process.py): the stage, its inputs as JSON, the digest of the code it
reaches, and the versions of the libraries that compute its numbers. The store, the device,
the progress label and callback are left out: where a model trains does not change what it is."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel

from rmc.tasks.code_digest import stage_digest
from rmc_core.store import Ref

NOT_CONTENT = ("store", "device", "desc", "on_progress")
# The libraries whose code computes a stage's numbers (tensors, tokens, tables, statistics),
# pinned exactly in pyproject.toml: a stage computed under other versions is another stage,
# and runs merged across sessions share their stages only under the same ones.
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "datasets", "numpy", "pandas", "pyarrow", "scipy",
             "scikit-learn", "nltk", "lemminflect")


@cache
def library_versions() -> dict[str, str | None]:
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: installed(name) for name in LIBRARIES}


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def refs_in(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in refs_in(v)]
    return []


def content_of(inputs: dict[str, Any]) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in inputs.items() if k not in NOT_CONTENT}


def code_of(stage: Callable[..., Any], inputs: dict[str, Any]) -> str:
    """The digest of every definition `stage` reaches with these inputs (a method's own
    loss, a compression's own hooks), so editing one retrains only what uses it."""
    parameters = inspect.signature(stage).parameters
    return stage_digest(stage.__module__, stage.__name__,
                        {n: inputs.get(n, p.default if p.default is not p.empty else None) for n, p in parameters.items()})


def call_key(stage: Callable[..., Any], inputs: dict[str, Any]) -> str:
    payload = json.dumps([stage.__module__, stage.__name__, content_of(inputs), code_of(stage, inputs), library_versions()],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
