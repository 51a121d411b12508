"""The DAG in this process, without Prefect, resuming from the store.

Where Prefect is not installed or no server can run (a lent GPU node, a batch job), the
pure pipeline (`rmc_core.pipeline.run`) still runs every stage; this `call` hook makes a
rerun resume: each finished stage leaves a record under `<store>/in-process/`, keyed as
the Prefect cache policy keys it (stage_key.py: inputs and the code they reach), naming
the artifact it wrote. A record whose artifact has left the store is ignored, so that
stage runs again. Records are written atomically: a run killed mid-stage leaves none for it.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from rmc.tasks.stage_key import call_key
from rmc_core import pipeline
from rmc_core.config import RunConfig
from rmc_core.devices import default_devices
from rmc_core.store import IN_PROCESS, Ref, Store


def resuming(store: Store) -> Callable[..., Any]:
    records = store.root / IN_PROCESS

    def call(stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(stage).bind(*args, **kwargs)
        bound.apply_defaults()
        record = records / f"{call_key(stage, dict(bound.arguments))}.json"
        try:
            ref = Ref.model_validate_json(record.read_text())
            if store.exists(ref):
                return ref
        except (OSError, ValidationError):
            pass
        ref = stage(*args, **kwargs)
        records.mkdir(parents=True, exist_ok=True)
        fresh = records / f".{record.name}.{uuid.uuid4().hex[:8]}"
        fresh.write_text(ref.model_dump_json())
        os.replace(fresh, record)
        return ref

    return call


def run_in_process(cfg: RunConfig, store_root: Path, devices: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """`rmc_core.pipeline.run_local` that resumes: the report's tables and the measured ones.
    With no devices named it takes this machine's, as `rmc run` does (every GPU, else the
    CPU); the bare pipeline's default is the CPU, which once kept a GPU machine idle."""
    return pipeline.run_local(cfg, store_root, devices or default_devices(), call=resuming(Store(store_root)))
