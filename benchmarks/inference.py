"""Size and CPU speed of the models of several finished runs, measured together.

A run measures its own models when it finishes; comparing kinds of compression (IMP,
structured, truncated) across runs needs them measured in one process, one after another,
on the same rows, with nothing else running. This does that for the models listed in each
run's summary.json (each distinct model once) and writes one CSV:

    python -m rmc.benchmarks.inference --run rmc-runs/cpu-structured-mnli --run rmc-runs/cpu-imp40-mnli \
        --csv docs/results/structured_mnli_inference.csv

`--onnx` adds each model as served by ONNX Runtime: exported by `rmc export --format onnx`
(an int8 model becomes an ONNX Runtime int8 graph; the export's parity check applies),
timed in the same rounds as the torch models, with its own dev accuracy measured on every
dev row of the run (not copied from the torch model). Speed-ups are then given over the
torch teacher and, in the `_vs_onnx_teacher` columns, over the teacher in ONNX Runtime:
the second isolates what compression buys from what the runtime buys.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import DataCollatorWithPadding

from rmc_core.evaluation.inference_cost import Timed, prepared, size_figures, speed_figures
from rmc_core.export import export_onnx
from rmc_core.models import load_model
from rmc_core.report import to_markdown
from rmc_core.store import Ref, Store
from rmc_core.training.predict import encode_pairs

ONNX = " (onnx)"
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def run_models(run: Path) -> tuple[dict[str, str], Ref, pd.DataFrame]:
    """A finished run's models (name -> model/<digest>), its data artifact and its results table."""
    summary = json.loads((run / "summary.json").read_text())
    first_seed = min(m["seed"] for m in summary["models"])
    models = {m["name"]: f"model/{m['model']['digest']}" for m in summary["models"] if m["seed"] == first_seed}
    return models, Ref(**summary["artifacts"]["prepare-data"]), pd.read_csv(run / "results.csv")


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
               batch_size: int) -> tuple[Timed, dict[str, float], float]:
    """The model exported to `folder` and ready to time on the torch model's own inputs, its
    size figures (the graph file) and its accuracy on `dev`."""
    export_onnx(model_dir, folder)
    session = Session(folder / "model.onnx")
    as_graph = Timed(session, [graph_inputs(x) for x in timed.singles], [graph_inputs(x) for x in timed.batches])
    raw = (folder / "model.onnx").read_bytes()
    size = {"weights_mb": len(raw) / 2**20, "weights_deflated_mb": len(zlib.compress(raw, 6)) / 2**20}
    _, tokenizer = load_model(model_dir)
    collate, encoded = DataCollatorWithPadding(tokenizer), encode_pairs(dev, tokenizer, max_length)
    logits = np.concatenate([session(**graph_inputs(collate(encoded[i : i + batch_size])))
                             for i in range(0, len(encoded), batch_size)])
    return as_graph, size, float(np.mean(logits.argmax(axis=1) == dev["label"].to_numpy()))


def measure(runs: list[Path], store: Store, rows: int, max_length: int, repeats: int, batch_size: int = 32,
            onnx: bool = False) -> pd.DataFrame:
    """One row per distinct model of `runs` (and per ONNX graph with `onnx`), with the dev
    accuracy its run reported; the rows timed are the first `rows` dev rows of the first run's data."""
    models: dict[str, tuple[str, str, float]] = {}
    data = None
    for run in runs:
        refs, data_ref, results = run_models(run)
        data = data or data_ref
        accuracy = results.set_index("model")["acc_dev"]
        for name, ref in refs.items():
            taken = any(n == name for n, _, _ in models.values())
            models.setdefault(ref, (f"{name} ({run.name})" if taken else name, run.name, float(accuracy[name])))
    dev = store.table(data, "dev")
    paths = {name: store.path(Ref(kind="model", digest=ref.removeprefix("model/"))) for ref, (name, _, _) in models.items()}
    timed = {name: prepared(path, dev.head(rows), max_length, batch_size) for name, path in paths.items()}
    rows_out = {name: {"run": run, "acc_dev": acc, **size_figures(timed[name].model, paths[name]), "ref": ref}
                for ref, (name, run, acc) in models.items()}
    with tempfile.TemporaryDirectory() as graphs:
        if onnx:
            for ref, (name, run, _) in models.items():
                graph, size, acc = onnx_model(paths[name], Path(graphs) / ref.removeprefix("model/"), timed[name], dev,
                                              max_length, batch_size)
                timed[name + ONNX] = graph
                rows_out[name + ONNX] = {**rows_out[name], "acc_dev": acc, **size}
        references = {"": "teacher", "_vs_onnx_teacher": "teacher" + ONNX} if onnx else {"": "teacher"}
        speed = speed_figures(timed, repeats, references)
    table = pd.DataFrame([{"model": name, **rows_out[name], **speed[name], "batch_size": batch_size} for name in timed])
    return table[[c for c in table.columns if c != "ref"] + ["ref"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append", required=True, help="the --out folder of a finished `rmc run`")
    parser.add_argument("--store", type=Path, default=Path("rmc-runs/store"))
    parser.add_argument("--rows", type=int, default=256, help="dev rows timed (the first ones)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9, help="rounds in which every model runs in turn; medians are reported")
    parser.add_argument("--onnx", action="store_true", help="also each model exported to ONNX Runtime (int8 models as int8 graphs)")
    parser.add_argument("--csv", type=Path, required=True)
    args = parser.parse_args(argv)
    table = measure(args.run, Store(args.store), args.rows, args.max_length, args.repeats, onnx=args.onnx)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False)
    print(to_markdown(table.drop(columns="ref")))
    print(f"\n{torch.get_num_threads()} torch threads; written to {args.csv}")


if __name__ == "__main__":
    main()
