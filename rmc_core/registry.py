"""The one shape every rmc registry has (methods, compressions, evaluations): a dict of
specs by name that refuses a name twice and names the registered ones when asked for an
unknown one."""

from __future__ import annotations

from typing import Any, TypeVar

Spec = TypeVar("Spec")


class Registry(dict[str, Spec]):
    """Specs by name, in registration order (the order forms and tables show them in)."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def add(self, name: str, spec: Spec) -> Spec:
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = spec
        return spec

    def known(self, name: str) -> str:
        """`name`, if registered (a validator for config fields)."""
        if name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; registered: {', '.join(self)}")
        return name


def own_settings(spec: Any, given: dict[str, Any]) -> Any:
    """A spec's settings of its own (`spec.settings`, a Frozen class) in a run: those given
    under its name (`RunConfig.method_settings`, `evaluation_settings`), else the class's
    defaults; None for a spec without settings of its own."""
    if spec.settings is None:
        return None
    return given.get(spec.name) or spec.settings()
