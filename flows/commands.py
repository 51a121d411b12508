"""What each `rmc` command does. Imported only once a command runs, so that `rmc --help`
answers at once (flows/cli.py parses; this module brings torch, transformers and prefect)."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from pydantic import ValidationError
from tqdm.auto import tqdm

from rmc.flows.cli import BadConfiguration
from rmc_core import pipeline
from rmc_core.config import RunConfig
from rmc_core.devices import default_devices
from rmc_core.evaluation.registry import directed_columns, documents
from rmc_core.experiment import ExperimentConfig
from rmc_core.out_folder import check_out, written_whole
from rmc_core.overrides import load_config, one_line
from rmc_core.report import (
    UPPER_BOUND_HEADING,
    comparison_lines,
    inference_lines,
    legend,
    markdown_report,
    premise_lines,
    summary_tables,
    to_markdown,
    upper_bound_table,
    write_tables,
)
from rmc_core.report_plot import write_report_png
from rmc_core.store import Ref, Store
from rmc_core.training import stopping


def write_report(tables: dict, out: Path, task: str) -> None:
    write_tables(tables, out)
    (out / "results.md").write_text(markdown_report(tables, task) + "\n")
    write_report_png(tables, task, out)
    for name, text in documents(tables).items():
        (out / name).write_text(text + "\n")


@contextmanager
def refusing(what: str, model: type = RunConfig) -> Iterator[None]:
    """A refusal raised inside (a validation error, a bad value, a path that cannot be
    used) as one BadConfiguration line, exit 2."""
    try:
        yield
    except ValidationError as err:
        raise BadConfiguration(f"{what}: {one_line(err, model)}") from err
    except (ValueError, OSError) as err:
        raise BadConfiguration(f"{what}: {err}") from err


def preflight_here(cfg: RunConfig, args: argparse.Namespace) -> None:
    """`pipeline.preflight` with the command's store, devices and runner."""
    here = args.runner in ("local", "in-process")
    pipeline.preflight(cfg, Store(args.store), args.device or default_devices(here), devices_here=here)


