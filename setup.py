"""Which packages the distribution holds, found rather than listed (everything else is in
pyproject.toml).

The repository keeps the design's top-level folders (flows/, tasks/, ...), but an install
does not put generic names such as `tasks` or `flows` into site-packages: they install
under the `rmc` namespace (`rmc.flows`, ...), each with whatever subpackages it grows;
rmc_core keeps its own, specific name. A package folder is found by its `__init__.py`, so a
new one cannot be left out of the wheel (rmc_core.attack once was: `pip install .` then
failed at import).
"""

from setuptools import find_packages, setup

NAMESPACED = {"rmc.flows": "flows", "rmc.tasks": "tasks", "rmc.deployments": "deployments", "rmc.benchmarks": "benchmarks"}


def packages() -> dict[str, str]:
    """Package name -> its folder, for rmc_core and each namespaced folder with their subpackages."""
    found = {name: name.replace(".", "/") for name in find_packages(include=["rmc_core", "rmc_core.*"])}
    for name, folder in NAMESPACED.items():
        found[name] = folder
        found |= {f"{name}.{sub}": f"{folder}/{sub.replace('.', '/')}" for sub in find_packages(where=folder)}
    return found


setup(packages=list(packages()), package_dir={name: folder for name, folder in packages().items()
                                              if name.startswith("rmc.")})
