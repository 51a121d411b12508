"""Output folders (`rmc run --out`, `rmc export --out`) written whole or not at all.

Files written in place can end mixed: a full disk or a crash at the end left new files,
0-byte files and an earlier run's files side by side, and an export into a folder holding
another model's `model.onnx` kept it beside the new weights. So an output is written into
a fresh sibling folder and renamed into place once complete; a folder it replaces is
moved aside first and deleted after.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmc_core.store import ensure_writable


def check_out(out: Path, store_root: Path, replace: bool, flag: str = "--out") -> None:
    """Refuse, before any work, an output that could not be written or would damage
    something: a file, a folder inside the store (or holding it), or a non-empty folder
    unless it may be replaced."""
    out, store = out.resolve(), store_root.resolve()
    if out == store or store in out.parents or out in store.parents:
        raise ValueError(f"{flag} {out} is inside the store {store} (or holds it); write outputs elsewhere")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file, not a folder")
    if not replace and out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{flag} {out} is not empty; choose an empty folder or pass --replace to replace it whole")
    ensure_writable(out, flag)


@contextmanager
def written_whole(out: Path) -> Iterator[Path]:
    """A fresh folder beside `out` to write into; on success it becomes `out` (replacing
    what was there), on failure it is removed and `out` is untouched."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = out.parent / f".{out.name}.writing-{uuid.uuid4().hex[:8]}"
    fresh.mkdir()
    try:
        yield fresh
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
    if out.exists():
        os.rename(out, old)
    os.rename(fresh, out)
    shutil.rmtree(old, ignore_errors=True)
