"""The `rmc` command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from rmc_core.overrides import load_config
from rmc_core.pipeline import run_local
from rmc_core.report import results_summary, to_markdown


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
    start = time.perf_counter()
    tables = run_local(cfg, args.store)
    write_tables(tables, args.out)
    print(to_markdown(results_summary(tables["results"])))
    print(f"\nwall time {time.perf_counter() - start:.0f} s; tables in {args.out}")
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
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
