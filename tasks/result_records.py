"""Cached task results as data, never as code: the records under `<store>/prefect-results`.

Prefect persists a task's result with the serializer named *in the record file itself*, by
default cloudpickle, and `ResultRecord.deserialize` unpickles whatever a file names. The
store is meant to be shared (an NFS folder between machines), so whoever can write the
share could make every rmc process that reads it run their code. Two gates close that:

- every rmc task persists with `RefSerializer` (type `rmc-ref`): a stage returns a `Ref`
  (or None), written as a small JSON object that names the artifact by digest;
- `RecordStorage` reads a record only if it is exactly that shape; anything else (a pickle
  payload, another serializer, a malformed file) raises `UnsafeRecord` before Prefect's
  deserializer sees a byte. Prefect treats an unreadable record as absent, so the stage is
  recomputed and its record rewritten; `rmc verify` reports and quarantines such files.

A failed stage's exception is persisted too (Prefect writes it under a random key); it is
kept as its type's name and message, and read back as a `StoredFailure`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from prefect.filesystems import LocalFileSystem
from prefect.serializers import Serializer
from pydantic import BaseModel, ConfigDict, ValidationError

from rmc_core.store import RESULT_RECORDS, Ref, Store, UnreadableRecord, read_record_bytes

SERIALIZER = "rmc-ref"


class UnsafeRecord(ValueError):
    """A file under prefect-results that is not an rmc result record (so it is never deserialized)."""


class StoredFailure(RuntimeError):
    """A stage's exception as it was persisted: its type's name and its message, not the object."""


class _Failure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    message: str


class _Payload(BaseModel):
    """The one shape a result may have: a Ref, nothing, or a failure's name and message."""

    model_config = ConfigDict(extra="forbid")
    ref: Ref | None = None
    failure: _Failure | None = None


class RefSerializer(Serializer):
    """A stage's result as JSON: `{"ref": {"kind": ..., "digest": ...}}`, `{}` for None, or
    `{"failure": {"type": ..., "message": ...}}`. Loading builds only these values."""

    type: Literal["rmc-ref"] = SERIALIZER

    def dumps(self, obj: Ref | BaseException | None) -> bytes:
        if isinstance(obj, BaseException):
            payload = _Payload(failure=_Failure(type=type(obj).__qualname__, message=str(obj)))
        elif obj is None or isinstance(obj, Ref):
            payload = _Payload(ref=obj)
        else:
            raise TypeError(f"an rmc stage returns a Ref or None, not {type(obj).__name__}")
        return payload.model_dump_json(exclude_none=True).encode()

    def loads(self, blob: bytes) -> Ref | StoredFailure | None:
        try:
            payload = _Payload.model_validate_json(blob)
        except ValidationError as err:
            raise UnsafeRecord(f"not an rmc result: {err.errors()[0]['msg']}") from err
        if payload.ref is not None and payload.failure is not None:
            raise UnsafeRecord("an rmc result holds a ref or a failure, not both")
        if payload.failure is not None:
            return StoredFailure(f"{payload.failure.type}: {payload.failure.message}")
        return payload.ref


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    storage_key: str | None = None
    expiration: str | None = None
    serializer: dict[str, Any]
    prefect_version: str
    storage_block_id: str | None = None


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: _Metadata
    result: str


def check_record(content: bytes, where: str) -> Ref | StoredFailure | None:
    """The result a record file holds, if it is an rmc record; UnsafeRecord otherwise."""
    try:
        record = _Record.model_validate_json(content)
    except ValidationError as err:
        raise UnsafeRecord(f"{where} is not an rmc result record: {err.errors()[0]['msg']}") from err
    if record.metadata.serializer != {"type": SERIALIZER}:
        raise UnsafeRecord(f"{where} names serializer {json.dumps(record.metadata.serializer)}; "
                           f"rmc reads only {SERIALIZER!r} records (it never unpickles)")
    try:
        return RefSerializer().loads(record.result.encode())
    except UnsafeRecord as err:
        raise UnsafeRecord(f"{where}: {err}") from err


class RecordStorage(LocalFileSystem):
    """Prefect's local result storage that hands Prefect only checked rmc records."""

    _block_type_slug = "rmc-record-storage"

    async def aread_path(self, path: str) -> bytes:
        return self._checked(path)

    def read_path(self, path: str, _sync: bool | None = None) -> bytes:  # type: ignore[override]
        """Synchronous only (Prefect's async callers use `aread_path`)."""
        return self._checked(path)

    def _checked(self, path: str) -> bytes:
        """The record's bytes, read only if it is a small regular file (never through a
        link, never a multi-gigabyte file read whole) holding an rmc record."""
        where = self._resolve_path(path)
        try:
            content = read_record_bytes(where)
        except FileNotFoundError as err:  # Prefect's own reader says the same for a missing key
            raise ValueError(f"Path {where} does not exist.") from err
        except UnreadableRecord as err:
            raise UnsafeRecord(str(err)) from err
        check_record(content, str(where))
        return content


def flow_results() -> dict[str, Any]:
    """The result settings of every rmc flow: a flow's return value is never persisted, and
    the exception of a failed flow run, which Prefect writes whatever the settings (under
    `$PREFECT_HOME/storage`), is written as rmc's data-only record (its type's name and
    message), never as a pickle or with Prefect's JSON serializer, which imports the classes
    a file names when read."""
    return {"result_serializer": RefSerializer(), "persist_result": False}


def record_storage(store_root: Path) -> RecordStorage:
    """The store's record storage, saved on the Prefect server (Prefect accepts a custom
    result storage only once saved, so that a worker elsewhere can read results back by the
    block's id): one block per store folder, named after its path's digest. A block saved
    by an earlier run is loaded, not saved again: overwriting one took ~2 s of retries."""
    basepath = str(Store(store_root).folder(RESULT_RECORDS))
    name = f"rmc-records-{hashlib.sha256(basepath.encode()).hexdigest()[:16]}"
    try:
        saved = RecordStorage.load(name)
        if saved.basepath == basepath:
            return saved
    except ValueError:  # no such block yet
        pass
    storage = RecordStorage(basepath=basepath)
    storage.save(name, overwrite=True)
    return storage


def unsafe_records(store_root: Path) -> list[tuple[Path, str]]:
    """Every entry under the store's result records that rmc would refuse to read, and why."""
    folder = Store(store_root).folder(RESULT_RECORDS)
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            check_record(read_record_bytes(path), str(path))
        except (UnsafeRecord, UnreadableRecord) as err:
            found.append((path, str(err)))
    return found
