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
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

Kind = Literal["data", "model", "tables"]


class Ref(BaseModel):
    """A pointer to one artifact, by content."""

    model_config = ConfigDict(frozen=True)
    kind: Kind
    digest: str


class MissingArtifact(FileNotFoundError):
    """A Ref whose artifact is not in this store (deleted, or another store root)."""


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


class Store:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _final(self, ref: Ref) -> Path:
        return self.root / "objects" / ref.kind / ref.digest

    def exists(self, ref: Ref) -> bool:
        return self._final(ref).is_dir()

    def path(self, ref: Ref) -> Path:
        final = self._final(ref)
        if not final.is_dir():
            raise MissingArtifact(f"{ref.kind} artifact {ref.digest[:12]} is not in the store at {self.root}")
        return final

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

    def tables(self, ref: Ref) -> dict[str, pd.DataFrame]:
        return {p.stem: pd.read_parquet(p) for p in sorted(self.path(ref).glob("*.parquet"))}

    def table(self, ref: Ref, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(ref) / f"{name}.parquet")

    def meta(self, ref: Ref) -> dict:
        return json.loads((self.path(ref) / "meta.json").read_text())
