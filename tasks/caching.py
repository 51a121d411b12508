"""The cache policy of every rmc task: rerun a stage only when its inputs or code changed,
or when the artifact its cached result points to has left the store.

Key = hash(task name, the stage's inputs as JSON, rmc_core source digest). The inputs are
configs and upstream `Ref`s, which carry content digests, so a key changes exactly when an
upstream artifact's content changes. The store object, the device and the progress label
and the progress callback are left out: where a model trains does not change what it is.
Prefect's TASK_SOURCE only hashes the wrapped function's own lines, so "its code" is the
digest of every rmc_core module that `rmc_core.stages` reaches by import. Reporting and
run-planning modules (bench_report, profiles, ...) are outside that set: fixing a table's
layout must not throw away hours of cached training.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel

import rmc_core
from rmc_core.store import Ref, Store

NOT_CONTENT = ("store", "device", "desc", "on_progress")
MAX_REKEYS = 8


STAGE_ENTRY = "rmc_core.stages"


def _source(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def stage_sources(entry: str = STAGE_ENTRY) -> list[Path]:
    """The rmc_core files whose code can change an artifact: `entry`, the rmc_core modules it
    imports (transitively, read from the source with ast, nothing executed) and their
    packages' __init__ files."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in seen or (path := _source(prefix)) is None:
                continue
            seen.add(prefix)
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rmc_core":
                    todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    todo += [a.name for a in node.names if a.name.split(".")[0] == "rmc_core"]
    return sorted(p for p in map(_source, seen) if p is not None)


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 over the sources of `stage_sources()`: editing the method invalidates its results."""
    root = Path(rmc_core.__file__).parent
    h = hashlib.sha256(rmc_core.__version__.encode())
    for f in stage_sources():
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


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


@dataclass
class ArtifactCachePolicy(CachePolicy):
    """Inputs + code, re-keyed while the cached result's artifacts are missing.

    When an artifact is deleted, the record under the plain key still points at it. The
    key then moves to hash(key, missing digests): a miss, so the stage reruns and its new
    record lives under the new key, which the next run finds by the same walk.
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        content = {k: jsonable(v) for k, v in inputs.items() if k not in NOT_CONTENT}
        key = hash_objects(task_ctx.task.name, content, code_version(), raise_on_failure=True)
        store: Store = inputs["store"]
        results = task_ctx.result_store
        for _ in range(MAX_REKEYS):
            if not results.exists(key):
                return key
            missing = [r.digest for r in refs_in(results.read(key).result) if not store.exists(r)]
            if not missing:
                return key
            key = hash_objects(key, "missing", missing, raise_on_failure=True)
        return key
