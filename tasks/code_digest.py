"""Which code a stage runs, read from the source: the code half of its cache key.

A stage's digest covers the definitions it reaches by name, function by function, from the
stage function through the rmc_core modules it imports (functions, classes and module-level
constants; a class counts whole). Docstrings are left out. Nothing is imported: sources are
parsed with `ast`, so an import error cannot shrink a digest silently, and a test can point
the reader at a modified copy of the package.

Editing `metrics.py` therefore changes only the stages that compute metrics, and a method's
loss changes only its own students: the registry `methods.METHODS` is a dispatch table, so
a stage reaches the one spec its `method` input names (`digest(stage, method=...)`) rather
than every method at once.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

PACKAGE = "rmc_core"
# The folder that holds rmc_core (a top-level find_spec imports nothing).
ROOT = Path(importlib.util.find_spec(PACKAGE).origin).parents[1]
# Names whose value is a table of alternatives; a stage reaches only the entry it is given.
DISPATCH = {("rmc_core.methods", "METHODS")}
METHOD_SPEC = "MethodSpec"

Symbol = tuple[str, str]


def _strip_docstrings(node: ast.AST) -> ast.AST:
    for n in ast.walk(node):
        body = getattr(n, "body", None)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                n.body = body[1:] or [ast.Pass()]
    return node


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(), filename=str(self.path))

    @cached_property
    def definitions(self) -> dict[str, ast.stmt]:
        out: dict[str, ast.stmt] = {}
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                out.update({t.id: node for t in targets if isinstance(t, ast.Name)})
        return out

    @cached_property
    def imports(self) -> dict[str, tuple[str, str | None]]:
        """Local name -> (module, attribute), for rmc_core imports only; attribute None
        when the name is bound to a module."""
        out: dict[str, tuple[str, str | None]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
                for a in node.names:
                    out[a.asname or a.name] = (node.module, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == PACKAGE and a.asname:
                        out[a.asname] = (a.name, None)
        return out


class Source:
    """The rmc_core package under `root`, as parsed modules."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self._modules: dict[str, Module | None] = {}

    def module(self, name: str) -> Module | None:
        if name not in self._modules:
            base = self.root.joinpath(*name.split("."))
            path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
            self._modules[name] = Module(name, path) if path else None
        return self._modules[name]

    def resolve(self, module: str, name: str) -> Symbol | None:
        """Where `module.name` is defined, following re-exports; None for names outside
        rmc_core's definitions (other packages, modules themselves)."""
        for _ in range(16):
            mod = self.module(module)
            if mod is None:
                return None
            if name in mod.definitions:
                return module, name
            if name not in mod.imports or mod.imports[name][1] is None:
                return None  # a submodule or a module alias: reached through its attributes
            module, name = mod.imports[name]
        raise RecursionError(f"import cycle while resolving {module}.{name}")

    def references(self, symbol: Symbol) -> list[Symbol]:
        """The rmc_core definitions that `symbol`'s code names."""
        module, name = symbol
        mod = self.module(module)
        node = mod.definitions[name]
        # Names a definition binds itself (parameters, assignments, loop variables) are its
        # own, not the module's: `train = store.table(...)` inside a stage is not the stage.
        local = {n.arg for n in ast.walk(node) if isinstance(n, ast.arg)}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        found: list[Symbol] = []
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
                bound = mod.imports.get(n.value.id)
                if bound and bound[1] is None:
                    target = self.resolve(bound[0], n.attr)
                elif bound and self.module(f"{bound[0]}.{bound[1]}") is not None:
                    target = self.resolve(f"{bound[0]}.{bound[1]}", n.attr)
                else:
                    continue
                if target:
                    found.append(target)
            elif isinstance(n, ast.Name) and n.id != name and n.id not in local:
                if n.id in mod.definitions:
                    found.append((module, n.id))
                elif n.id in mod.imports and (target := self.resolve(*mod.imports[n.id])) is not None:
                    found.append(target)
        return found

    def method_specs(self) -> dict[str, Symbol]:
        """Each method's module-level `X = register(MethodSpec(name=..., ...))`, by name."""
        module, _ = next(iter(DISPATCH))
        out = {}
        for name, node in self.module(module).definitions.items():
            for call in (c for c in ast.walk(node) if isinstance(c, ast.Call)):
                if isinstance(call.func, ast.Name) and call.func.id == METHOD_SPEC:
                    out.update({k.value.value: (module, name) for k in call.keywords
                                if k.arg == "name" and isinstance(k.value, ast.Constant)})
        return out

    def closure(self, start: list[Symbol]) -> tuple[list[Symbol], bool]:
        """`start` and every definition it reaches, stopping at dispatch tables; and
        whether it reached one."""
        seen: set[Symbol] = set()
        dispatches = False
        todo = list(start)
        while todo:
            symbol = todo.pop()
            if symbol in seen:
                continue
            seen.add(symbol)
            refs = self.references(symbol)
            dispatches |= any(s in DISPATCH for s in refs)
            todo += [s for s in refs if s not in DISPATCH]
        return sorted(seen), dispatches

    def digest(self, stage: Symbol, method: str | None = None) -> str:
        """sha256 over the code `stage` runs; a stage that dispatches on a method covers
        that method's spec (every spec when the method is not one defined in methods.py)."""
        symbols, dispatches = self.closure([stage])
        if dispatches:
            specs = self.method_specs()
            symbols, _ = self.closure([stage, *([specs[method]] if method in specs else specs.values())])
        h = hashlib.sha256()
        for module, name in symbols:
            node = _strip_docstrings(ast.parse(ast.unparse(self.module(module).definitions[name])))
            h.update(f"{module}.{name}\0{ast.dump(node)}\0".encode())
        return h.hexdigest()


@cache
def stage_digest(module: str, name: str, method: str | None = None) -> str:
    """The installed sources' digest of one stage, computed once per process."""
    return Source().digest((module, name), method)
