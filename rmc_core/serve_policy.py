"""What a served run may touch: the operator's allow-lists, checked before a run starts.

Whoever can reach the Prefect UI or API can start a served run with any parameters. The
CLI user owns their machine; a served run must stay inside what the operator allowed when
starting `serve`: the folders it may read and write (store, data, local models), the Ray or
Dask clusters it may connect to (both exchange pickles, and Ray receives the Prefect API
URL), and whether models and datasets may come from the Hugging Face hub. The serving
process hands the policy to its flow-run subprocesses through RMC_SERVE_POLICY (they
inherit its environment; a run's parameters cannot set it); `rmc run` has no policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rmc_core.config import DataConfig
from rmc_core.data.registry import TASKS
from rmc_core.data.task_file import DataFile, FileTask
from rmc_core.model_spec import ModelSpec
from rmc_core.models import HUB_ID

ENV = "RMC_SERVE_POLICY"
BUILT_IN_MODELS = ("minilm", "tiny")


class PolicyViolation(ValueError):
    """A served run's parameters reach outside what the operator allowed."""


REFUSED = "refused by this server's policy"


class ServePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    roots: tuple[Path, ...]
    clusters: tuple[str, ...] = ()
    hub: bool = False

    @classmethod
    def from_env(cls) -> ServePolicy | None:
        text = os.environ.get(ENV)
        return cls.model_validate_json(text) if text else None

    def to_env(self) -> None:
        os.environ[ENV] = self.model_dump_json()

    def inside(self, path: str | Path) -> bool:
        """Inside an allowed root once every symlink and `..` is resolved (relative paths
        are relative to the serving process's folder, where the run executes)."""
        real = Path(path).expanduser().resolve()
        return any(real == root or root in real.parents for root in (r.expanduser().resolve() for r in self.roots))

    def violations(self, store_root: str, parameters: BaseModel, address: str | None) -> list[str]:
        """Every way the run reaches outside the policy (empty: allowed)."""
        allowed = ", ".join(str(r) for r in self.roots)
        found = []
        if not self.inside(store_root):
            found.append(f"store_root {store_root!r} is outside the allowed folders ({allowed})")
        if address is not None and address not in self.clusters:
            found.append(f"runner.address {address!r} is not an allowed cluster ({', '.join(self.clusters) or 'none'})")
        # A declared task names its own files and a generated one (synthetic) reads none: the
        # data root is then never read, and a form's default one is no reason to refuse.
        declared = any(isinstance(v, FileTask) for _, v in _walk(parameters))
        task = getattr(parameters, "task", None)
        generated = isinstance(task, str) and task in TASKS and TASKS[task].generated
        for where, value in _walk(parameters):
            if isinstance(value, DataConfig) and not declared and not generated:
                if value.source == "hub" and not self.hub:
                    found.append(f"{where}.source 'hub': the hub is not allowed here")
                elif value.source == "local" and not self.inside(value.data_root):
                    found.append(f"{where}.data_root {str(value.data_root)!r} is outside the allowed folders ({allowed})")
            elif isinstance(value, DataFile):
                if value.on_hub and not self.hub:
                    found.append(f"{where}.path {value.path!r}: the hub is not allowed here")
                elif not value.on_hub and not self.inside(value.path):
                    found.append(f"{where}.path {value.path!r} is outside the allowed folders ({allowed})")
            elif isinstance(value, ModelSpec) and value.source not in BUILT_IN_MODELS:
                local = Path(value.source).expanduser().exists() or not HUB_ID.fullmatch(value.source)
                if local and not self.inside(value.source):
                    found.append(f"{where}.source {value.source!r} is outside the allowed folders ({allowed})")
                elif not local and not self.hub:
                    found.append(f"{where}.source {value.source!r} is a hub model id: the hub is not allowed here")
        return found

    def check(self, store_root: str, parameters: BaseModel, address: str | None) -> None:
        if found := self.violations(store_root, parameters, address):
            raise PolicyViolation(f"{REFUSED} (set when `serve` started): " + "; ".join(found))


def check_task_file(path: Path) -> None:
    """In a served process, refuse a task file outside the allowed folders before it is
    read (a run's parameters are validated, and a task file read, before the run starts)."""
    if (policy := ServePolicy.from_env()) is not None and not policy.inside(path):
        raise PolicyViolation(f"task file {str(path)!r} is outside the folders this server allows "
                              f"({', '.join(str(r) for r in policy.roots)})")


def check_served(store_root: str, parameters: BaseModel, address: str | None) -> None:
    """In a served flow run, refuse what its policy does not allow; elsewhere (the CLI) nothing."""
    if (policy := ServePolicy.from_env()) is not None:
        policy.check(store_root, parameters, address)


def _walk(value: Any, where: str = "config") -> Iterator[tuple[str, Any]]:
    """Every pydantic model inside `value`, with its dotted path: new compressions and
    sections that hold a ModelSpec or DataConfig are checked without listing them here."""
    if isinstance(value, BaseModel):
        yield where, value
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}")
