"""Structured pruning: gate gradients are the loss's derivatives, pruning reaches the
requested counts, the physically smaller model computes what the masked one did, and it
loads, serves and exports with plain transformers and onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from rmc_core.compression.schedule import Schedule
from rmc_core.config import TrainConfig
from rmc_core.model_spec import ModelSpec, TinyBertSpec
from rmc_core.export import export_hf, export_onnx
from rmc_core.objectives.losses import gold_objective
from rmc_core.models import build_base, load_model, save_model, tiny_bert, train_tokenizer
from rmc_core.compression.structured import StructuredPruning, attach_gates, compact
from rmc_core.compression.structured_config import check_fits, StructuredConfig
from rmc_core.training.loop import fine_tune

SPEC = TinyBertSpec(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96, vocab_size=300)
ROWS = pd.DataFrame({
    "text_a": ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn", "the sun is hot today"] * 12,
    "text_b": ["a cat sat", "the dog slept", "birds are quiet", "it is cold"] * 12,
    "label": [0, 1, 2, 1] * 12,
})


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    tokenizer = train_tokenizer(pd.concat([ROWS["text_a"], ROWS["text_b"]]), SPEC.vocab_size)
    return tiny_bert(SPEC, 3, len(tokenizer)).eval(), tokenizer


def batch(tokenizer):
    rows = ROWS.head(6)
    return dict(tokenizer(rows["text_a"].tolist(), rows["text_b"].tolist(), padding=True, return_tensors="pt"))


def test_gate_gradients_equal_finite_differences_of_the_loss(tiny):
    model, tokenizer = tiny
    model = model.double()
    gates = attach_gates(model)
    x, labels = batch(tokenizer), torch.tensor(ROWS["label"].head(6).to_numpy())

    def loss() -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(**x).logits, labels)

    loss().backward()
    eps = 1e-6
    for gate in (gates.heads[1], gates.neurons[2]):
        analytic = gate.grad.clone()
        for i in (0, len(gate) - 1):
            with torch.no_grad():
                gate[i] += eps
                up = loss().item()
                gate[i] -= 2 * eps
                down = loss().item()
                gate[i] += eps
            assert analytic[i].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize(("heads", "neurons"), [(0.25, 0.0), (0.5, 0.4)])
def test_pruning_during_fine_tuning_reaches_exactly_the_requested_counts(tiny, heads, neurons):
    model, tokenizer = tiny
    cfg = StructuredConfig(heads=heads, neurons=neurons, schedule=Schedule(end=0.5, events=3))
    small, stats = fine_tune(model, tokenizer, ROWS, gold_objective(), TrainConfig(epochs=2, lr=1e-3, batch_size=8, max_length=32),
                             [StructuredPruning(cfg)])
    layers = SPEC.num_hidden_layers
    assert stats.sparsity["heads_pruned"] == round(heads * layers * SPEC.num_attention_heads)
    assert sum(small.config.heads_per_layer) == layers * SPEC.num_attention_heads - stats.sparsity["heads_pruned"]
    assert sum(small.config.intermediate_per_layer) == layers * SPEC.intermediate_size - round(neurons * layers * SPEC.intermediate_size)
    assert min(small.config.heads_per_layer) >= 1
    size = SPEC.hidden_size // SPEC.num_attention_heads
    for layer, kept in zip(small.bert.encoder.layer, small.config.heads_per_layer):
        assert layer.attention.self.query.weight.shape == (kept * size, SPEC.hidden_size)
    params = sum(p.numel() for p in small.parameters())
    assert params < sum(p.numel() for p in model.parameters()) or heads == 0


def test_a_target_that_would_empty_a_layer_is_refused_before_training(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="without heads; at most 9"):
        check_fits(StructuredConfig(heads=0.9), model.config)


@pytest.mark.parametrize(("fields", "message"), [({"heads": 1.0}, "less than 1"), ({"heads": 0.0}, "heads > 0 or neurons > 0"),
                                                 ({"neurons": -0.1}, "greater than or equal to 0"),
                                                 ({"schedule": {"start": 0.8, "end": 0.5}}, "must come before end")])
def test_bad_structured_settings_are_refused_by_the_config(fields, message):
    with pytest.raises(ValidationError, match=message):
        StructuredConfig(**fields)


def test_the_packaged_minilm_rebuilds_to_the_same_predictions():
    model, tokenizer = build_base(ModelSpec(source="minilm"), ("a", "b", "c"), [], seed=0)
    model.eval()
    check_fits(StructuredConfig(heads=0.2, neurons=0.4), model.config)
    gates = attach_gates(model)
    with torch.no_grad():
        for layer, heads in enumerate(gates.heads):
            heads[layer::6] = 0
        gates.neurons[3][:700] = 0
        expected = model(**batch(tokenizer)).logits
    small = compact(model, gates)
    assert small.config.heads_per_layer == [10, 10, 10, 10, 10, 10]
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(small(**batch(tokenizer)).logits, expected, atol=1e-5, rtol=0)


def test_the_bert_base_architecture_prunes_the_papers_28_heads_and_rebuilds_exactly():
    """bert-base-uncased's shape (12 layers x 12 heads, 3072 neurons), random weights: the
    hub checkpoint cannot be downloaded here, but pruning depends only on the architecture."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=3)).eval()
    check_fits(StructuredConfig(heads=28 / 144, neurons=0.4), model.config)
    gates = attach_gates(model)
    inputs = {"input_ids": torch.randint(1000, 30000, (2, 16)), "attention_mask": torch.ones(2, 16, dtype=torch.long)}
    with torch.no_grad():
        for layer in range(12):
            gates.heads[layer][: 2 + (layer < 4)] = 0  # 3 heads in layers 0-3, 2 elsewhere: 28
        gates.neurons[5][::2] = 0
        expected = model(**inputs).logits
    small = compact(model, gates)
    assert 144 - sum(small.config.heads_per_layer) == 28
    assert small.config.intermediate_per_layer[5] == 1536
    with torch.no_grad():
        torch.testing.assert_close(small(**inputs).logits, expected, atol=1e-5, rtol=0)


