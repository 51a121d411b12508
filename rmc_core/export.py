"""Models out of the store: as a transformers folder, or as an ONNX graph checked against torch.

Store artifacts are already transformers checkpoints; `export_hf` copies one without the
store's own records. `export_onnx` traces the classifier with dynamic batch and sequence
axes and refuses to call the export done unless onnxruntime reproduces torch's logits.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from rmc_core.artifact_layout import MODELING_FILE, own_modeling_source
from rmc_core.models import load_model
from rmc_core.pruned_bert import PRUNED_OF
from rmc_core.quantization import fp32_twin, is_int8
from rmc_core.store import RUN_INFO

ONNX_TOLERANCE = 1e-4
# Parity probes: one short pair alone and a padded batch of uneven pairs, so that both
# dynamic axes and the attention mask are exercised.
PROBES = (
    [("A man is playing a guitar.", "A person plays music.")],
    [("The doctor near the actor danced.", "The actor danced."), ("Is it raining?", "Yes"),
     ("Two dogs run through a field of tall grass on a sunny afternoon.", "Animals are outside."), ("Hi", "Hello there")],
)


def export_hf(model_dir: Path, out: Path) -> None:
    """The checkpoint as a plain transformers folder. A structured student gets its
    modeling file (load with trust_remote_code=True) written from rmc's own source, never
    copied from the store: users run that file, and a shared store is not trusted with code."""
    refuse_format(model_dir, "hf")
    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns(RUN_INFO, "*.py"), dirs_exist_ok=True)
    if json.loads((model_dir / "config.json").read_text()).get("model_type") in {c.model_type for c, _ in PRUNED_OF.values()}:
        (out / MODELING_FILE).write_bytes(own_modeling_source())
    readable(out)


def readable(out: Path) -> None:
    """Exported files readable as the user's umask allows (safetensors writes 0600, and the
    store keeps what it was given): an export is meant to be shared and served."""
    umask = os.umask(0)
    os.umask(umask)
    for path in out.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)


def refuse_format(model_dir: Path, fmt: str) -> None:
    """Raise ValueError when `fmt` cannot hold the model: a transformers folder has no
    int8 layers (torch's dynamic int8 modules are not a transformers format)."""
    if fmt == "hf" and is_int8(model_dir):
        raise ValueError(f"{model_dir.name[:12]} is an int8 model, which a transformers folder cannot hold; "
                         "export it with --format onnx (an ONNX Runtime int8 graph)")


class LogitsOnly(nn.Module):
    """The classifier with named tensor inputs and the logits as its one output: the
    shape of graph ONNX runtimes serve."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        types = {"token_type_ids": token_type_ids} if _takes_token_types(self.model) else {}  # DistilBERT has none
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **types).logits


def _takes_token_types(model: nn.Module) -> bool:
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


def export_onnx(model_dir: Path, out: Path) -> dict[str, float]:
    """`out/model.onnx` (dynamic batch and sequence length) with the tokenizer and config
    beside it, and `out/parity.json`: the largest |onnxruntime - reference| logit
    difference on the probes (the torch model; for an int8 student its fp32 twin, see
    `_int8_graph`). Raises if it exceeds the tolerance."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("ONNX export needs the onnx extra: pip install -e '.[onnx]'") from err
    model, tokenizer = load_model(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    if is_int8(model_dir):
        tolerance, reference = _int8_graph(model, tokenizer, out)
    else:
        model = model.float().eval()
        _trace(model, tokenizer, out / "model.onnx")
        tolerance, reference = ONNX_TOLERANCE, model
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    error = max(float(np.abs(got - expected).max()) for got, expected in
                zip(_logits(session, tokenizer), _torch_logits(reference, tokenizer)))
    parity = {"max_abs_logit_difference": error, "tolerance": tolerance, "probes": sum(map(len, PROBES)),
              "graph": "int8" if is_int8(model_dir) else "fp32",
              "reference": "the fp32 twin of the int8 weights" if is_int8(model_dir) else "the torch model"}
    (out / "parity.json").write_text(json.dumps(parity, indent=1))
    if error > tolerance:
        raise ValueError(f"the ONNX graph's logits differ from {parity['reference']}'s by {error:.2e} (> {tolerance:.2e}); "
                         f"see {out / 'parity.json'}")
    tokenizer.save_pretrained(out)
    model.config.save_pretrained(out)
    readable(out)
    return parity


def _trace(model: nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    names = ("input_ids", "attention_mask", "token_type_ids")
    example = _encode(tokenizer, PROBES[1])  # in `names` order: input_names label the graph's inputs by position
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    torch.onnx.export(LogitsOnly(model).eval(), (), str(path), kwargs=example, input_names=list(names),
                      output_names=["logits"], dynamic_shapes={k: {0: batch, 1: sequence} for k in names},
                      dynamo=True, external_data=False, verbose=False)


def _int8_graph(model: nn.Module, tokenizer: PreTrainedTokenizerBase, out: Path) -> tuple[float, nn.Module]:
    """An int8 student as an ONNX Runtime int8 graph: its fp32 twin (the dequantized int8
    weights) traced, then quantized by onnxruntime's dynamic int8 quantization onto the same
    per-tensor symmetric weight grid; returns the tolerance and the reference it holds for.

    The two runtimes round activations differently (ONNX Runtime on 256 levels, torch's x86
    kernels on 128), so they cannot agree to fp32 precision; comparing them with each other
    left little margin (5.2e-3 against a 5.8e-3 tolerance once). Both are int8
    approximations of the same fp32 twin, so the graph is checked against the twin: ONNX
    Runtime's rounding error may be at most twice torch's own on the same probes (at least
    1e-3, so an exactly representable probe does not make it zero)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    twin = fp32_twin(model)
    with tempfile.TemporaryDirectory() as temp:
        _trace(twin, tokenizer, Path(temp) / "fp32.onnx")
        quantize_dynamic(Path(temp) / "fp32.onnx", out / "model.onnx", weight_type=QuantType.QInt8)
    own_error = max(float(np.abs(a - b).max()) for a, b in
                    zip(_torch_logits(model, tokenizer), _torch_logits(twin, tokenizer)))
    return max(2 * own_error, 1e-3), twin


def _torch_logits(model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> list[np.ndarray]:
    with torch.inference_mode():
        return [LogitsOnly(model)(**_encode(tokenizer, pairs)).float().numpy() for pairs in PROBES]


def _logits(session: object, tokenizer: PreTrainedTokenizerBase) -> list[np.ndarray]:
    return [session.run(["logits"], {k: v.numpy() for k, v in _encode(tokenizer, pairs).items()})[0] for pairs in PROBES]


def _encode(tokenizer: PreTrainedTokenizerBase, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """The graph's three inputs, in its input order (token types zero where a tokenizer has none)."""
    encoded = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    types = encoded.get("token_type_ids", torch.zeros_like(encoded["input_ids"]))
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "token_type_ids": types}
