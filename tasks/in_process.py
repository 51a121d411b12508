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
from rmc_core.experiment import ArmRun
from rmc_core.experiment_run import ArmOutcome, RunArm
from rmc_core.store import DIGEST, IN_PROCESS, Ref, Store, read_record_bytes

RECORD_SUFFIX = ".json"


def read_in_process_record(path: Path) -> Ref:
    """The Ref a finished stage's record names; ValueError (UnreadableRecord or a validation
    error) for anything else: a link, a large file, a digest that is not one."""
    return Ref.model_validate_json(read_record_bytes(path))


def unsafe_in_process_records(store: Store) -> list[tuple[Path, str]]:
    """Every entry under `<store>/in-process` that is not a finished stage's record, and why
    (a crashed writer's temporary file included)."""
    folder = store.folder(IN_PROCESS)
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not (path.name.endswith(RECORD_SUFFIX) and DIGEST.fullmatch(path.name.removesuffix(RECORD_SUFFIX))):
            found.append((path, (f"{path} is not named as a stage record (<sha256>.json): a crashed writer's temporary "
                                 "file or something rmc did not write")))
            continue
        try:
            read_in_process_record(path)
        except (ValueError, OSError) as err:
            found.append((path, f"{path} is not a stage record: {one_line_error(err)}"))
    return found


def one_line_error(err: Exception) -> str:
    return err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)


def resuming(store: Store) -> Callable[..., Any]:
    records = store.folder(IN_PROCESS)

    def call(stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(stage).bind(*args, **kwargs)
        bound.apply_defaults()
        record = records / f"{call_key(stage, dict(bound.arguments))}{RECORD_SUFFIX}"
        try:
            ref = read_in_process_record(record)
            if store.exists(ref):
                return ref
        except (OSError, ValueError):  # no record, or one that is not rmc's: the stage runs again
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


def arm_in_process(store_root: Path, devices: list[str] | None = None) -> RunArm:
    """An experiment's runs (rmc_core/experiment_run.py) made in this process, resuming
    from the store as `run_in_process` does."""
    store = Store(store_root)
    call = resuming(store)

    def run_arm(arm: ArmRun) -> ArmOutcome:
        outputs = pipeline.run(arm.config, store, devices or default_devices(), call=call)
        return ArmOutcome(outputs.report, outputs.models, outputs.data)

    return run_arm
