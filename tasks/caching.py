"""The cache policy of every rmc task: rerun a stage only when its inputs or code changed,
or when the artifact its cached result points to has left the store.

Key = hash(task name, the stage's inputs as JSON, the stage's code digest). The inputs are
configs and upstream `Ref`s, which carry content digests, so a key changes exactly when an
upstream artifact's content changes. The store object, the device and the progress label
and the progress callback are left out: where a model trains does not change what it is.
Prefect's TASK_SOURCE only hashes the wrapped function's own lines; the code digest
(tasks/code_digest.py) covers every definition the stage reaches, and only those, so
fixing a metric re-evaluates without retraining, and editing one method's loss retrains
only that method's students.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects

from rmc.tasks.stage_key import code_of, content_of, refs_in
from rmc_core.store import Store

MAX_REKEYS = 8


@dataclass
class ArtifactCachePolicy(CachePolicy):
    """Inputs + code, re-keyed while the cached result's artifacts are missing.

    When an artifact is deleted, the record under the plain key still points at it. The
    key then moves to hash(key, missing digests): a miss, so the stage reruns and its new
    record lives under the new key, which the next run finds by the same walk.
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        stage = task_ctx.task.fn  # functools.wraps keeps the rmc_core stage's module and name
        key = hash_objects(task_ctx.task.name, content_of(inputs), code_of(stage, inputs), raise_on_failure=True)
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
