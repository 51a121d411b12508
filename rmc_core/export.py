"""Models out of the store: as a transformers folder, or as an ONNX graph checked against torch.

Store artifacts are already transformers checkpoints; `export_hf` copies one without the
store's own records. `export_onnx` traces the classifier with dynamic batch and sequence
axes and refuses to call the export done unless onnxruntime reproduces torch's logits.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from rmc_core.models import load_model
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
    """The checkpoint as a plain transformers folder (structured students include their
    modeling file: load with trust_remote_code=True)."""
    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns(RUN_INFO), dirs_exist_ok=True)


class LogitsOnly(nn.Module):
    """The classifier with named tensor inputs and the logits as its one output: the
    shape of graph ONNX runtimes serve."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def export_onnx(model_dir: Path, out: Path) -> dict[str, float]:
    """`out/model.onnx` (fp32, dynamic batch and sequence length) with the tokenizer and
    config beside it, and `out/parity.json`: the largest |onnxruntime - torch| logit
    difference on the probes. Raises if it exceeds ONNX_TOLERANCE."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("ONNX export needs the onnx extra: pip install -e '.[onnx]'") from err
    model, tokenizer = load_model(model_dir)
    model = model.float().eval()
    out.mkdir(parents=True, exist_ok=True)
    names = ("input_ids", "attention_mask", "token_type_ids")
    example = _encode(tokenizer, PROBES[1])  # in `names` order: input_names label the graph's inputs by position
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    torch.onnx.export(LogitsOnly(model).eval(), (), str(out / "model.onnx"), kwargs=example, input_names=list(names),
                      output_names=["logits"], dynamic_shapes={k: {0: batch, 1: sequence} for k in names},
                      dynamo=True, external_data=False, verbose=False)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    error = 0.0
    for pairs in PROBES:
        inputs = _encode(tokenizer, pairs)
        with torch.inference_mode():
            expected = model(**inputs).logits.numpy()
        got = session.run(["logits"], {k: v.numpy() for k, v in inputs.items()})[0]
        error = max(error, float(np.abs(got - expected).max()))
    parity = {"max_abs_logit_difference": error, "tolerance": ONNX_TOLERANCE, "probes": sum(map(len, PROBES))}
    (out / "parity.json").write_text(json.dumps(parity, indent=1))
    if error > ONNX_TOLERANCE:
        raise ValueError(f"the ONNX graph's logits differ from torch's by {error:.2e} (> {ONNX_TOLERANCE}); "
                         f"see {out / 'parity.json'}")
    tokenizer.save_pretrained(out)
    model.config.save_pretrained(out)
    return parity


def _encode(tokenizer: PreTrainedTokenizerBase, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """The graph's three inputs, in its input order (token types zero where a tokenizer has none)."""
    encoded = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    types = encoded.get("token_type_ids", torch.zeros_like(encoded["input_ids"]))
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "token_type_ids": types}
