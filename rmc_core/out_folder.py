"""Output folders (`rmc run --out`, `rmc export --out`, ...) written whole or not at all,
and never over what rmc did not write.

Files written in place can end mixed: a full disk or a crash at the end left new files,
0-byte files and an earlier run's files side by side, and an export into a folder holding
another model's `model.onnx` kept it beside the new weights. So an output is written into
a fresh sibling folder and renamed into place once complete; a folder it replaces is
moved aside first and deleted after.

Replacing deletes, so it is allowed only over a folder rmc wrote: one holding rmc's marker
file (every output since the marker), or, for `rmc run` outputs written before it, their
own `summary.json` and `results.md`. Anything else (`--out .` inside a project, a folder of
the user's) is refused unless the user passes `--replace`, their explicit word.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmc_core.store import ensure_writable

MARKER = ".rmc-output"
# What an `rmc run --out` folder held before the marker existed (rmc wrote both, always).
LEGACY_RUN_FILES = ("summary.json", "results.md")


def written_by_rmc(out: Path) -> bool:
    """The folder is an output rmc wrote (so rmc may replace it)."""
    return (out / MARKER).is_file() or all((out / name).is_file() for name in LEGACY_RUN_FILES)


def check_out(out: Path, store_root: Path | None, replace: bool, flag: str = "--out") -> None:
    """Refuse, before any work, an output that could not be written or would damage
    something: a file, a folder inside the store (or holding it), or a non-empty folder
    that rmc did not write, unless the user said `--replace`."""
    out = out.resolve()
    if store_root is not None:
        store = store_root.resolve()
        if out == store or store in out.parents or out in store.parents:
            raise ValueError(f"{flag} {out} is inside the store {store} (or holds it); write outputs elsewhere")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file, not a folder")
    if not replace and out.is_dir() and not written_by_rmc(out):
        held = sorted(p.name for p in out.iterdir())
        if held:
            shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            raise ValueError(f"{flag} {out} holds files rmc did not write ({shown}); choose an empty or new folder, "
                             "or pass --replace to delete them and replace the folder whole")
    ensure_writable(out, flag)


@contextmanager
def written_whole(out: Path, command: str = "rmc") -> Iterator[Path]:
    """A fresh folder beside `out` to write into; on success it gets rmc's marker and
    becomes `out` (replacing what was there, which `check_out` allowed), on failure it is
    removed and `out` is untouched."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = out.parent / f".{out.name}.writing-{uuid.uuid4().hex[:8]}"
    fresh.mkdir()
    try:
        yield fresh
        (fresh / MARKER).write_text(json.dumps({"written_by": command}) + "\n")
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
    if out.exists():
        os.rename(out, old)
    os.rename(fresh, out)
    shutil.rmtree(old, ignore_errors=True)


def check_out_file(path: Path, header: list[str], flag: str = "--out") -> None:
    """A CSV output file may replace only a CSV that rmc wrote with the same columns: any
    other file at that path is the user's, refused."""
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; name a .csv file")
    if path.exists():
        try:
            with open(path, encoding="utf-8") as f:
                first = f.readline(1 << 16).rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            first = None
        if first != ",".join(header):
            raise ValueError(f"{flag} {path} exists and is not a table this command wrote (its first line is not "
                             f"{','.join(header[:3])},...); choose another file or remove it yourself")
    ensure_writable(path.parent, f"{flag}'s folder")
