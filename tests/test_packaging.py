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
