"""The `rmc` command: runs the RMC flow in Prefect's ephemeral mode (no server to start)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from rmc_core.overrides import load_config
from rmc_core.report import comparison_lines, headline, markdown_report, premise_lines, to_markdown
from rmc_core.store import Store

# No network here; the local server's telemetry would only log errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def write_tables(tables: dict, out: Path, task: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
        frame.to_csv(out / f"{name}.csv", index=False)
    (out / "results.md").write_text(markdown_report(tables, task) + "\n")


def cmd_run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.set)
    except (ValidationError, ValueError) as err:
        print(f"rmc: invalid configuration:\n{err}", file=sys.stderr)
        return 2
    if args.concurrency:
        os.environ["RMC_CONCURRENCY"] = str(args.concurrency)
    from flows.rmc_flow import RmcParameters, rmc_flow

    start = time.perf_counter()
    params = RmcParameters(config=cfg, store_root=str(args.store), devices=args.device or None)
    summary = rmc_flow(params)
    wall = time.perf_counter() - start
    tables = Store(params.store_root).tables(summary.report)
    write_tables(tables, args.out, cfg.task)
    (args.out / "summary.json").write_text(json.dumps({**summary.model_dump(mode="json"), "wall_seconds": wall}, indent=1))
    print(to_markdown(headline(tables)))
    print("\n".join(["", *premise_lines(tables), "", *comparison_lines(tables)]))
    print(f"\nwall time {wall:.0f} s; {len(summary.computed)} stages computed, {len(summary.cached)} from cache; tables in {args.out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from flows.bench_flow import BenchParameters, bench_flow, check

    params = BenchParameters(profile=args.profile, data_root=str(args.data_root), store_root=str(args.store),
                             out=str(args.out), devices=args.device or None)
    problems = check(params)
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


def cmd_speed(args: argparse.Namespace) -> int:
    from benchmarks.throughput import run

    run(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rmc", description="Robust Model Compression (Du et al., EACL 2023).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run RMC and its baselines end to end (default: synthetic task, packaged MiniLM)")
    run.add_argument("--config", type=Path, help="a JSON RunConfig; unspecified fields keep their defaults")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one field, e.g. --set teacher_train.epochs=2 --set 'methods=[\"vanilla\",\"rmc\"]'")
    run.add_argument("--store", type=Path, default=Path("rmc-runs/store"), help="artifact store root (reruns reuse it)")
    run.add_argument("--out", type=Path, default=Path("rmc-runs/latest"), help="where the result tables are written")
    run.add_argument("--device", action="append", help="a device to use (repeat for several); default: all GPUs, else cpu")
    run.add_argument("--concurrency", type=int, help="stages run at once (default: one per GPU; on CPU, cores // 4, at least 1)")
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="the paper's Table 4 experiment on real data (profiles: cpu-small, paper, tiny)")
    bench.add_argument("--profile", choices=["cpu-small", "paper", "tiny"], default="cpu-small")
    bench.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    bench.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    bench.add_argument("--out", type=Path, default=Path("rmc-runs/bench"))
    bench.add_argument("--device", action="append", help="a device to use (repeat for several)")
    bench.add_argument("--check", action="store_true", help="only validate every run's inputs")
    bench.set_defaults(func=cmd_bench)
    speed = sub.add_parser("speed", help="training and prediction throughput: rmc's loop vs a bare loop, fp32/bf16, "
                                         "random/length-grouped batches; writes a CSV")
    from benchmarks.throughput import add_arguments

    add_arguments(speed)
    speed.set_defaults(func=cmd_speed)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
