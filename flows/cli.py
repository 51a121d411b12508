"""The `rmc` command: runs the RMC flow in Prefect's ephemeral mode (no server to start)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

from pydantic import ValidationError
from tqdm.auto import tqdm

from rmc.benchmarks.profiles import ProfileName
from rmc_core import pipeline
from rmc_core.training import stopping
from rmc_core.config import RunConfig
from rmc_core.devices import default_devices
from rmc_core.overrides import load_config
from rmc_core.report import (
    PANE_COLUMNS,
    comparison_lines,
    headline,
    inference_lines,
    markdown_report,
    premise_lines,
    to_markdown,
    write_tables,
)
from rmc_core.store import Ref, Store, ensure_writable

# No network here; the local server's telemetry would only log errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary server's 20 s default start-up budget is too short on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def write_report(tables: dict, out: Path, task: str) -> None:
    write_tables(tables, out)
    (out / "results.md").write_text(markdown_report(tables, task) + "\n")


class BadConfiguration(Exception):
    """Refused before any data was read or model trained (exit 2)."""


def checked_config(args: argparse.Namespace) -> RunConfig:
    """The validated config, with everything knowable up front checked: fields, model
    shapes and label sets, devices, and that the store and `--out` can be written."""
    try:
        cfg = load_config(args.config, args.set)
        here = args.runner == "local"
        pipeline.preflight(cfg, Store(args.store), args.device or default_devices(here), devices_here=here)
        ensure_writable(args.out, "--out")
    except (ValidationError, ValueError, OSError) as err:
        raise BadConfiguration(f"invalid configuration: {err}") from err
    return cfg


class QuietFailures(logging.Filter):
    """Without --debug, a failed stage is one line: its downstream stages' NotReady
    records and the flow's repeat of the exception are dropped, tracebacks stripped; the
    CLI then prints the error once. UI runs keep the full records (the filter lives only
    in this process)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Finished in state NotReady" in message or message.startswith("Encountered exception during execution"):
            return False
        record.exc_info, record.exc_text = None, None
        return True


@contextmanager
def quiet_failures(enabled: bool) -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("prefect.task_runs", "prefect.flow_runs")] if enabled else []
    quiet = QuietFailures()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


