"""The `rmc` command line: argument parsing only.

Nothing heavy is imported here (torch, transformers, prefect): `rmc --help` and a refused
argument answer at once, and each command's code (flows/commands.py) is imported when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

# No network here; the local server's telemetry would only log errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary server's 20 s default start-up budget is too short on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

class BadConfiguration(Exception):
    """Refused before any data was read or model trained (exit 2)."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rmc", description="Robust Model Compression (Du et al., EACL 2023): compress "
                                  "BERT-class encoders and measure what they keep out of distribution.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="print the full traceback of a failure")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run RMC and its baselines end to end (default: synthetic task, packaged MiniLM)")
    run.add_argument("--config", type=Path, help="a JSON RunConfig; unspecified fields keep their defaults")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one field, e.g. --set teacher_train.epochs=2 --set 'methods=[\"vanilla\",\"rmc\"]'")
    run.add_argument("--store", type=Path, default=Path("rmc-runs/store"), help="artifact store root (reruns reuse it)")
    run.add_argument("--out", type=Path, default=Path("rmc-runs/latest"),
                     help="where the result tables and report.png are written: a new or empty folder, or an earlier rmc output "
                          "(replaced whole)")
    run.add_argument("--replace", action="store_true", help="replace a --out that holds files rmc did not write (deletes them)")
    run.add_argument("--device", action="append", help="a device to use (repeat for several); default: all GPUs, else cpu")
    run.add_argument("--runner", choices=["local", "ray", "dask"], default="local",
                     help="where stages run: threads here, or a Ray or Dask cluster (docs/orchestration.md)")
    run.add_argument("--address", help="the Ray cluster or Dask scheduler to use; default: start one on this machine")
    run.add_argument("--concurrency", type=positive_int, help="stages run at once (default: one per GPU; on CPU, cores // 4, at least 1)")

    experiment = sub.add_parser("experiment", parents=[common], help="run a declared experiment (experiments/*.yaml): "
                                "arms x grid x seeds, compared arm against arm, one report")
    experiment.add_argument("file", type=Path, nargs="?", help="the experiment file (JSON or YAML; docs/experiments.md)")
    experiment.add_argument("--seeds", type=int, nargs="+", help="run these seeds instead of the file's")
    experiment.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                            help="merge the --out folders of one experiment run over different seeds; runs nothing")
    experiment.add_argument("--store", type=Path, default=Path("rmc-runs/store"), help="artifact store root (reruns reuse it)")
    experiment.add_argument("--out", type=Path, help="where the report is written (default: rmc-runs/experiments/<name>)")
    experiment.add_argument("--replace", action="store_true", help="replace a --out that holds files rmc did not write")
    experiment.add_argument("--device", action="append", help="a device to use (repeat for several)")
    experiment.add_argument("--runner", choices=["local", "ray", "dask", "in-process"], default="local",
                            help="local, ray, dask: the Prefect flow on that runner; in-process: the same DAG without "
                                 "Prefect, resuming from the store")
    experiment.add_argument("--address", help="the Ray cluster or Dask scheduler to use")
    experiment.add_argument("--concurrency", type=positive_int, help="stages run at once")
    experiment.add_argument("--check", action="store_true", help="only validate the experiment and every run's inputs")

    verify = sub.add_parser("verify", parents=[common], help="check every file of a store: artifacts against their digests, "
                                                              "cached results for their data-only shape; quarantine bad ones")
    verify.add_argument("--store", type=Path, default=Path("rmc-runs/store"))

    export = sub.add_parser("export", parents=[common], help="write a store model as a transformers folder or as ONNX")
    export.add_argument("model", metavar="MODEL_REF", help="model/<digest> from a run's summary.json, or a unique digest prefix")
    export.add_argument("--format", choices=["hf", "onnx"], default="hf")
    export.add_argument("--out", type=Path, required=True, help="a new or empty folder, or an earlier rmc output (replaced "
                        "whole), outside the store")
    export.add_argument("--replace", action="store_true", help="replace a --out that holds files rmc did not write (deletes "
                        "them; never merged into)")
    export.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    export.add_argument("--run", type=Path, help="the model's run folder (`rmc run --out`): writes a model card "
                        "(README.md) with how it was made and every metric of the run")

    speed = sub.add_parser("speed", parents=[common], help="training and prediction throughput: rmc's loop vs a bare loop, "
                                                            "fp32/bf16, random/length-grouped batches; writes a CSV")
    speed.add_argument("--task", default="mnli", help="a registered task (synthetic, mnli, qqp, ...)")
    speed.add_argument("--model", default="minilm", help="minilm (packaged), tiny, a hub name or a local checkpoint")
    speed.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    speed.add_argument("--rows", type=int, default=None, help="training rows to draw batches from (default: all)")
    speed.add_argument("--steps", type=int, default=40, help="timed training steps per setting")
    speed.add_argument("--batch-size", type=int, default=32)
    speed.add_argument("--eval-batch-sizes", type=int, nargs="+", default=[128])
    speed.add_argument("--predict-rows", type=int, default=2000)
    speed.add_argument("--max-length", type=int, default=128)
    speed.add_argument("--lr", type=float, default=5e-5)
    speed.add_argument("--repeats", type=int, default=2)
    speed.add_argument("--device", default=None, help="default: cuda:0 when there is a GPU, else cpu")
    speed.add_argument("--out", type=Path, default=Path("rmc-runs/speed/throughput.csv"),
                       help="the CSV written; an existing file is replaced only if it is an earlier `rmc speed` table")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from rmc.flows import commands

        return getattr(commands, f"cmd_{args.command}")(args)
    except BadConfiguration as err:
        return _fail(err, 2, args.debug)
    except Exception as err:  # noqa: BLE001 - any failure ends as one line and exit 1
        return _fail(err, 1, args.debug)


# The longest refusal printed: the message's first part says what to fix; --debug prints it whole.
MAX_MESSAGE = 2000


def _fail(err: Exception, code: int, debug: bool) -> int:
    """One line per failure: the message says what to fix; the traceback is for --debug."""
    if debug:
        traceback.print_exception(err)
    text = str(err) if isinstance(err, BadConfiguration) else f"{type(err).__name__}: {err}"
    text = " ".join(text.splitlines())
    if len(text) > MAX_MESSAGE and not debug:
        text = f"{text[:MAX_MESSAGE]} ... ({len(text) - MAX_MESSAGE:,} more characters; --debug prints them)"
    print(f"rmc: {text}", file=sys.stderr)
    return code


if __name__ == "__main__":
    # Through the installed module, so that the commands' BadConfiguration is this one (as
    # `__main__`, this file's classes would be a second copy and refusals would exit 1).
    from rmc.flows.cli import main as installed_main

    sys.exit(installed_main())
