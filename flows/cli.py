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
from rmc_core.report import results_summary, to_markdown
from rmc_core.store import Store

# No network here; the local server's telemetry would only log errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def write_tables(tables: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
        frame.to_csv(out / f"{name}.csv", index=False)
    (out / "results.md").write_text(to_markdown(results_summary(tables["results"])) + "\n")


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
    write_tables(tables, args.out)
    (args.out / "summary.json").write_text(json.dumps({**summary.model_dump(mode="json"), "wall_seconds": wall}, indent=1))
    print(to_markdown(results_summary(tables["results"])))
    print(f"\nwall time {wall:.0f} s; {len(summary.computed)} stages computed, {len(summary.cached)} from cache; tables in {args.out}")
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
