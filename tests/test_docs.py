"""The commands the README and docs/ document still work: each `rmc` command parses, each
repository config it names validates, each `python -m rmc...` module exists and each
benchmark answers --help. (The long ones, the demo and the experiments, are what the pages
report measuring; their figures name their commands.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from rmc.flows import cli
from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def documented_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every `rmc ...` and `python -m rmc....` line in the pages' bash blocks."""
    found = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    argv = shlex.split(part, comments=True)
                    while argv and ENV.match(argv[0]):
                        argv = argv[1:]
                    if argv[:1] == ["rmc"] or (argv[:2] == ["python", "-m"] and argv[2:3] and argv[2].startswith("rmc.")):
                        found.append((page.name, argv))
    return found


COMMANDS = documented_commands()
RMC = [(page, argv) for page, argv in COMMANDS if argv[0] == "rmc"]
MODULES = sorted({argv[2] for _, argv in COMMANDS if argv[0] == "python"})


def test_the_pages_document_commands():
    assert len(RMC) >= 10 and any(argv[1] == "experiment" for _, argv in RMC)


@pytest.mark.parametrize("page,argv", RMC, ids=[" ".join(a)[:60] for _, a in RMC])
def test_every_documented_rmc_command_parses_and_its_repository_config_validates(page, argv):
    from rmc_core.overrides import load_config

    args = cli.parser().parse_args(argv[1:])
    if args.command == "run" and args.config is not None and str(args.config).startswith("configs/"):
        load_config(REPO / args.config, args.set)


HELP = """
import runpy, sys
for module in sys.argv[1:]:
    sys.argv = [module, "--help"]
    try:
        runpy.run_module(module, run_name="__main__")
    except SystemExit as done:
        assert done.code == 0, module
    else:
        raise AssertionError(f"{module} --help did not exit")
"""


def test_every_documented_module_exists_and_each_benchmark_answers_help():
    import importlib.util

    assert [m for m in MODULES if importlib.util.find_spec(m) is None] == []
    benchmarks = [m for m in MODULES if m.startswith("rmc.benchmarks.")]
    done = subprocess.run([sys.executable, "-c", HELP, *benchmarks], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("usage:") == len(benchmarks)


def test_readme_is_a_front_door():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for page in ("docs/usage.md", "docs/orchestration.md", "docs/results.md", "docs/method.md", "docs/development.md"):
        assert f"({page})" in readme and (REPO / page).is_file(), page
    for picture in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (REPO / picture).is_file(), picture


def test_the_python_api_example_in_usage_runs(prefect_api, tmp_path, monkeypatch):
    """The documented Python example, as written, in a fresh folder: a declared task from
    the CSV files it writes, a run through the flow, an export with its model card."""
    page = (REPO / "docs" / "usage.md").read_text()
    examples = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "rmc.flows.api" in b]
    assert len(examples) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(examples[0], "docs/usage.md", "exec"), namespace)
    result = namespace["result"]
    assert set(result.tables["results"]["model"]) == {"teacher", "imp40-vanilla", "imp40-rmc"}
    assert (tmp_path / "reviews-model" / "README.md").read_text().startswith("---")
    assert (tmp_path / "reviews-model" / "model.safetensors").exists()
