"""A content-addressed artifact store on a local (or shared) filesystem.

Artifacts are directories: a model (safetensors + config + tokenizer) or tables (parquet).
An artifact is written under `tmp/`, hashed, then renamed to `objects/<kind>/<digest>` in
one atomic step, so a reader sees either nothing or a complete artifact: a crash mid-write
leaves only a temp directory, and two writers of the same content leave one copy.
Pipeline stages exchange `Ref`s (kind + digest), which are small, hashable and say
exactly which bytes they mean. Files under `_run/` record how an artifact was made
(timings, throughput) and stay out of the digest: two runs that produce the same weights
produce the same artifact.

The store only ever touches what is inside its own folder. A digest is checked against
its format before it becomes a path (a record naming `../../x` would otherwise move a
folder from outside into the quarantine); the store's own folders must not be symbolic
links, and a link inside an artifact makes it corrupt (it would read or move what lies
outside). Records (JSON naming or describing artifacts) are read only up to a size bound.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, get_args

import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from rmc_core.artifact_layout import contents_problem

Kind = Literal["data", "model", "tables"]
KINDS: tuple[str, ...] = get_args(Kind)
DIGEST = re.compile(r"[0-9a-f]{64}")
# The Prefect layer's cached task results (tasks/result_records.py): JSON naming artifacts.
RESULT_RECORDS = "prefect-results"
# The in-process runner's records of finished stages (tasks/in_process.py): JSON naming artifacts.
IN_PROCESS = "in-process"
# What a store folder holds: artifacts, writers' temporary folders, what was moved aside.
FOLDERS = ("objects", "tmp", "quarantine", RESULT_RECORDS, IN_PROCESS)
# A record is a few hundred bytes (a Ref, a stage's timings); anything far larger is not one,
# and reading it whole would cost minutes and gigabytes (a 2 GiB sparse file did).
MAX_RECORD_BYTES = 1 << 20


def check_digest(value: str) -> str:
    """`value` if it is a sha256 hex digest, the only thing a digest may be: it becomes a path."""
    if not isinstance(value, str) or not DIGEST.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"a digest is 64 lowercase hex characters (a sha256), not {shown}")
    return value


class Ref(BaseModel):
    """A pointer to one artifact, by content."""

    model_config = ConfigDict(frozen=True)
    kind: Kind
    digest: str

    @field_validator("digest")
    @classmethod
    def _digest_format(cls, value: str) -> str:
        return check_digest(value)


class MissingArtifact(FileNotFoundError):
    """A Ref whose artifact is not in this store (deleted, quarantined, or another store root)."""


class UnsafeStore(OSError):
    """A store path that is a symbolic link or would lead outside the store: refused, never followed."""


class UnreadableRecord(ValueError):
    """A record file that is not a small regular file holding the JSON rmc wrote."""


log = logging.getLogger(__name__)
# Artifacts whose bytes were hashed (or written) by this process: each is verified once,
# on first use, not on every read (a 92 MB MiniLM checkpoint hashed in 0.72 s on a busy
# 2-core machine: small next to any stage that reads one).
_verified: set[Path] = set()
_verified_lock = threading.Lock()


RUN_INFO = "_run"


def read_record_bytes(path: Path, limit: int = MAX_RECORD_BYTES) -> bytes:
    """A record file's bytes; UnreadableRecord, unread, for a link, anything but a regular
    file, or a file over `limit` bytes. FileNotFoundError when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnreadableRecord(f"{path} is a symbolic link, not a record") from err
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableRecord(f"{path} is not a regular file")
        if info.st_size > limit:
            raise UnreadableRecord(f"{path} holds {info.st_size:,} bytes, more than a record's {limit:,}; not read")
        return f.read(limit + 1)


