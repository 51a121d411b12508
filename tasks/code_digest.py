"""Which code a stage runs, read from the source: the code half of its cache key.

A stage's digest covers the definitions it reaches by name, function by function, from the
stage function through every module it imports that is not a library (functions, classes
and module-level constants; a class counts whole): rmc_core's, and a plugin's with its own
helper modules wherever they live. Libraries (the standard library and installed
distributions other than rmc) are covered by their versions, which the stage key names
(stage_key.py). Docstrings are left out. rmc_core is not imported: its sources are parsed
with `ast`, so an import error cannot shrink a digest silently, and a test can point the
reader at a modified copy of the package.

Editing `metrics.py` therefore changes only the stages that compute metrics, and a method's
loss changes only its own students: the registries (methods, compressions, evaluations)
are dispatch tables, so a stage reaches the one spec its input names (`method`, the `kind`
of its `compression`, ...) rather than every entry at once. A spec registered outside
rmc_core (a user's plugin module) is found through the live registry and its module is
read like rmc_core's own.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

PACKAGE = "rmc_core"
# The folder that holds rmc_core (a top-level find_spec imports nothing).
ROOT = Path(importlib.util.find_spec(PACKAGE).origin).parents[1]
Symbol = tuple[str, str]


@dataclass(frozen=True)
class _Shared:
    """What every Source of the installed package shares within a process."""

    modules: dict[str, Module | None] = field(default_factory=dict)
    references: dict[Symbol, list[Symbol]] = field(default_factory=dict)
    specs: dict[tuple[str, str], dict[str, Symbol]] = field(default_factory=dict)


_INSTALLED = _Shared()


@dataclass(frozen=True)
class Dispatch:
    """A registry a stage indexes by one of its inputs: `table` is the dict of specs, each
    registered as `X = register(<spec_class>(<key_field>="...", ...))`; `key` reads the
    registry key from the stage's input named `input` (None: the stage does not choose one,
    so it covers every spec)."""

    table: Symbol
    spec_class: str
    key_field: str
    input: str
    key: Callable[[Any], str | None]

    def live_module(self, key: str) -> str | None:
        """The module that registered `key` in this process (for specs outside rmc_core)."""
        registry = sys.modules.get(self.table[0])
        spec = getattr(registry, self.table[1], {}).get(key) if registry else None
        if spec is None:
            return None
        module = inspect.getmodule(getattr(spec, "config", None) or next(
            (v for v in vars(spec).values() if callable(v)), spec))
        return module.__name__ if module else None


def _kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("kind")
    return getattr(value, "kind", None)


DISPATCHES = (
    Dispatch(("rmc_core.objectives.methods", "METHODS"), "MethodSpec", "name", "method", lambda v: v),
    Dispatch(("rmc_core.compression.registry", "COMPRESSIONS"), "CompressionSpec", "kind", "compression", _kind),
    Dispatch(("rmc_core.evaluation.registry", "EVALUATIONS"), "EvaluationSpec", "name", "evaluation", lambda v: v),
    Dispatch(("rmc_core.evaluation.registry", "EVALUATIONS"), "EvaluationSpec", "name", "evaluations", list),
    Dispatch(("rmc_core.objectives.estimators", "ESTIMATORS"), "EstimatorSpec", "name", "estimator", lambda v: v),
)
TABLES: dict[Symbol, list[Dispatch]] = {}
for _d in DISPATCHES:
    TABLES.setdefault(_d.table, []).append(_d)


def _strip_docstrings(node: ast.AST) -> ast.AST:
    for n in ast.walk(node):
        body = getattr(n, "body", None)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                n.body = body[1:] or [ast.Pass()]
    return node


# Trees are memoized by source text across Source objects (a test's edited copy of the
# package shares every unedited module's tree), and what is read from a tree by the tree
# itself: a tree is never modified, so the same tree always gives the same definitions and code.
@lru_cache(maxsize=256)
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


@lru_cache(maxsize=256)
def _definitions(tree: ast.Module) -> dict[str, ast.stmt]:
    out: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out.update({t.id: node for t in targets if isinstance(t, ast.Name)})
    return out


@lru_cache(maxsize=4096)
def _code(tree: ast.Module, name: str) -> str:
    return ast.dump(_strip_docstrings(ast.parse(ast.unparse(_definitions(tree)[name]))))


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @cached_property
    def tree(self) -> ast.Module:
        try:
            return _parse(self.path.read_text())
        except SyntaxError as err:
            err.filename = str(self.path)  # the text alone does not say which file
            raise

    @cached_property
    def definitions(self) -> dict[str, ast.stmt]:
        return _definitions(self.tree)

    @cached_property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]

    @cached_property
    def imports(self) -> dict[str, tuple[str, str | None]]:
        """Local name -> (module, attribute) for the module-level imports, attribute None
        when the name is bound to a module; relative imports resolved against this module's package."""
        return imported_names(self.tree.body, self.package)


