"""Content digests of what a run reads from outside the store: a task's local data files
and a local model folder.

A stage's cache key is its inputs and code; a path names a file, not its contents, so an
edited data file or a teacher fine-tuned again at the same path would be a stale cache hit.
The digest of their bytes goes into the keys of the stages that read them (prepare-data,
the base model, an imported teacher); everything downstream follows through the artifacts'
digests. Hashing costs about a second per few hundred megabytes, once per process for each
version of a file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


# Each file's digest by (path, size, modification time, inode): a run asks for the same
# digests several times (preflight, the task's resolution, each data artifact's key), and
# a file is read again only when it changed.
_FILE_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _file_digest(path: Path) -> str:
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
    if key not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _FILE_DIGESTS[key] = h.hexdigest()
    return _FILE_DIGESTS[key]


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over each file's path, size and bytes (a folder: every file below it, in order)."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        files = [path] if path.is_file() else sorted(Path(d) / f for d, _, names in os.walk(path) for f in names)
        for f in files:
            h.update(f"{f}\0{f.stat().st_size}\0{_file_digest(f)}\0".encode())
    return h.hexdigest()


def model_digest(source: str) -> str:
    """The digest of a local model folder; "" for a packaged, tiny or hub model (a hub
    model is named by its id; pin a revision in the id for a fixed one)."""
    path = Path(source).expanduser()
    return files_digest([path]) if source not in ("minilm", "tiny") and path.is_dir() else ""
