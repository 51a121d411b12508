"""What the role check on substitutes does to the attack: success rates with and without it.

The attack's candidates are embedding neighbours, some of another part of speech or number
(painter -> paint, pilot -> pilots); `attack.keep_role` drops those (docs/attack.md). This
attacks the same dev rows of each model of a finished run or experiment (first seed; `--model`
picks some) once with every neighbour and once with the role check, and writes the rates
of both (`--csv`) and the successful attacks with the check on, for people to read and judge
(`--examples`, markdown):

    python -m rmc.benchmarks.attack_role --experiment rmc-runs/experiments/fast-mnli-structured \
        --model teacher --model imp40-vanilla --rows 200 --csv docs/results/attack_role.csv \
        --examples docs/results/attack_role_examples.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from rmc_core import stages
from rmc_core.config import TrainConfig
from rmc_core.data.registry import task_spec
from rmc_core.evaluation.attack import AttackConfig, attack_summary
from rmc_core.finished import Listed, add_model_arguments, chosen_models
from rmc_core.report import to_markdown
from rmc_core.store import Store


def attack_both_ways(listed: list[Listed], store: Store, rows: int, seed: int = 0,
                     max_changed: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per model and setting, the attack's summary; and every attacked row of every run."""
    first = listed[0].config
    data_ref = stages.prepare_data(first.task, first.data, store)
    predict = TrainConfig(eval_batch_size=128, precision="fp32")
    summaries, attacked = [], []
    for m in {m.model: m for m in listed}.values():  # a teacher shared by several runs is attacked once
        for keep_role in (False, True):
            settings = AttackConfig(examples=rows, seed=seed, keep_role=keep_role, max_changed=max_changed)
            ref = stages.query_model("attack", m.model, data_ref, first.task, settings, predict, store,
                                     desc=f"{m.name} keep_role={keep_role}")
            table = store.table(ref, "rows")
            summaries.append({"model": m.name, "keep_role": keep_role, **attack_summary(table)})
            attacked.append(table.assign(model=m.name, keep_role=keep_role))
    return pd.DataFrame(summaries), pd.concat(attacked, ignore_index=True)


def examples_page(rows: pd.DataFrame, labels: tuple[str, ...], most: int) -> str:
    """The successful attacks with the role check on, as a table to read and judge."""
    won = rows[rows["keep_role"] & rows["success"] & (rows["pred_before"] == rows["label"])].head(most)
    lines = ["| model | gold | after | similarity | original | adversarial |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.model} | {labels[r.label]} | {labels[r.pred_after]} | {r.similarity:.3f} | {r.original} | "
              f"{r.adversarial} |" for r in won.itertuples()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--rows", type=int, default=200, help="dev rows attacked per model (the same rows for each)")
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--examples", type=Path, help="write the successful attacks with the role check (markdown)")
    parser.add_argument("--most", type=int, default=50, help="successful attacks written to --examples")
    args = parser.parse_args(argv)
    listed = chosen_models(parser, args)
    summaries, rows = attack_both_ways(listed, Store(args.store), args.rows)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    summaries.to_csv(args.csv, index=False)
    rows.to_csv(args.csv.with_name(f"{args.csv.stem}_rows.csv"), index=False)
    print(to_markdown(summaries))
    if args.examples:
        args.examples.write_text(examples_page(rows, task_spec(listed[0].config.task).labels, args.most))
    print(f"\nwritten to {args.csv}" + (f" and {args.examples}" if args.examples else ""))


if __name__ == "__main__":
    main()
