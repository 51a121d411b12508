"""A content-addressed artifact store on a local (or shared) filesystem.

Artifacts are directories: a model (safetensors + config + tokenizer) or tables (parquet).
An artifact is written under `tmp/`, hashed, then renamed to `objects/<kind>/<digest>` in
one atomic step, so a reader sees either nothing or a complete artifact: a crash mid-write
leaves only a temp directory, and two writers of the same content leave one copy.
Pipeline stages exchange `Ref`s (kind + digest), which are small, hashable and say
exactly which bytes they mean. Files under `_run/` record how an artifact was made
(timings, throughput) and stay out of the digest: two runs that produce the same weights
produce the same artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

import pandas as pd
from pydantic import BaseModel, ConfigDict

Kind = Literal["data", "model", "tables"]
KINDS: tuple[str, ...] = get_args(Kind)
DIGEST = re.compile(r"[0-9a-f]{64}")
# The Prefect layer's cached task results (tasks/result_records.py): JSON naming artifacts.
RESULT_RECORDS = "prefect-results"
# The in-process runner's records of finished stages (tasks/in_process.py): JSON naming artifacts.
IN_PROCESS = "in-process"
# What a store folder holds: artifacts, writers' temporary folders, what was moved aside.
FOLDERS = ("objects", "tmp", "quarantine", RESULT_RECORDS, IN_PROCESS)


class Ref(BaseModel):
    """A pointer to one artifact, by content."""

    model_config = ConfigDict(frozen=True)
    kind: Kind
    digest: str


class MissingArtifact(FileNotFoundError):
    """A Ref whose artifact is not in this store (deleted, quarantined, or another store root)."""


log = logging.getLogger(__name__)
# Artifacts whose bytes were hashed (or written) by this process: each is verified once,
# on first use, not on every read (a 92 MB MiniLM checkpoint hashed in 0.72 s on a busy
# 2-core machine: small next to any stage that reads one).
_verified: set[Path] = set()
_verified_lock = threading.Lock()


RUN_INFO = "_run"


def directory_digest(path: Path) -> str:
    """sha256 over every content file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.relative_to(path).parts[0] != RUN_INFO):
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def ensure_writable(path: Path, what: str, probe_bytes: int = 1 << 16) -> None:
    """Create `path` and prove data can be written there, so that an unwritable or full
    `--out` or store fails before the run, not after hours of training: the probe holds
    real bytes, flushed to disk (an empty file needs no free block, so it cannot see a
    full disk)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * probe_bytes)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as err:
        raise PermissionError(f"{what} {path} is not a writable folder: {err.strerror or err}") from err


class Store:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _final(self, ref: Ref) -> Path:
        return self.root / "objects" / ref.kind / ref.digest

    def exists(self, ref: Ref) -> bool:
        """The artifact is present and its bytes hash to its name (a corrupt one is
        quarantined and reported absent, so that its stage is recomputed)."""
        return self._final(ref).is_dir() and self.verify(ref)

    def path(self, ref: Ref) -> Path:
        """The artifact's folder, verified against its digest on first use in this process."""
        if not self.exists(ref):
            raise MissingArtifact(f"{ref.kind} artifact {ref.digest[:12]} is not in the store at {self.root}")
        return self._final(ref)

    def verify(self, ref: Ref) -> bool:
        """Hash the artifact once per process; move it to `quarantine/` if its bytes changed."""
        final = self._final(ref).resolve()
        with _verified_lock:
            if final in _verified:
                return True
        if directory_digest(final) == ref.digest:
            with _verified_lock:
                _verified.add(final)
            return True
        self.quarantine(ref)
        return False

    def quarantine(self, ref: Ref) -> Path:
        """Move a corrupt artifact aside (kept for inspection, never used again)."""
        target = self.set_aside(self._final(ref), f"{ref.kind}-{ref.digest}")
        log.warning("%s artifact %s does not match its digest (corrupt or partial); moved to %s and will be recomputed",
                    ref.kind, ref.digest[:12], target)
        return target

    def set_aside(self, path: Path, label: str) -> Path:
        """Move a file or folder of the store to `quarantine/` under a fresh name."""
        target = self.root / "quarantine" / f"{label}-{uuid.uuid4().hex[:8]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, target)
        except FileNotFoundError:  # another thread moved it first
            pass
        return target

    def refs(self) -> list[Ref]:
        """Every published artifact (entries that are not `objects/<kind>/<digest>` folders
        are not artifacts: see `strays`)."""
        objects = self.root / "objects"
        if not objects.is_dir():
            return []
        return [Ref(kind=kind.name, digest=d.name) for kind in sorted(objects.iterdir()) if kind.name in KINDS and kind.is_dir()
                for d in sorted(kind.iterdir()) if DIGEST.fullmatch(d.name) and d.is_dir()]

    def strays(self) -> list[Path]:
        """Everything in the store that rmc did not put there: unknown top-level entries,
        and entries under `objects/` that are not artifact folders."""
        if not self.root.is_dir():
            return []
        found = [p for p in sorted(self.root.iterdir()) if p.name not in FOLDERS]
        objects = self.root / "objects"
        if objects.is_dir():
            for kind in sorted(objects.iterdir()):
                if kind.name not in KINDS or not kind.is_dir() or kind.is_symlink():
                    found.append(kind)
                    continue
                found += [d for d in sorted(kind.iterdir()) if not DIGEST.fullmatch(d.name) or not d.is_dir() or d.is_symlink()]
        return found

    def unreadable_records(self, ref: Ref) -> list[Path]:
        """The artifact's `_run` records that are not JSON objects (they sit outside its
        digest, so only this check sees them)."""
        folder = self._final(ref) / RUN_INFO
        bad = []
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            try:
                if not path.is_file() or path.is_symlink() or not isinstance(json.loads(path.read_bytes()), dict):
                    bad.append(path)
            except (ValueError, OSError):
                bad.append(path)
        return bad

    def put(self, kind: Kind, write: Callable[[Path], None]) -> Ref:
        """Let `write` fill a fresh directory, then publish it atomically under its digest."""
        tmp = self.root / "tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            write(tmp)
            ref = Ref(kind=kind, digest=directory_digest(tmp))
            final = self._final(ref)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
            with _verified_lock:
                _verified.add(final.resolve())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return ref

    def put_tables(self, tables: dict[str, pd.DataFrame], kind: Kind = "tables", meta: dict | None = None) -> Ref:
        def write(d: Path) -> None:
            for name, frame in tables.items():
                frame.to_parquet(d / f"{name}.parquet", index=False)
            if meta is not None:
                (d / "meta.json").write_text(json.dumps(meta, sort_keys=True, indent=1))

        return self.put(kind, write)

    def write_record(self, ref: Ref, name: str, record: dict) -> None:
        """Record how an artifact was made, in `<artifact>/_run/<name>.json`: outside its
        digest, so a record never changes a cache key. The first record of a name stays: it
        describes the run that computed the artifact, which a later run that made the same
        bytes (or reused them) must not overwrite."""
        path = self._record_path(ref, name)
        path.parent.mkdir(exist_ok=True)
        try:
            with open(path, "x") as f:
                json.dump(record, f, indent=1, sort_keys=True)
        except FileExistsError:
            return

    def record(self, ref: Ref, name: str) -> dict | None:
        """A record written by `write_record`; None if the artifact has none of that name."""
        path = self._record_path(ref, name)
        return json.loads(path.read_text()) if path.exists() else None

    def _record_path(self, ref: Ref, name: str) -> Path:
        return self.path(ref) / RUN_INFO / f"{name}.json"

    def tables(self, ref: Ref) -> dict[str, pd.DataFrame]:
        return {p.stem: pd.read_parquet(p) for p in sorted(self.path(ref).glob("*.parquet"))}

    def table(self, ref: Ref, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(ref) / f"{name}.parquet")

    def meta(self, ref: Ref) -> dict:
        return json.loads((self.path(ref) / "meta.json").read_text())
