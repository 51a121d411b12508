"""The install puts no generic top-level names (tasks, flows, ...) into site-packages."""

from __future__ import annotations

import importlib.util
import tomllib

from tests.conftest import REPO


def test_installed_packages_live_under_rmc_names_and_map_to_the_repository_folders():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p.split(".")[0] in ("rmc", "rmc_core") for p in setuptools["packages"])
    for package, folder in setuptools["package-dir"].items():
        assert package.startswith("rmc.") and (REPO / folder / "__init__.py").is_file()
        assert importlib.util.find_spec(package).origin == str(REPO / folder / "__init__.py")


def test_every_package_of_the_repository_is_installed():
    """A package folder missing from the list installs editable but not as a wheel
    (rmc_core.attack once was: `pip install .` then failed at import)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "rmc_core").rglob("__init__.py")}
    assert folders <= set(setuptools["packages"]), sorted(folders - set(setuptools["packages"]))
