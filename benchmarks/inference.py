"""Size and CPU speed of the models of finished runs or experiments, measured together.

A run measures its own models when it finishes; comparing kinds of compression (IMP,
structured, truncated) across runs needs them measured in one process, one after another,
on the same rows, with nothing else running. This does that for the models listed in each
run's summary.json or each experiment's artifacts.csv (each distinct model once, first
seed) and writes one CSV, and beside it the seconds of every round (`<csv>_rounds.csv`), so
that every interval can be recomputed:

    python -m rmc.benchmarks.inference --experiment rmc-runs/experiments/fast-mnli-structured \
        --store rmc-runs/store --onnx --reference imp40-vanilla --csv docs/results/fast_structured_inference.csv

`--onnx` adds each model as served by ONNX Runtime: exported by `rmc export --format onnx`
(an int8 model becomes an ONNX Runtime int8 graph; the export's parity check applies),
timed in the same rounds as the torch models, with its own dev accuracy measured on every
dev row of the run (not copied from the torch model). Speed-ups are then given over the
torch teacher and, in the `_vs_onnx_teacher` columns, over the teacher in ONNX Runtime:
the second isolates what compression buys from what the runtime buys.

`--reference MODEL` compares every model's dev accuracy with that model's (the torch
model as its run trained it) on the same dev rows: the paired difference with its 95 %
bootstrap interval over rows, and whether its lower bound clears `-margin` (non-inferior).
"""

from __future__ import annotations

import argparse
import tempfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from transformers import DataCollatorWithPadding

from rmc_core.evaluation.inference_cost import Timed, figures_from_rounds, prepared, size_figures, timed_rounds
from rmc_core.evaluation.statistics import paired_accuracy_difference
from rmc_core.export import export_onnx
from rmc_core.finished import Listed, add_model_arguments, chosen_models
from rmc_core.machine_peak import feature_line
from rmc_core.models import load_model
from rmc_core.report import to_markdown
from rmc_core.stages import split_probs
from rmc_core.store import Ref, Store
from rmc_core.training.predict import encode_pairs

ONNX = " (onnx)"
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Session:
    """An ONNX Runtime session called like a model on a collated batch, on as many threads as torch uses."""

    def __init__(self, graph: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def __call__(self, **batch: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], batch)[0]


def graph_inputs(batch: dict) -> dict[str, np.ndarray]:
    """A collated batch as the exported graph's inputs (token types zero where a tokenizer has none)."""
    ids = batch["input_ids"].numpy()
    return {k: batch[k].numpy() if k in batch else np.zeros_like(ids) for k in GRAPH_INPUTS}


def onnx_model(model_dir: Path, folder: Path, timed: Timed, dev: pd.DataFrame, max_length: int,
               batch_size: int) -> tuple[Timed, dict[str, float], np.ndarray]:
    """The model exported to `folder` and ready to time on the torch model's own inputs, its
    size figures (the graph file) and which `dev` rows it gets right."""
    export_onnx(model_dir, folder)
    session = Session(folder / "model.onnx")
    as_graph = Timed(session, [graph_inputs(x) for x in timed.singles], [graph_inputs(x) for x in timed.batches])
    raw = (folder / "model.onnx").read_bytes()
    size = {"weights_mb": len(raw) / 2**20, "weights_deflated_mb": len(zlib.compress(raw, 6)) / 2**20}
    _, tokenizer = load_model(model_dir)
    collate, encoded = DataCollatorWithPadding(tokenizer), encode_pairs(dev, tokenizer, max_length)
    logits = np.concatenate([session(**graph_inputs(collate(encoded[i : i + batch_size])))
                             for i in range(0, len(encoded), batch_size)])
    return as_graph, size, logits.argmax(axis=1) == dev["label"].to_numpy()


def dev_correct(store: Store, predictions: Ref, dev: pd.DataFrame) -> np.ndarray:
    """Which dev rows a model got right, from the predictions its run stored."""
    return split_probs(store, predictions, "dev").argmax(axis=1) == dev["label"].to_numpy()


def against_reference(correct: dict[str, np.ndarray], reference: str, margin: float) -> dict[str, dict[str, float]]:
    """Each model's dev accuracy minus `reference`'s on the same rows (paired bootstrap over
    rows), and whether the interval's lower bound clears -margin."""
    if reference not in correct:
        raise ValueError(f"--reference {reference!r} is not one of the models measured: {', '.join(correct)}")
    out = {}
    for name, c in correct.items():
        diff = paired_accuracy_difference(c[None, :].astype(float), correct[reference][None, :].astype(float))
        out[name] = {"dev_minus_reference": diff.estimate, "dev_minus_reference_low": diff.low,
                     "dev_minus_reference_high": diff.high, "non_inferior": bool(diff.low > -margin)}
    return out


