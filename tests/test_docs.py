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

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "docs" / "results").glob("*.md"))]
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


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page) -> set[str]:
    """A page's link targets: its `<a id>` tags and its headings as GitHub slugs them."""
    text = page.read_text()
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    return set(re.findall(r'<a id="([^"]+)"></a>', text)) | slugs


def test_every_relative_link_in_the_pages_reaches_its_file_and_anchor():
    """The results are split over files (docs/results/<testbed>.md): a link left pointing at a
    section that moved is found here, not by a reader."""
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def test_the_answers_table_is_the_one_its_command_builds():
    """docs/results.md opens with the table `python -m rmc.benchmarks.answers` prints from the
    committed folders, at most 80 lines, and the committed answers.csv is that table."""
    import numpy as np
    import pandas as pd
    import yaml

    from rmc.benchmarks.answers import answers, markdown

    built = answers(yaml.safe_load((REPO / "docs/results/answers.yaml").read_text()), root=REPO)
    table = markdown(built)
    assert len(table.splitlines()) <= 80 and table in (REPO / "docs/results.md").read_text()
    committed = pd.read_csv(REPO / "docs/results/answers.csv", keep_default_na=False, na_values=[""])
    words = ["question", "testbed", "interval", "testable", "verdict"]
    assert committed[words].astype(str).values.tolist() == built[words].astype(str).values.tolist()
    numbers = ["estimate", "low", "high", "n_seeds", "seeds_for_power"]
    np.testing.assert_allclose(built[numbers].to_numpy(dtype=float), committed[numbers].to_numpy(dtype=float), rtol=1e-9)
    # Each paper claim is shown on every testbed that has it, with its baseline named.
    assert {"(b) RMC - Vanilla", "(b) RMC - Distil", "(b) RMC - Smooth"} <= set(built["question"])
