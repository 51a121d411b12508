"""Sparse progressive distillation: its three stages at the configured steps, the
replacement rate and learning-rate schedules, the layer-wise loss against a hand
computation, and each successor matrix at exactly its sparsity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from rmc_core import stages
from rmc_core.compression.spd import SparseProgressive, boundaries, layerwise_loss, spd_rate, stage_lr, stage_of
from rmc_core.compression.spd_config import SpdConfig
from rmc_core.models import build_base, load_model
from rmc_core.store import Store
from tests.conftest import FAST, TINY, tiny_data_and_base

CFG = SpdConfig(sparsity=0.5, stages=(0.5, 0.2, 0.3), replace_rate=0.8, warmup=0.1)


def test_the_stages_change_at_the_configured_steps_and_the_rate_rises_to_one_in_stage_two():
    assert boundaries(CFG, 100) == (50, 70)
    assert [stage_of(CFG, t, 100) for t in (0, 49, 50, 69, 70, 99)] == [1, 1, 2, 2, 3, 3]
    rates = [spd_rate(CFG, t, 100) for t in range(100)]
    assert rates[:50] == [0.8] * 50 and rates[70:] == [1.0] * 30
    assert rates[60] == pytest.approx(0.9) and all(a < b for a, b in zip(rates[50:70], rates[51:70]))
    with pytest.raises(ValidationError, match="summing to 1"):
        SpdConfig(stages=(0.5, 0.2, 0.2))


def test_each_stage_has_its_own_warm_up_and_decay():
    lr = [stage_lr(CFG, t, 100) for t in range(100)]
    for start, end in ((0, 50), (50, 70), (70, 100)):
        warm = round(0.1 * (end - start))
        assert lr[start] == 0.0 and lr[start + warm] == pytest.approx(1.0)
        assert all(a >= b for a, b in zip(lr[start + warm:end], lr[start + warm + 1:end]))
        assert lr[end - 1] == pytest.approx(1 / (end - start - warm))
    assert SparseProgressive(CFG).lr_schedule(100)(55) == lr[55]


@pytest.fixture(scope="module")
def tiny_pair():
    texts = ["a man plays a guitar", "the doctor saw the actor", "it rains today", "two dogs run in a field"] * 10
    model, tokenizer = build_base(TINY, ("a", "b", "c"), texts, 0)
    batch = tokenizer(["a man plays a guitar", "the actor"], ["it rains", "a dog runs in a field"], padding=True,
                      return_tensors="pt")
    return model, batch


def hand_loss(student, teacher, mask: np.ndarray, heads: int) -> float:
    """The layer-wise loss written out: per layer, the mean squared difference of QK^T/sqrt(d)
    over every head and every (real query, real key) pair, plus per hidden state the mean
    squared difference over real tokens and features."""
    total = 0.0
    for (qs, ks), (qt, kt) in zip(student["qk"], teacher["qk"]):
        for b in range(mask.shape[0]):
            real = np.flatnonzero(mask[b])
            for h in range(heads):
                d = qs.shape[-1] // heads
                cols = slice(h * d, (h + 1) * d)
                s = qs[b][real][:, cols] @ ks[b][real][:, cols].T / np.sqrt(d)
                t = qt[b][real][:, cols] @ kt[b][real][:, cols].T / np.sqrt(d)
                total += ((s - t) ** 2).sum() / (heads * sum(len(np.flatnonzero(m)) ** 2 for m in mask))
    for hs, ht in zip(student["hidden"], teacher["hidden"]):
        total += sum(((hs[b][np.flatnonzero(mask[b])] - ht[b][np.flatnonzero(mask[b])]) ** 2).sum()
                     for b in range(mask.shape[0])) / (mask.sum() * hs.shape[-1])
    return total


def reference(model: torch.nn.Module, batch: dict) -> dict:
    """Hidden states from transformers itself, and each layer's query and key maps applied to its input."""
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
        qk = [(layer.attention.self.query(h).numpy(), layer.attention.self.key(h).numpy())
              for layer, h in zip(model.bert.encoder.layer, hidden)]
    return {"hidden": [h.numpy() for h in hidden], "qk": qk}


def test_the_layerwise_loss_matches_a_hand_computation(tiny_pair):
    model, batch = tiny_pair
    teacher = type(model)(model.config)
    teacher.load_state_dict(model.state_dict())
    teacher.eval()
    hook = SparseProgressive(CFG)
    hook.on_train_begin(model, 10)
    torch.manual_seed(1)
    with torch.no_grad():
        for block in hook.blocks:
            block.use_successor = True
            for p in block.successor.parameters():
                p.add_(0.05 * torch.randn_like(p))
    model.eval()  # no dropout, so that transformers' own forward reproduces the student's
    student_model = type(model)(model.config)
    student_model.bert.embeddings.load_state_dict(model.bert.embeddings.state_dict())
    for i, block in enumerate(hook.blocks):
        student_model.bert.encoder.layer[i].load_state_dict(block.successor.state_dict())
    student_model.eval()
    hook.on_step_begin(0)
    for block in hook.blocks:
        block.use_successor = True
    with torch.no_grad():
        model(**batch)
        captured = hook.captured
        got = layerwise_loss(captured, hook.teacher_pass(batch), batch["attention_mask"])
    expected = hand_loss(reference(student_model, batch), reference(teacher, batch), batch["attention_mask"].numpy(),
                         model.config.num_attention_heads)
    assert got.item() == pytest.approx(expected, rel=1e-4)
    assert expected > 0


def test_every_successor_matrix_reaches_its_sparsity_exactly_and_nothing_else_moves(tmp_path):
    store = Store(tmp_path)
    data, base = tiny_data_and_base(store)
    teacher = stages.train(base, data, FAST, store)
    student = stages.train(teacher, data, FAST, store, method="vanilla", compression=SpdConfig(sparsity=0.6, pruning_events=3))
    model, _ = load_model(store.path(student))
    linears = [m for m in model.bert.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 6 * model.config.num_hidden_layers
    assert all(int((m.weight == 0).sum()) == round(0.6 * m.weight.numel()) for m in linears)
    before = load_file(str(store.path(teacher) / "model.safetensors"))
    after = load_file(str(store.path(student) / "model.safetensors"))
    kept = [k for k in after if not k.startswith("bert.encoder.layer.")]
    assert kept and all(torch.equal(after[k], before[k]) for k in kept), "only the successors train"
    record = store.record(student, stages.TRAIN_STATS)["sparsity"]
    assert record["sparsity"] == pytest.approx(0.6, abs=1e-3) and record["successor_layers"] == model.config.num_hidden_layers