def _entries(path: Path) -> Iterator[tuple[str, Path]]:
    """Every file under `path` as (relative posix path, path); UnsafeStore for a link or a
    special file anywhere below it (hashing or moving one would reach outside the store)."""
    for folder, dirs, files in os.walk(path, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            entry = Path(folder) / name
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise UnsafeStore(f"{entry} is a symbolic link")
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeStore(f"{entry} is not a regular file or folder")
            if stat.S_ISREG(mode):
                yield entry.relative_to(path).as_posix(), entry


def directory_digest(path: Path) -> str:
    """sha256 over every content file's relative path and bytes, in sorted order."""
    return _digest(list(_entries(path)))


def _content(entries: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """The entries that are the artifact's content (its `_run` records left out)."""
    return [e for e in entries if e[0].split("/")[0] != RUN_INFO]


def _digest(entries: list[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for rel, f in sorted(_content(entries)):
        h.update(rel.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def no_space(err: BaseException) -> bool:
    """A write that failed for want of disk space, whatever library raised it (safetensors'
    SafetensorError and pyarrow's errors carry only the OS's words)."""
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left on device" in str(err)


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

    def folder(self, *parts: str) -> Path:
        """One of the store's own folders (`objects/model`, `quarantine`, ...), refused if it
        or a folder above it inside the store is a symbolic link: what the store writes or
        moves there would land outside it."""
        path = self.root
        for part in parts:
            path = path / part
            if path.is_symlink():
                raise UnsafeStore(f"{path} is a symbolic link; the store's folders must be real folders inside "
                                  f"{self.root} (replace the link with a folder, or use another --store)")
        return path

    def check_layout(self) -> None:
        """Refuse a store whose own folders are links, before a run writes anything."""
        for name in FOLDERS:
            self.folder(name)
        for kind in KINDS:
            self.folder("objects", kind)

    def _final(self, ref: Ref) -> Path:
        return self.folder("objects", ref.kind) / check_digest(ref.digest)

    def exists(self, ref: Ref) -> bool:
        """The artifact is present and sound (its bytes hash to its name, it holds what its
        kind needs, its records are readable); an unsound one is quarantined and reported
        absent, so that its stage is recomputed."""
        final = self._final(ref)
        return (final.is_symlink() or final.is_dir()) and self.verify(ref)

    def path(self, ref: Ref) -> Path:
        """The artifact's folder, verified on first use in this process."""
        if not self.exists(ref):
            raise MissingArtifact(f"{ref.kind} artifact {ref.digest[:12]} is not in the store at {self.root}")
        return self._final(ref)

    def verify(self, ref: Ref) -> bool:
        """Check the artifact once per process; move it to `quarantine/` if it is unsound."""
        return self.check(ref) is None

    def check(self, ref: Ref, fresh: bool = False) -> str | None:
        """Why the artifact is unsound (it was then quarantined), or None. Checked once per
        process unless `fresh` (`rmc verify` checks everything again)."""
        final = self._final(ref)
        if not final.is_symlink():
            with _verified_lock:
                if not fresh and final.resolve() in _verified:
                    return None
        problem = self.problem(ref)
        if problem is None:
            with _verified_lock:
                _verified.add(final.resolve())
            return None
        self.quarantine(ref, problem)
        return problem

    def problem(self, ref: Ref) -> str | None:
        """What is wrong with a stored artifact: a link, bytes that do not hash to its name,
        contents that are not its kind's, or a run record that is not one."""
        final = self._final(ref)
        if final.is_symlink():
            return f"{final} is a symbolic link, not an artifact folder"
        if not final.is_dir():
            return f"{final} is not a folder"
        try:
            entries = list(_entries(final))
        except UnsafeStore as err:
            return str(err)
        if _digest(entries) != ref.digest:
            return "its bytes do not match its digest (corrupt or partial)"
        if (why := contents_problem(ref.kind, [rel for rel, _ in _content(entries)])) is not None:
            return why
        bad = self.unreadable_records(ref)
        return f"run record {bad[0][0]} {bad[0][1]}" if bad else None

    def quarantine(self, ref: Ref, why: str = "it does not match its digest (corrupt or partial)") -> Path:
        """Move an unsound artifact aside (kept for inspection, never used again)."""
        target = self.set_aside(self._final(ref), f"{ref.kind}-{ref.digest}")
        log.warning("%s artifact %s: %s; moved to %s and will be recomputed", ref.kind, ref.digest[:12], why, target)
        return target

    def set_aside(self, path: Path, label: str) -> Path:
        """Move a file, folder or link of the store to `quarantine/` under a fresh name (a
        link is moved itself, never what it points to)."""
        root = self.root.resolve()
        if path.parent.resolve() != root and root not in path.parent.resolve().parents:
            raise UnsafeStore(f"{path} is outside the store {self.root}; not moved")
        target = self.folder("quarantine") / f"{label}-{uuid.uuid4().hex[:8]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, target)
        except FileNotFoundError:  # another thread moved it first
            pass
        return target

    def refs(self) -> list[Ref]:
        """Every published artifact (entries that are not `objects/<kind>/<digest>` folders
        are not artifacts: see `strays`)."""
        objects = self.folder("objects")
        if not objects.is_dir():
            return []
        return [Ref(kind=kind.name, digest=d.name) for kind in sorted(objects.iterdir())
                if kind.name in KINDS and kind.is_dir() and not kind.is_symlink()
                for d in sorted(kind.iterdir()) if DIGEST.fullmatch(d.name) and (d.is_dir() or d.is_symlink())]

    def strays(self) -> list[Path]:
        """Everything in the store that rmc did not put there: unknown top-level entries,
        and entries under `objects/` that are not artifact folders."""
        if not self.root.is_dir():
            return []
        found = [p for p in sorted(self.root.iterdir()) if p.name not in FOLDERS]
        objects = self.root / "objects"
        if objects.is_dir() and not objects.is_symlink():
            for kind in sorted(objects.iterdir()):
                if kind.name not in KINDS or not kind.is_dir() or kind.is_symlink():
                    found.append(kind)
                    continue
                found += [d for d in sorted(kind.iterdir()) if not DIGEST.fullmatch(d.name) or not (d.is_dir() or d.is_symlink())]
        return found

    def unreadable_records(self, ref: Ref) -> list[tuple[Path, str]]:
        """The artifact's `_run` records that are not small JSON objects, and why (they sit
        outside its digest, so only this check sees them)."""
        folder = self._final(ref) / RUN_INFO
        bad = []
        for path in sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []:
            try:
                if not isinstance(json.loads(read_record_bytes(path)), dict):
                    bad.append((path, "is not a JSON object"))
            except UnreadableRecord as err:
                bad.append((path, str(err).removeprefix(f"{path} ")))
            except (ValueError, OSError):
                bad.append((path, "is not a JSON object"))
        return bad

    def put(self, kind: Kind, write: Callable[[Path], None]) -> Ref:
        """Let `write` fill a fresh directory, then publish it atomically under its digest."""
        tmp = self.folder("tmp") / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            try:
                write(tmp)
            except Exception as err:
                if no_space(err):
                    raise OSError(errno.ENOSPC, f"No space left on device while writing a {kind} artifact into "
                                                f"{tmp.parent} (the store); free space there and run again") from err
                raise
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
        bytes (or reused them) must not overwrite. Written whole (a temporary file linked
        into place), so a reader never sees half a record."""
        path = self._record_path(ref, name)
        path.parent.mkdir(exist_ok=True)
        fresh = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}"
        try:
            fresh.write_text(json.dumps(record, indent=1, sort_keys=True))
            os.link(fresh, path)
        except FileExistsError:
            return
        except OSError as err:
            if no_space(err):
                raise OSError(errno.ENOSPC, f"No space left on device while writing {path}") from err
            raise
        finally:
            fresh.unlink(missing_ok=True)

    def record(self, ref: Ref, name: str) -> dict | None:
        """A record written by `write_record`; None if the artifact has none of that name."""
        path = self._record_path(ref, name)
        try:
            value = json.loads(read_record_bytes(path))
        except FileNotFoundError:
            return None
        except ValueError as err:
            raise UnreadableRecord(f"run record {path} is not one rmc wrote ({err}); `rmc verify --store {self.root}` "
                                   "quarantines it with its artifact, and the next run recomputes both") from err
        if not isinstance(value, dict):
            raise UnreadableRecord(f"run record {path} is not a JSON object; `rmc verify --store {self.root}` quarantines it")
        return value

    def _record_path(self, ref: Ref, name: str) -> Path:
        return self.path(ref) / RUN_INFO / f"{name}.json"

    def tables(self, ref: Ref) -> dict[str, pd.DataFrame]:
        return {p.stem: pd.read_parquet(p) for p in sorted(self.path(ref).glob("*.parquet"))}

    def table(self, ref: Ref, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(ref) / f"{name}.parquet")

    def meta(self, ref: Ref) -> dict:
        return json.loads((self.path(ref) / "meta.json").read_text())
