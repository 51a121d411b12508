"""The command line answers at once: parsing imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from rmc.flows import cli

HEAVY = ("torch", "transformers", "prefect")
PROBE = """
import sys
from rmc.flows.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["export", "--help"], ["speed", "--help"]])
def test_help_imports_no_heavy_module_and_answers_within_a_second(argv):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    assert "usage: rmc" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", f"--help imported {done.stdout.splitlines()[-1]}"
    assert seconds < 1.0, f"rmc {' '.join(argv)} took {seconds:.2f} s"


def test_speed_refuses_an_unknown_task_with_exit_2(capsys):
    assert cli.main(["speed", "--task", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
