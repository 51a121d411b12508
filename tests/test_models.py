"""Model sources and artifacts: tiny, packaged MiniLM, truncation, plain-checkpoint round trip."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification

from rmc_core.config import ModelSpec
from rmc_core.models import build_base, load_model, packaged_minilm, save_model, truncate_layers
from tests.conftest import TINY

LABELS = ("entailment", "neutral", "contradiction")
TEXTS = ["the doctor helped the lawyer", "a physician assisted an attorney"] * 10


def test_tiny_model_is_a_few_hundred_thousand_parameters():
    model, tok = build_base(TINY, LABELS, TEXTS, seed=0)
    n = sum(p.numel() for p in model.parameters())
    assert 20_000 < n < 500_000
    assert model.config.id2label == dict(enumerate(LABELS))


def test_seeded_base_is_reproducible():
    a, _ = build_base(TINY, LABELS, TEXTS, seed=1)
    b, _ = build_base(TINY, LABELS, TEXTS, seed=1)
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), na


def test_saved_artifact_loads_with_plain_transformers(tmp_path):
    model, tok = build_base(TINY, LABELS, TEXTS, seed=0)
    save_model(model, tok, tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    batch = tok(["a b"], ["c d"], return_tensors="pt")
    torch.testing.assert_close(model.eval()(**batch).logits, again.eval()(**batch).logits)
    _, tok2 = load_model(tmp_path)
    assert tok2("the doctor")["input_ids"] == tok("the doctor")["input_ids"]


def test_truncation_keeps_first_layers():
    model, _ = build_base(TINY, LABELS, TEXTS, seed=0)
    small = truncate_layers(model, 1)
    assert len(small.bert.encoder.layer) == 1 and small.config.num_hidden_layers == 1
    assert torch.equal(small.bert.encoder.layer[0].attention.self.query.weight, model.bert.encoder.layer[0].attention.self.query.weight)
    assert len(model.bert.encoder.layer) == 2


def test_packaged_minilm_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (packaged_minilm() / "model.safetensors").exists()
    model, tok = build_base(ModelSpec(source="minilm", num_layers=3), LABELS, [], seed=0)
    assert model.config.hidden_size == 384 and len(model.bert.encoder.layer) == 3
    assert model.config.num_labels == 3
    assert tok("Hello world")["input_ids"][:2] == [101, 7592]
