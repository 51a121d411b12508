"""What a stored artifact of each kind must hold, checked without loading it.

A folder can hash to its name and still not be what its kind promises (a model folder with
only a pickled `pytorch_model.bin`, a data artifact moved under `objects/model/`): a run
would then fail late, deep in a stage, with a bare `FileNotFoundError`. The store checks
these file names when it verifies an artifact, so such a folder is quarantined and its
stage recomputed instead. Light on purpose (no torch): `rmc verify` and the store use it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# The int8 layout (rmc_core/quantization.py writes it): int8 tensors with their scales, and
# the description of which modules are int8.
INT8_WEIGHTS = "model-int8.safetensors"
QUANTIZATION = "quantization.json"
# Files that deserialize by unpickling: rmc never writes one, and never reads one.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# The one code file an artifact may hold: a structured student's modeling file, which
# `save_pretrained` copies beside its weights for users without rmc.
MODELING_FILE = "pruned_bert.py"


def own_modeling_source() -> bytes:
    """rmc's own `pruned_bert.py`, read from the installed package (not imported)."""
    spec = importlib.util.find_spec("rmc_core.pruned_bert")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).read_bytes()


def _model_problem(names: set[str]) -> str | None:
    if "config.json" not in names:
        return "a model artifact without config.json"
    if "tokenizer_config.json" not in names:
        return "a model artifact without tokenizer_config.json"
    if QUANTIZATION in names:
        return None if INT8_WEIGHTS in names else f"an int8 model artifact without {INT8_WEIGHTS}"
    if "model.safetensors" not in names and "model.safetensors.index.json" not in names:
        return "a model artifact without model.safetensors (rmc stores weights as safetensors only)"
    return None


def _tables_problem(names: set[str]) -> str | None:
    others = sorted(n for n in names if not n.endswith(".parquet") and n != "meta.json")
    if others:
        return f"a table artifact holding {', '.join(others[:3])}{' ...' if len(others) > 3 else ''} (only parquet files and meta.json)"
    if not any(n.endswith(".parquet") for n in names):
        return "a table artifact without parquet files"
    return None


def contents_problem(kind: str, files: list[str]) -> str | None:
    """Why an artifact folder of `kind` holding `files` (paths relative to it, its `_run`
    records left out) is not one, or None."""
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles:
        return f"holds {pickles[0]}, a pickle file (rmc never writes or reads one)"
    code = sorted(f for f in files if f.endswith(".py") and f != MODELING_FILE)
    if code:
        return f"holds code file {code[0]} (rmc stores no code)"
    top = {f for f in files if "/" not in f}
    return _model_problem(top) if kind == "model" else _tables_problem(set(files))


def modeling_file_problem(folder: Path) -> str | None:
    """An artifact's modeling file that is not rmc's own (rmc never runs it, and export
    writes rmc's own; a differing copy is an older rmc's or someone's edit)."""
    path = folder / MODELING_FILE
    if path.is_file() and path.read_bytes() != own_modeling_source():
        return f"{path} differs from rmc's own {MODELING_FILE} (never run: rmc loads and exports its own)"
    return None