def imported_names(nodes: list[ast.AST], package: str) -> dict[str, tuple[str, str | None]]:
    """The names that the import statements among `nodes` bind: `from m import a as b` ->
    b: (m, a); `import m.n as k` -> k: (m.n, None)."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out.update({a.asname or a.name: (module, a.name) for a in node.names})
        elif isinstance(node, ast.Import):
            out.update({a.asname: (a.name, None) for a in node.names if a.asname})
    return out


@lru_cache(maxsize=1)
def _distributed() -> frozenset[str]:
    """Top-level names that installed distributions other than rmc provide: libraries."""
    return frozenset(name for name, dists in packages_distributions().items() if "rmc" not in dists)


def is_library(module: str) -> bool:
    """A module whose code is keyed by its version, not read: the standard library's and
    those of installed distributions other than rmc."""
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top in _distributed()


def _origin(name: str) -> Path | None:
    """The source file of a module outside rmc_core: the loaded module's, else where the
    import system would find it (which imports its parent packages, a plugin's own)."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None and module is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") else None


class Source:
    """The rmc_core package under `root`, as parsed modules, and any plugin module added
    with `add` (a spec registered outside rmc_core)."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        # Every stage's closure walks mostly the same definitions: each is read once, and
        # once per process for the installed package (its files do not change under a run),
        # whose parsed modules, references and registrations every digest then shares.
        installed = root == ROOT
        self._modules: dict[str, Module | None] = _INSTALLED.modules if installed else {}
        self._references: dict[Symbol, list[Symbol]] = _INSTALLED.references if installed else {}
        self._package_specs: dict[tuple[str, str], dict[str, Symbol]] = _INSTALLED.specs if installed else {}
        # Modules outside rmc_core (a plugin and its helpers) and what their definitions
        # reference are read afresh by each Source: they may change within a process.
        self._outside: dict[str, Module | None] = {}
        self._outside_references: dict[Symbol, list[Symbol]] = {}
        self._extra: set[str] = set()
        self._specs: dict[tuple[str, str], dict[str, Symbol]] = {}

    def module(self, name: str) -> Module | None:
        """rmc_core's module `name` under this source's root; any other non-library module
        (a plugin's helper) from where it is imported from; None for libraries."""
        if name.split(".")[0] != PACKAGE:
            if name not in self._outside:
                path = _origin(name) if name and not is_library(name) else None
                self._outside[name] = Module(name, path) if path else None
            return self._outside[name]
        if name not in self._modules:
            base = self.root.joinpath(*name.split("."))
            path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
            self._modules[name] = Module(name, path) if path else None
        return self._modules[name]

    def add(self, name: str) -> None:
        """Read module `name` from wherever it is imported from (a plugin outside rmc_core)."""
        if name in self._extra:
            return
        if (path := _origin(name)) is not None:
            self._outside[name] = Module(name, path)
            self._extra.add(name)
            self._specs.clear()

    def package_modules(self) -> list[str]:
        package = self.root / PACKAGE
        return sorted(".".join(p.relative_to(self.root).with_suffix("").parts).removesuffix(".__init__")
                      for p in package.rglob("*.py"))

    def resolve(self, module: str, name: str) -> Symbol | None:
        """Where `module.name` is defined, following re-exports; None for names outside
        the definitions read (libraries, modules themselves)."""
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
        """The definitions (rmc_core's, a plugin's) that `symbol`'s code names."""
        cache = self._references if symbol[0].split(".")[0] == PACKAGE else self._outside_references
        if symbol not in cache:
            cache[symbol] = self._read_references(symbol)
        return cache[symbol]

    def _read_references(self, symbol: Symbol) -> list[Symbol]:
        module, name = symbol
        mod = self.module(module)
        node = mod.definitions[name]
        # Names a definition binds itself (parameters, assignments, loop variables) are its
        # own, not the module's: `train = store.table(...)` inside a stage is not the stage.
        nodes = list(ast.walk(node))
        local = {n.arg for n in nodes if isinstance(n, ast.arg)}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local |= {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        # An import inside the definition binds its names there (a light module reaching
        # its heavy implementation only when it runs): followed like the module's own.
        imports = {**mod.imports, **imported_names(nodes, mod.package)}
        found: list[Symbol] = []
        for n in nodes:
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
                bound = imports.get(n.value.id)
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
                elif n.id in imports and (target := self.resolve(*imports[n.id])) is not None:
                    found.append(target)
        return found

    def specs(self, dispatch: Dispatch) -> dict[str, Symbol]:
        """Each module-level `X = register(<spec_class>(<key_field>=..., ...))`, by key."""
        key = (dispatch.spec_class, dispatch.key_field)
        if key not in self._specs:
            self._specs[key] = self._read_specs(dispatch)
        return self._specs[key]

    def _read_specs(self, dispatch: Dispatch) -> dict[str, Symbol]:
        key = (dispatch.spec_class, dispatch.key_field)
        if key not in self._package_specs:
            self._package_specs[key] = self._registered(dispatch, self.package_modules())
        return {**self._package_specs[key], **self._registered(dispatch, sorted(self._extra))}

    def _registered(self, dispatch: Dispatch, modules: list[str]) -> dict[str, Symbol]:
        out = {}
        for module in modules:
            mod = self.module(module)
            for name, node in (mod.definitions.items() if mod else ()):
                for call in (c for c in ast.walk(node) if isinstance(c, ast.Call)):
                    if isinstance(call.func, ast.Name) and call.func.id == dispatch.spec_class:
                        out.update({k.value.value: (module, name) for k in call.keywords
                                    if k.arg == dispatch.key_field and isinstance(k.value, ast.Constant)})
        return out

    def closure(self, start: list[Symbol]) -> tuple[list[Symbol], set[Symbol]]:
        """`start` and every definition it reaches, stopping at dispatch tables; and the
        dispatch tables it reached."""
        seen: set[Symbol] = set()
        reached: set[Symbol] = set()
        todo = list(start)
        while todo:
            symbol = todo.pop()
            if symbol in seen:
                continue
            seen.add(symbol)
            refs = self.references(symbol)
            reached |= {s for s in refs if s in TABLES}
            todo += [s for s in refs if s not in TABLES]
        return sorted(seen), reached

    def symbols(self, stage: Symbol, keys: Mapping[str, Any] | None = None) -> list[Symbol]:
        """The definitions `stage` runs; for each registry it reaches, the spec `keys`
        chooses by the registry's input name: none when the input is given as None (a
        teacher trains with no compression), every spec when it is not given."""
        symbols, reached = self.closure([stage])
        entries: list[Symbol] = []
        for table in sorted(reached):
            given = [d for d in TABLES[table] if keys is not None and d.input in keys]
            if not given:
                entries += list(self.specs(TABLES[table][0]).values())
                continue
            dispatch, chosen = given[0], keys[given[0].input]
            if chosen is None:
                continue  # the stage takes this input and was given none: no spec runs
            for key in ([chosen] if isinstance(chosen, str) else chosen):
                specs = self.specs(dispatch)
                if key not in specs and (module := dispatch.live_module(key)):
                    self.add(module)
                    specs = self.specs(dispatch)
                entries += [specs[key]] if key in specs else list(specs.values())
        if entries:
            symbols, _ = self.closure([stage, *entries])
        return symbols

    def digest(self, stage: Symbol, keys: Mapping[str, Any] | None = None) -> str:
        """sha256 over the code of every definition `stage` runs (`symbols`)."""
        h = hashlib.sha256()
        for symbol in self.symbols(stage, keys):
            h.update(f"{symbol[0]}.{symbol[1]}\0{self.code(symbol)}\0".encode())
        return h.hexdigest()

    def code(self, symbol: Symbol) -> str:
        """A definition's code without its docstrings, as one normalised string."""
        return _code(self.module(symbol[0]).tree, symbol[1])


def dispatch_keys(inputs: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The registry keys a stage's inputs choose, by input name, for the inputs it has."""
    def key(d: Dispatch) -> str | tuple[str, ...] | None:
        value = d.key(inputs[d.input]) if inputs[d.input] is not None else None
        return tuple(value) if isinstance(value, list) else value

    return tuple((d.input, key(d)) for d in DISPATCHES if d.input in inputs)


@cache
def _digest(module: str, name: str, keys: tuple[tuple[str, Any], ...]) -> str:
    return Source().digest((module, name), dict(keys))


def stage_digest(module: str, name: str, inputs: Mapping[str, Any] | None = None) -> str:
    """The installed sources' digest of one stage for these inputs (every parameter of the
    stage, defaults included), computed once per process."""
    return _digest(module, name, dispatch_keys(inputs or {}))


def stage_symbols(module: str, name: str, inputs: Mapping[str, Any] | None = None) -> list[Symbol]:
    """The definitions one stage runs for these inputs (what its digest covers)."""
    return Source().symbols((module, name), dict(dispatch_keys(inputs or {})))
