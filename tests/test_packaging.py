"""The wheel holds every module and installs without the repository: built here, installed
non-editable into a fresh virtual environment (its dependencies seen from this one, so
nothing is downloaded), `rmc run --help` answers and every module imports from the install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

IMPORT_ALL = """
import importlib, pathlib, pkgutil, sys
import rmc_core
roots = {"rmc_core": pathlib.Path(rmc_core.__file__).parent}
names = ["rmc_core", *(m.name for m in pkgutil.walk_packages([str(roots["rmc_core"])], "rmc_core."))]
for sub in ("flows", "tasks", "deployments", "benchmarks"):
    package = importlib.import_module(f"rmc.{sub}")
    names += [f"rmc.{sub}", *(m.name for m in pkgutil.walk_packages(package.__path__, f"rmc.{sub}."))]
outside = []
for name in names:
    module = importlib.import_module(name)
    if not module.__file__.startswith(sys.prefix):
        outside.append(f"{name}: {module.__file__}")
assert not outside, outside
print(len(names), "modules")
"""


# What the distribution is built from (setuptools builds in the source folder, whose build/
# could hold files of modules deleted since: the wheel is built from a copy of these).
SOURCES = ("pyproject.toml", "setup.py", "README.md", "rmc_core", "flows", "tasks", "deployments", "benchmarks")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    return next(out.glob("rmc-*.whl"))


def test_the_wheel_holds_every_package_folder_of_the_repository(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    folders = [p.parent.relative_to(REPO) for p in REPO.glob("rmc_core/**/__init__.py")]
    missing = [str(f) for f in folders if f"{f.as_posix()}/__init__.py" not in names]
    assert not missing and "rmc_core/attack/textfooler.py" in names
    for folder in ("flows", "tasks", "deployments", "benchmarks"):
        assert f"rmc/{folder}/__init__.py" in names, folder
    assert not any(n.split("/")[0] in ("flows", "tasks", "tests", "deployments", "benchmarks") for n in names)
    assert "rmc_core/data/tasks/mnli.yaml" in names


def test_the_wheel_installs_and_runs_without_the_repository(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # The dependencies come from this environment (a path line; its editable rmc is not loaded).
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    helped = subprocess.run([env_dir / "bin" / "rmc", "run", "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "usage: rmc run" in helped.stdout, helped.stderr
    imported = subprocess.run([python, "-c", IMPORT_ALL], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert int(imported.stdout.split()[0]) > 80


def test_no_file_cites_a_path_outside_the_repository():
    """Docs and code name files of the repository only (`../shared/...` is data, read at run time)."""
    cited = []
    for path in [*REPO.glob("rmc_core/**/*.py"), *REPO.glob("flows/*.py"), *REPO.glob("tasks/*.py"),
                 *REPO.glob("benchmarks/*.py"), *REPO.glob("deployments/*.py"), *REPO.glob("docs/*.md"), REPO / "README.md"]:
        text = path.read_text()
        cited += [f"{path.relative_to(REPO)}: {word}" for word in ("shared/docs", "related-systems.md", "speed-notes.md",
                                                                     "prefect-notes.md") if word in text]
    assert not cited, cited


def test_the_libraries_in_every_cache_key_are_pinned_exactly_and_installed_as_pinned():
    """Their versions key every stage (tasks/stage_key.py): a range would let two sessions
    key the same run differently, and seeds merged across sessions would not share stages."""
    import tomllib
    from importlib.metadata import version

    from rmc.tasks.stage_key import LIBRARIES, library_versions

    pins = dict(d.split("==") for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
                if "==" in d)
    assert set(LIBRARIES) <= set(pins), sorted(set(LIBRARIES) - set(pins))
    assert {name: version(name).split("+")[0] for name in LIBRARIES} == {name: pins[name] for name in LIBRARIES}
    assert library_versions()["torch"].startswith(pins["torch"])


def test_no_function_is_longer_than_80_lines():
    """Small functions with one job each (the DAG's seed branch is a sequence of steps)."""
    import ast

    long = []
    for folder in ("rmc_core", "flows", "tasks", "deployments", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            long += [f"{path.relative_to(REPO)}:{n.name} ({n.end_lineno - n.lineno + 1} lines)"
                     for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.end_lineno - n.lineno + 1 > 80]
    assert not long, long