def checked_config(args: argparse.Namespace) -> RunConfig:
    """The validated config, with everything knowable up front checked: fields, model
    shapes and label sets, devices, that the store can be written, and that `--out` can be
    (outside the store, and new, empty or an rmc output unless --replace: it is replaced
    whole when the run ends)."""
    with refusing("invalid configuration"):
        cfg = load_config(args.config, args.set)
        preflight_here(cfg, args)
        check_out(args.out, args.store, replace=args.replace)
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
def quiet_temporary_server(enabled: bool) -> Iterator[None]:
    """The temporary Prefect server this process starts logs only critical errors: when rmc
    stops it, its services can be cancelled mid-flush and print tracebacks that say nothing
    about the run (the run's own failure is the one line rmc prints). The server inherits
    the environment when it starts; it is restored afterwards. --debug keeps its logs."""
    key = "PREFECT_SERVER_LOGGING_LEVEL"
    previous = os.environ.get(key)
    if enabled and previous is None:
        os.environ[key] = "CRITICAL"
    try:
        yield
    finally:
        if enabled and previous is None:
            os.environ.pop(key, None)


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

    from rmc.flows.rmc_flow import FINISHED, ON_TERMINATION

    def stop(signum: int, frame: object = None) -> None:
        stopping.STOP.set()
        stopping.wait_until_idle(timeout=5)
        for server in list(SubprocessASGIServer._instances.values()):
            server.stop()
        kept = ", ".join(FINISHED) or "none"
        print(f"\nrmc: stopped by {signal.Signals(signum).name}. Finished stages, kept in the store {store}: {kept}. "
              "Run the same command again to resume from them.", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    ON_TERMINATION.append(stop)
    try:
        yield
    finally:
        ON_TERMINATION.remove(stop)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = checked_config(args)
    if args.concurrency:
        os.environ["RMC_CONCURRENCY"] = str(args.concurrency)
    from rmc.flows.rmc_flow import RmcParameters, RunnerConfig, rmc_flow
    from rmc_core.costs import cost_table
    from rmc_core.machine_peak import matmul_peak

    start = time.perf_counter()
    params = RmcParameters(config=cfg, store_root=str(args.store), devices=args.device or [],
                           runner=RunnerConfig(kind=args.runner, address=args.address))
    with stop_on_signals(args.store), quiet_failures(not args.debug), quiet_temporary_server(not args.debug):
        summary = rmc_flow(params)
    wall = time.perf_counter() - start
    # The trainings' MFU against this machine's own matmul peak, where they ran here on the
    # CPU (a GPU's MFU is `rmc speed`'s, against its data sheet; a cluster's workers are elsewhere).
    on_cpu_here = args.runner == "local" and all(d == "cpu" for d in params.devices or default_devices(True))
    peak = functools.cache(matmul_peak) if on_cpu_here else None
    store = Store(params.store_root)
    tables = store.tables(summary.report)
    first_seed = min(m.seed for m in summary.models)
    models = {m.name: f"model/{m.model.digest}" for m in summary.models if m.seed == first_seed}
    with written_whole(args.out, "rmc run") as out:
        write_report(tables, out, cfg.task_name)
        for ref in summary.measured.values():
            write_tables(store.tables(ref), out)
        if summary.inference:
            inference = store.table(summary.inference, "inference")
            (out / "inference.md").write_text("\n".join(["# Size and inference speed", "", *inference_lines(inference)]) + "\n")
        cost_table(summary.artifacts, summary.cached, store, peak=peak).to_csv(out / "costs.csv", index=False)
        (out / "summary.json").write_text(json.dumps({**summary.model_dump(mode="json"), "wall_seconds": wall}, indent=1))
        (out / "config.json").write_text(cfg.model_dump_json(indent=1))
    print(*(to_markdown(table) for table in summary_tables(tables)), sep="\n\n")
    if (upper := upper_bound_table(tables)) is not None:
        print("", UPPER_BOUND_HEADING, to_markdown(upper), sep="\n")
    print("\n".join(["", *legend(tables), "", *premise_lines(tables), "", *comparison_lines(tables)]))
    print("\nModels (rmc export MODEL_REF --format hf|onnx --out DIR):", *(f"  {m}: {r}" for m, r in models.items()), sep="\n")
    print(f"\nwall time {wall:.0f} s; {len(summary.computed)} stages computed, {len(summary.cached)} from cache; tables and report.png in {args.out}")
    return 0


def checked_experiment(args: argparse.Namespace) -> ExperimentConfig:
    """The validated experiment, every run of it preflighted and `--out` checked, before
    anything trains."""
    from rmc_core.experiment import read_experiment

    if args.file is None:
        raise BadConfiguration("name an experiment file (or --merge DIR ...)")
    with refusing(f"invalid experiment {args.file}", ExperimentConfig):
        exp = read_experiment(args.file, tuple(args.seeds) if args.seeds else None)
        for run in exp.runs():
            try:
                preflight_here(run.config, args)
            except ValueError as err:
                raise ValueError(f"run {run.label}: {err}") from None
        check_out(args.out, args.store, replace=args.replace)
    return exp


def experiment_command(args: argparse.Namespace) -> str:
    """The command that reproduces the report, for the report to name."""
    if args.merge:
        return f"rmc experiment --merge {' '.join(map(str, args.merge))}"
    return " ".join(["rmc experiment", str(args.file), *(["--seeds", *map(str, args.seeds)] if args.seeds else [])])


def cmd_experiment(args: argparse.Namespace) -> int:
    from rmc_core.experiment_report import ARTIFACTS, experiment_tables, markdown, read_merged, share_columns, write_experiment
    from rmc_core.experiment_run import experiment_pairs

    if args.merge:
        if args.file is not None:
            raise BadConfiguration("--merge reads the experiment from its folders; name no file")
        with refusing("cannot merge", ExperimentConfig):
            exp, by_seed, premise, envelopes, artifacts = read_merged(args.merge)
            args.out = args.out or Path("rmc-runs/experiments") / f"{exp.name}-merged"
            check_out(args.out, args.store, replace=args.replace)
        declared = pd.read_csv(args.merge[0] / "columns.csv", keep_default_na=False)
        metrics = directed_columns(declared, by_seed.columns)
        tables = experiment_tables(exp, by_seed, premise, experiment_pairs(exp, exp.runs()), metrics, envelopes,
                                   share_columns(declared)) | {"columns": declared, ARTIFACTS: artifacts}
    else:
        if args.file is not None and args.out is None:
            args.out = Path("rmc-runs/experiments") / args.file.stem
        exp = checked_experiment(args)
        if args.check:
            print(f"rmc experiment {exp.name}: {len(exp.runs())} runs, inputs OK")
            return 0
        if args.concurrency:
            os.environ["RMC_CONCURRENCY"] = str(args.concurrency)
        tables, metrics = run_experiment_here(exp, args)
    with written_whole(args.out, "rmc experiment") as out:
        write_experiment(out, exp, tables, metrics, experiment_command(args))
    print(markdown(exp, tables, metrics, experiment_command(args)))
    print(f"report, per-seed values and experiment.png in {args.out}")
    return 0


def run_experiment_here(exp: ExperimentConfig, args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The experiment's runs and report: the Prefect flow, or the same DAG in this process."""
    store = Store(args.store)
    if args.runner == "in-process":
        from rmc.tasks.in_process import arm_in_process, resuming
        from rmc_core.experiment_run import run_experiment

        with stop_on_signals(args.store):
            return run_experiment(exp, store, arm_in_process(args.store, args.device), resuming(store))
    from rmc.flows.experiment_flow import ExperimentParameters, experiment_flow
    from rmc.flows.rmc_flow import RunnerConfig

    params = ExperimentParameters(experiment=exp, store_root=str(args.store), devices=args.device or [],
                                  runner=RunnerConfig(kind=args.runner, address=args.address))
    with stop_on_signals(args.store), quiet_failures(not args.debug), quiet_temporary_server(not args.debug):
        summary = experiment_flow(params)
    return store.tables(summary.report), summary.metrics


def cmd_verify(args: argparse.Namespace) -> int:
    """Check every file of a store: each artifact against its digest, its kind's layout and
    its run records (an unsound one is quarantined with its records; the next run
    recomputes it), modeling files against rmc's own, cached task results and in-process
    records for their data-only shape (unsafe ones quarantined, never read), writers'
    leftovers under tmp/, and anything rmc did not write (reported, left in place)."""
    from rmc.tasks.in_process import unsafe_in_process_records
    from rmc.tasks.result_records import unsafe_records
    from rmc_core.artifact_layout import modeling_file_problem
    from rmc_core.store import UnsafeStore

    store = Store(args.store)
    try:
        store.check_layout()
    except UnsafeStore as err:
        raise BadConfiguration(f"{err}; nothing was checked or moved") from err
    if not (args.store / "objects").is_dir():
        raise BadConfiguration(f"{args.store} is not an rmc store (no objects/ folder)")

    def report(message: str) -> None:
        print(f"rmc verify: {message}", file=sys.stderr)

    refs = store.refs()
    bad = []
    for ref in tqdm(refs, desc="verify", unit="artifact"):
        if (why := store.check(ref, fresh=True)) is not None:
            bad.append(ref)
            report(f"{ref.kind} {ref.digest[:12]}: {why}; quarantined with its run records")
    foreign = [why for r in refs if r not in bad and r.kind == "model" and (why := modeling_file_problem(store.path(r)))]
    for why in foreign:
        report(f"{why}; left in place")
    unsafe = unsafe_records(args.store) + unsafe_in_process_records(store)
    for path, why in unsafe:
        target = store.set_aside(path, f"record-{path.name.lstrip('.')}")
        report(f"{why}; quarantined as {target.name}")
    leftovers = sorted(store.folder("tmp").iterdir()) if store.folder("tmp").is_dir() else []
    for path in leftovers:
        if path.is_symlink() or not path.is_dir():
            target = store.set_aside(path, "tmp-entry")
            report(f"{path} is not a writer's folder (a link or a file); quarantined as {target.name}")
            unsafe.append((path, "tmp"))
        else:
            report(f"{path}: an unfinished write (a crashed run's, or one running now); nothing reads it: "
                   "delete it once no run uses this store")
    strays = store.strays()
    for path in strays:
        report(f"{path} was not written by rmc; left in place")
    print(f"rmc verify: {len(refs) - len(bad)} of {len(refs)} artifacts sound, {len(bad)} unsound; {len(foreign)} foreign "
          f"modeling files; {len(unsafe)} unsafe records; {len(strays)} stray entries; quarantine: {args.store / 'quarantine'}")
    return 1 if bad or foreign or unsafe or strays else 0


def find_model(store: Store, text: str) -> Ref:
    """A model artifact by `model/<digest>` (as the run summary lists it) or a digest prefix."""
    digest = text.removeprefix("model/")
    matches = [r for r in store.refs() if r.kind == "model" and r.digest.startswith(digest)] if digest else []
    if len(matches) != 1:
        found = "no model" if not matches else f"{len(matches)} models"
        raise BadConfiguration(f"{found} in {store.root} match {text!r}; `rmc run` prints each model as model/<digest> (summary.json: models[].model.digest)")
    return matches[0]


def cmd_export(args: argparse.Namespace) -> int:
    """A store model as a transformers folder or an ONNX graph (checked against torch),
    written whole into a new or empty `--out`, or over an earlier rmc output (anything
    else only with --replace)."""
    from rmc.flows.api import check_export, write_export

    ref = find_model(Store(args.store), args.model)
    try:
        check_export(ref, args.out, args.store, args.format, args.replace)
        card = run_card(args.run, ref) if args.run else None
    except (ValueError, OSError) as err:
        raise BadConfiguration(str(err)) from err
    write_export(ref, args.out, args.store, args.format, card)
    if args.format == "hf":
        done = f"{args.out} (transformers folder{', with its model card README.md' if card else ''})"
    else:
        parity = json.loads((args.out / "parity.json").read_text())
        done = (f"{args.out / 'model.onnx'}; onnxruntime vs torch max |logit difference| "
                f"{parity['max_abs_logit_difference']:.1e} (tolerance {parity['tolerance']:.0e})")
    print(f"rmc export: {ref.kind}/{ref.digest[:12]} -> {done}")
    return 0


def run_card(run: Path, ref: Ref) -> tuple:
    """What a model card needs from a run folder (`rmc run --out`): the model's name there,
    the run's tables, its config and its size table."""
    import pandas as pd

    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else None
    if summary is None or not (run / "config.json").is_file():
        raise ValueError(f"--run {run} is not an `rmc run --out` folder with summary.json and config.json")
    names = [m["name"] for m in summary["models"] if m["model"]["digest"] == ref.digest]
    if not names:
        raise ValueError(f"model {ref.digest[:12]} is not one of the run {run}'s models")
    tables = {p.stem: pd.read_parquet(p) for p in run.glob("*.parquet")}
    inference = tables.get("inference")
    return names[0], tables, json.loads((run / "config.json").read_text()), inference


def cmd_speed(args: argparse.Namespace) -> int:
    from rmc.benchmarks.throughput import COLUMNS, run
    from rmc_core.data.registry import TASKS
    from rmc_core.out_folder import check_out_file

    if args.task not in TASKS:
        raise BadConfiguration(f"unknown task {args.task!r}; choose one of {', '.join(sorted(TASKS))}")
    try:
        check_out_file(args.out, COLUMNS)
    except (ValueError, OSError) as err:
        raise BadConfiguration(str(err)) from err
    run(args)
    return 0
