"""Content digests of what a run reads from outside the store: a task's local data files
and a local model folder.

A stage's cache key is its inputs and code; a path names a file, not its contents, so an
edited data file or a teacher fine-tuned again at the same path would be a stale cache hit.
The digest of their bytes goes into the keys of the stages that read them (prepare-data,
the base model, an imported teacher); everything downstream follows through the artifacts'
digests. Hashing costs about a second per few hundred megabytes, once per run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over each file's path, size and bytes (a folder: every file below it, in order)."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        files = [path] if path.is_file() else sorted(Path(d) / f for d, _, names in os.walk(path) for f in names)
        for f in files:
            h.update(f"{f}\0{f.stat().st_size}\0".encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def model_digest(source: str) -> str:
    """The digest of a local model folder; "" for a packaged, tiny or hub model (a hub
    model is named by its id; pin a revision in the id for a fixed one)."""
    path = Path(source).expanduser()
    return files_digest([path]) if source not in ("minilm", "tiny") and path.is_dir() else ""
