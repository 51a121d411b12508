"""Iterative magnitude pruning: schedule, exact zeros through training, dense embeddings/head."""

from __future__ import annotations

import pytest
import torch

from rmc_core.config import PruneConfig, TrainConfig
from rmc_core.data.synthetic import generate_split
from rmc_core.losses import gold_objective
from rmc_core.models import build_base
from rmc_core.pruning import cubic_sparsity, prunable_linears, prune_to, sparsity_report
from rmc_core.training import fine_tune
from tests.conftest import TINY

LABELS = ("entailment", "neutral", "contradiction")


@pytest.fixture
def tiny():
    train = generate_split(200, 0, "train", 0.9)
    model, tok = build_base(TINY, LABELS, list(train.text_a) + list(train.text_b), seed=0)
    return model, tok, train


def test_prunes_only_encoder_linears(tiny):
    names = set(prunable_linears(tiny[0]))
    per_layer = {"attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense"}
    assert names == {f"encoder.layer.{i}.{n}" for i in range(2) for n in per_layer}


def test_cubic_schedule_shape():
    cfg = PruneConfig(sparsity=0.8, start=0.1, end=0.6, events=10)
    assert cubic_sparsity(0, 100, cfg) == 0.0
    assert cubic_sparsity(10, 100, cfg) == 0.0
    assert cubic_sparsity(35, 100, cfg) == pytest.approx(0.8 * (1 - 0.5**3))
    assert cubic_sparsity(60, 100, cfg) == pytest.approx(0.8)
    assert cubic_sparsity(100, 100, cfg) == pytest.approx(0.8)
    values = [cubic_sparsity(t, 100, cfg) for t in range(101)]
    assert values == sorted(values)


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_fine_tune_reaches_target_and_keeps_zeros(tiny, scope):
    model, tok, train = tiny
    emb_before = model.bert.embeddings.word_embeddings.weight.detach().clone()
    cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=16, max_length=32)
    _, stats = fine_tune(model, tok, train, gold_objective(), cfg, PruneConfig(sparsity=0.6, scope=scope, end=0.5, events=4))
    assert abs(stats.sparsity["sparsity"] - 0.6) < 0.01
    if scope == "per_matrix":
        assert stats.sparsity["min_matrix_sparsity"] == pytest.approx(0.6, abs=0.01)
    # Embeddings and classifier are trained but never pruned.
    assert not torch.equal(model.bert.embeddings.word_embeddings.weight, emb_before)
    for dense in (model.bert.embeddings.word_embeddings.weight, model.classifier.weight, model.bert.pooler.dense.weight):
        assert (dense == 0).float().mean() < 0.01
    assert sparsity_report(model)["sparsity"] == pytest.approx(stats.sparsity["sparsity"])


def test_pruned_weights_stay_zero_through_optimizer_steps(tiny):
    model, tok, train = tiny
    prune_to(model, 0.5, "per_matrix")
    masks = {n: (m.weight == 0).clone() for n, m in prunable_linears(model).items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    batch = tok(list(train.text_a[:16]), list(train.text_b[:16]), padding=True, return_tensors="pt")
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, torch.tensor(train.label[:16].to_numpy()))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, m in prunable_linears(model).items():
        assert torch.all(m.weight[masks[name]] == 0), name
        assert (m.weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_iterative_pruning_only_grows_the_mask(tiny):
    model = tiny[0]
    prune_to(model, 0.3, "global")
    first = {n: (m.weight == 0).clone() for n, m in prunable_linears(model).items()}
    prune_to(model, 0.6, "global")
    for n, m in prunable_linears(model).items():
        assert torch.all(m.weight[first[n]] == 0)
    assert sparsity_report(model)["sparsity"] == pytest.approx(0.6, abs=1e-4)


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_pruning_ranks_the_weights_as_they_are_now_not_as_of_the_last_forward(tiny, scope):
    """After an optimizer step and before the next forward, `module.weight` still holds the
    previous step's values; IMP must rank `weight_orig * weight_mask`."""
    model = tiny[0]
    prune_to(model, 0.2, scope)
    layer = prunable_linears(model)["encoder.layer.0.attention.self.query"]
    largest = int(torch.argmax(layer.weight.abs()))
    with torch.no_grad():
        layer.weight_orig.view(-1)[largest] = 0.0  # what a step could do; no forward since
    prune_to(model, 0.3, scope)
    assert layer.weight_mask.view(-1)[largest] == 0