@contextmanager
def stop_on_signals(store: Path) -> Iterator[None]:
    """SIGINT/SIGTERM stop the run in seconds: loops stop at their next step, the temporary
    Prefect server is stopped, what finished is listed, and the process exits 128 + signal.

    It exits at once instead of unwinding through Prefect: Ctrl-C reaches the temporary
    server too (same process group), and a failing task would retry its state updates
    against the dead server for minutes. The store stays consistent, since every artifact
    is published by one atomic rename; a rerun resumes from what was finished.
    """
    from prefect.server.api.server import SubprocessASGIServer

    from rmc.flows.rmc_flow import FINISHED

    def stop(signum: int, frame: object) -> None:
        stopping.STOP.set()
        stopping.wait_until_idle(timeout=5)
        for server in list(SubprocessASGIServer._instances.values()):
            server.stop()
        kept = ", ".join(FINISHED) or "none"
        print(f"\nrmc: stopped by {signal.Signals(signum).name}. Finished stages, kept in the store {store}: {kept}. "
              "Run the same command again to resume from them.", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = checked_config(args)
    if args.concurrency:
        os.environ["RMC_CONCURRENCY"] = str(args.concurrency)
    from rmc.flows.rmc_flow import RmcParameters, RunnerConfig, rmc_flow
    from rmc_core.costs import cost_table

    start = time.perf_counter()
    params = RmcParameters(config=cfg, store_root=str(args.store), devices=args.device or None,
                           runner=RunnerConfig(kind=args.runner, address=args.address))
    with stop_on_signals(args.store), quiet_failures(not args.debug):
        summary = rmc_flow(params)
    wall = time.perf_counter() - start
    store = Store(params.store_root)
    tables = store.tables(summary.report)
    write_report(tables, args.out, cfg.task)
    for ref in summary.measured.values():
        write_tables(store.tables(ref), args.out)
    if summary.inference:
        inference = store.table(summary.inference, "inference")
        (args.out / "inference.md").write_text("\n".join(["# Size and inference speed", "", *inference_lines(inference)]) + "\n")
    costs = cost_table(summary.artifacts, summary.cached, store)
    costs.to_csv(args.out / "costs.csv", index=False)
    first_seed = min(m.seed for m in summary.models)
    models = {m.name: f"model/{m.model.digest}" for m in summary.models if m.seed == first_seed}
    (args.out / "summary.json").write_text(json.dumps({**summary.model_dump(mode="json"), "wall_seconds": wall}, indent=1))
    print(to_markdown(headline(tables), max_columns=PANE_COLUMNS))
    print("\n".join(["", *premise_lines(tables), "", *comparison_lines(tables)]))
    print("\nModels (rmc export MODEL_REF --format hf|onnx --out DIR):", *(f"  {m}: {r}" for m, r in models.items()), sep="\n")
    print(f"\nwall time {wall:.0f} s; {len(summary.computed)} stages computed, {len(summary.cached)} from cache; tables in {args.out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Hash every artifact of a store; corrupt ones are quarantined (the next run recomputes them)."""
    store = Store(args.store)
    if not (args.store / "objects").is_dir():
        raise BadConfiguration(f"{args.store} is not an rmc store (no objects/ folder)")
    refs = store.refs()
    bad = [r for r in tqdm(refs, desc="verify", unit="artifact") if not store.verify(r)]
    for ref in bad:
        print(f"rmc verify: {ref.kind} {ref.digest[:12]} was corrupt; quarantined", file=sys.stderr)
    print(f"rmc verify: {len(refs) - len(bad)} of {len(refs)} artifacts sound, {len(bad)} quarantined under "
          f"{args.store / 'quarantine'}")
    return 1 if bad else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rmc.benchmarks.profiles import check
    from rmc.flows.bench_flow import BenchParameters, bench_flow

    params = BenchParameters(profile=args.profile, data_root=str(args.data_root), store_root=str(args.store),
                             out=str(args.out), devices=args.device or None)
    problems = check(params.profile, Path(params.data_root))
    for run, problem in problems:
        print(f"rmc bench: {run}: {problem}", file=sys.stderr)
    if problems or args.check:
        print(f"rmc bench --profile {args.profile}: {'inputs OK' if not problems else f'{len(problems)} inputs cannot be reached here'}")
        return 1 if problems else 0
    start = time.perf_counter()
    out = bench_flow(params)
    print((Path(out) / "results.md").read_text())
    print(f"\nbenchmark wall time {time.perf_counter() - start:.0f} s; outputs in {out}")
    return 0


def find_model(store: Store, text: str) -> Ref:
    """A model artifact by `model/<digest>` (as the run summary lists it) or a digest prefix."""
    digest = text.removeprefix("model/")
    matches = [r for r in store.refs() if r.kind == "model" and r.digest.startswith(digest)] if digest else []
    if len(matches) != 1:
        found = "no model" if not matches else f"{len(matches)} models"
        raise BadConfiguration(f"{found} in {store.root} match {text!r}; `rmc run` prints each model as model/<digest> (summary.json: models[].model.digest)")
    return matches[0]


def cmd_export(args: argparse.Namespace) -> int:
    """A store model as a transformers folder or an ONNX graph (checked against torch)."""
    from rmc_core.export import export_hf, export_onnx

    store = Store(args.store)
    ref = find_model(store, args.model)
    ensure_writable(args.out, "--out")
    if args.format == "hf":
        export_hf(store.path(ref), args.out)
        print(f"rmc export: {ref.kind}/{ref.digest[:12]} -> {args.out} (transformers folder)")
    else:
        parity = export_onnx(store.path(ref), args.out)
        print(f"rmc export: {ref.kind}/{ref.digest[:12]} -> {args.out / 'model.onnx'}; onnxruntime vs torch max |logit "
              f"difference| {parity['max_abs_logit_difference']:.1e} (tolerance {parity['tolerance']:.0e})")
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    from rmc.benchmarks.throughput import run

    run(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rmc", description="Robust Model Compression (Du et al., EACL 2023).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="print the full traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common], help="run RMC and its baselines end to end (default: synthetic task, packaged MiniLM)")
    run.add_argument("--config", type=Path, help="a JSON RunConfig; unspecified fields keep their defaults")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one field, e.g. --set teacher_train.epochs=2 --set 'methods=[\"vanilla\",\"rmc\"]'")
    run.add_argument("--store", type=Path, default=Path("rmc-runs/store"), help="artifact store root (reruns reuse it)")
    run.add_argument("--out", type=Path, default=Path("rmc-runs/latest"), help="where the result tables are written")
    run.add_argument("--device", action="append", help="a device to use (repeat for several); default: all GPUs, else cpu")
    run.add_argument("--runner", choices=["local", "ray", "dask"], default="local",
                     help="where stages run: threads here, or a Ray or Dask cluster (README, Run on a cluster)")
    run.add_argument("--address", help="the Ray cluster or Dask scheduler to use; default: start one on this machine")
    run.add_argument("--concurrency", type=positive_int, help="stages run at once (default: one per GPU; on CPU, cores // 4, at least 1)")
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", parents=[common], help="the paper's Table 4 experiment on real data (profiles: cpu-small, paper, tiny)")
    bench.add_argument("--profile", choices=get_args(ProfileName), default="cpu-small")
    bench.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    bench.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    bench.add_argument("--out", type=Path, default=Path("rmc-runs/bench"))
    bench.add_argument("--device", action="append", help="a device to use (repeat for several)")
    bench.add_argument("--check", action="store_true", help="only validate every run's inputs")
    bench.set_defaults(func=cmd_bench)
    verify = sub.add_parser("verify", parents=[common], help="check every artifact of a store against its digest; "
                                                              "quarantine corrupt ones")
    verify.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    verify.set_defaults(func=cmd_verify)
    export = sub.add_parser("export", parents=[common], help="write a store model as a transformers folder or as ONNX")
    export.add_argument("model", metavar="MODEL_REF", help="model/<digest> from a run's summary.json, or a unique digest prefix")
    export.add_argument("--format", choices=["hf", "onnx"], default="hf")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    export.set_defaults(func=cmd_export)
    speed = sub.add_parser("speed", parents=[common], help="training and prediction throughput: rmc's loop vs a bare loop, fp32/bf16, "
                                         "random/length-grouped batches; writes a CSV")
    from rmc.benchmarks.throughput import add_arguments

    add_arguments(speed)
    speed.set_defaults(func=cmd_speed)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BadConfiguration as err:
        return _fail(err, 2, args.debug)
    except Exception as err:  # noqa: BLE001 - any failure ends as one line and exit 1
        return _fail(err, 1, args.debug)


def _fail(err: Exception, code: int, debug: bool) -> int:
    """One line per failure: the message says what to fix; the traceback is for --debug."""
    if debug:
        traceback.print_exception(err)
    print(f"rmc: {err}" if isinstance(err, BadConfiguration) else f"rmc: {type(err).__name__}: {err}", file=sys.stderr)
    return code


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