def masked(model, tokenizer):
    """The model with heads and neurons closed by hand (one layer keeps a single head), and its logits."""
    gates = attach_gates(model)
    with torch.no_grad():
        gates.heads[0][[0, 2]] = 0
        gates.heads[2][[0, 1, 3]] = 0
        gates.neurons[1][::3] = 0
        logits = model(**batch(tokenizer)).logits
    return gates, logits


def test_the_rebuilt_model_computes_what_the_masked_one_did(tiny):
    model, tokenizer = tiny
    gates, expected = masked(model, tokenizer)
    small = compact(model, gates)
    assert small.config.heads_per_layer == [2, 4, 1]
    assert small.config.intermediate_per_layer == [96, 64, 96]
    with torch.no_grad():
        torch.testing.assert_close(small(**batch(tokenizer)).logits, expected, atol=1e-5, rtol=0)


def test_plain_transformers_loads_and_serves_the_small_checkpoint(tiny, tmp_path):
    """In a fresh interpreter that never imports rmc: from_pretrained and pipeline()."""
    model, tokenizer = tiny
    gates, expected = masked(model, tokenizer)
    save_model(compact(model, gates), tokenizer, tmp_path / "model")
    export_hf(tmp_path / "model", tmp_path / "hf")
    torch.save(batch(tokenizer), tmp_path / "inputs.pt")
    script = f"""
import json, sys, torch
from transformers import AutoModelForSequenceClassification, pipeline
model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "hf")!r}, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(**torch.load({str(tmp_path / "inputs.pt")!r})).logits
classify = pipeline("text-classification", model={str(tmp_path / "hf")!r}, trust_remote_code=True)
print(json.dumps({{"logits": logits.tolist(), "served": classify("the cat sat on the mat"),
                   "rmc_imported": any(m.startswith("rmc") for m in sys.modules)}}))
"""
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert not out["rmc_imported"]
    torch.testing.assert_close(torch.tensor(out["logits"]), expected, atol=1e-5, rtol=0)
    assert out["served"][0]["label"] in model.config.id2label.values()
    reloaded, _ = load_model(tmp_path / "hf")  # and rmc reads its own export back
    assert type(reloaded).__name__ == "PrunedBertForSequenceClassification"


def test_onnx_export_matches_torch(tiny, tmp_path):
    model, tokenizer = tiny
    gates, _ = masked(model, tokenizer)
    save_model(compact(model, gates), tokenizer, tmp_path / "model")
    parity = export_onnx(tmp_path / "model", tmp_path / "onnx")
    assert parity["max_abs_logit_difference"] <= 1e-4
    assert (tmp_path / "onnx" / "model.onnx").stat().st_size > 0
    assert json.loads((tmp_path / "onnx" / "parity.json").read_text()) == parity


def test_export_writes_rmcs_own_modeling_file_and_verify_flags_a_foreign_one(tiny, tmp_path, capsys):
    """A structured student's modeling file is code users run (trust_remote_code=True): an
    edited copy in the store is never exported, and `rmc verify` names it."""
    from rmc.flows import cli
    from rmc_core.artifact_layout import MODELING_FILE, own_modeling_source
    from rmc_core.store import Store

    model, tokenizer = tiny
    gates, _ = masked(model, tokenizer)
    store = Store(tmp_path / "s")

    def write(folder):
        save_model(compact(model, gates), tokenizer, folder)
        (folder / MODELING_FILE).write_text("import os; os.system('echo owned')\n")

    ref = store.put("model", write)
    export_hf(store.path(ref), tmp_path / "hf")
    assert (tmp_path / "hf" / MODELING_FILE).read_bytes() == own_modeling_source()
    assert cli.main(["verify", "--store", str(tmp_path / "s")]) == 1
    assert f"{store.path(ref) / MODELING_FILE} differs from rmc's own {MODELING_FILE}" in capsys.readouterr().err


def test_the_registration_names_the_encoders_the_rebuild_knows():
    """structured_config.py stays torch-free, so it lists them itself; pruned_bert.py rebuilds them."""
    from rmc_core.compression.structured_config import ARCHITECTURES
    from rmc_core.pruned_bert import PRUNED_OF

    assert ARCHITECTURES == tuple(PRUNED_OF)