def round_table(rounds: dict[str, np.ndarray], timed: dict[str, Timed]) -> pd.DataFrame:
    """Seconds per pass over the timed rows, each model in each round, at batch 1 and batched."""
    return pd.DataFrame([{"model": name, "round": i, "rows": len(timed[name].singles), "seconds_b1": b1,
                          "seconds_batched": batched}
                         for name, r in rounds.items() for i, (b1, batched) in enumerate(r)])


class Measured(NamedTuple):
    table: pd.DataFrame
    rounds: pd.DataFrame


def measure(listed: list[Listed], store: Store, rows: int, max_length: int, repeats: int, batch_size: int = 32,
            onnx: bool = False, reference: str | None = None, margin: float = 0.02) -> Measured:
    """One row per distinct model of `listed` (and per ONNX graph with `onnx`), with its dev
    accuracy on every dev row of the first model's data; the rows timed are the first `rows`
    of them."""
    models: dict[Ref, tuple[str, Listed]] = {}
    for m in listed:
        taken = any(n == m.name for n, _ in models.values())
        models.setdefault(m.model, (f"{m.name} ({m.run})" if taken else m.name, m))
    dev = store.table(listed[0].data, "dev")
    paths = {name: store.path(ref) for ref, (name, _) in models.items()}
    correct = {name: dev_correct(store, m.predictions, dev) for name, m in models.values()}
    timed = {name: prepared(path, dev.head(rows), max_length, batch_size) for name, path in paths.items()}
    rows_out = {name: {"run": m.run, **size_figures(timed[name].model, paths[name]), "ref": f"model/{ref.digest}"}
                for ref, (name, m) in models.items()}
    with tempfile.TemporaryDirectory() as graphs:
        if onnx:
            for ref, (name, _) in models.items():
                graph, size, correct[name + ONNX] = onnx_model(paths[name], Path(graphs) / ref.digest, timed[name], dev,
                                                               max_length, batch_size)
                timed[name + ONNX] = graph
                rows_out[name + ONNX] = {**rows_out[name], **size}
        references = {"": "teacher", "_vs_onnx_teacher": "teacher" + ONNX} if onnx else {"": "teacher"}
        rounds = timed_rounds(timed, repeats)
    speed = figures_from_rounds(rounds, timed, references)
    compared = against_reference(correct, reference, margin) if reference else {}
    table = pd.DataFrame([{"model": name, **rows_out[name], "acc_dev": float(np.mean(correct[name])), "dev_rows": len(dev),
                           **compared.get(name, {}), **speed[name], "batch_size": batch_size, "cpu": feature_line()}
                          for name in timed])
    return Measured(table[[c for c in table.columns if c != "ref"] + ["ref"]], round_table(rounds, timed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser, pick=False)
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--rows", type=int, default=256, help="dev rows timed (the first ones)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32, help="rows per batch of the batched figures")
    parser.add_argument("--repeats", type=int, default=9, help="rounds in which every model runs in turn; medians are reported")
    parser.add_argument("--onnx", action="store_true", help="also each model exported to ONNX Runtime (int8 models as int8 graphs)")
    parser.add_argument("--reference", help="a model whose dev accuracy every other one is compared with (paired, over rows)")
    parser.add_argument("--margin", type=float, default=0.02, help="non-inferior: the difference's lower bound above -margin")
    parser.add_argument("--csv", type=Path, required=True)
    args = parser.parse_args(argv)
    listed = chosen_models(parser, args)
    measured = measure(listed, Store(args.store), args.rows, args.max_length, args.repeats, args.batch_size, onnx=args.onnx,
                       reference=args.reference, margin=args.margin)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    measured.table.to_csv(args.csv, index=False)
    rounds = args.csv.with_name(f"{args.csv.stem}_rounds.csv")
    measured.rounds.to_csv(rounds, index=False)
    print(to_markdown(measured.table.drop(columns=["ref", "cpu"])))
    print(f"\n{torch.get_num_threads()} torch threads; CPU: {feature_line()}\nwritten to {args.csv} and {rounds}")


if __name__ == "__main__":
    main()
