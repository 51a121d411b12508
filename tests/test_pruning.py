"""Iterative magnitude pruning: schedule, exact zeros through training, dense embeddings/head."""

from __future__ import annotations

import copy

import pytest
import torch

from rmc_core.compression.schedule import Schedule, cubic_ramp
from rmc_core.config import TrainConfig
from rmc_core.data.synthetic import generate_split
from rmc_core.objectives.losses import gold_objective
from rmc_core.models import build_base
from rmc_core.compression.imp import MagnitudePruning, hold, prunable_linears, prune_to, sparsity_report
from rmc_core.training.loop import fine_tune
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
    cfg = Schedule(start=0.1, end=0.6, events=10)
    assert cubic_ramp(0, 100, cfg) == 0.0
    assert cubic_ramp(10, 100, cfg) == 0.0
    assert cubic_ramp(35, 100, cfg) == pytest.approx(1 - 0.5**3)
    assert cubic_ramp(60, 100, cfg) == pytest.approx(1.0)
    assert cubic_ramp(100, 100, cfg) == pytest.approx(1.0)
    values = [cubic_ramp(t, 100, cfg) for t in range(101)]
    assert values == sorted(values)


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_fine_tune_reaches_target_and_keeps_zeros(tiny, scope):
    model, tok, train = tiny
    emb_before = model.bert.embeddings.word_embeddings.weight.detach().clone()
    cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=16, max_length=32)
    hooks = [MagnitudePruning(0.6, scope, Schedule(end=0.5, events=4))]
    _, stats = fine_tune(model, tok, train, gold_objective(), cfg, hooks)
    assert abs(stats.sparsity["sparsity"] - 0.6) < 0.01
    if scope == "per_matrix":
        assert stats.sparsity["min_matrix_sparsity"] == pytest.approx(0.6, abs=0.01)
    # Embeddings and classifier are trained but never pruned.
    assert not torch.equal(model.bert.embeddings.word_embeddings.weight, emb_before)
    for dense in (model.bert.embeddings.word_embeddings.weight, model.classifier.weight, model.bert.pooler.dense.weight):
        assert (dense == 0).float().mean() < 0.01
    assert sparsity_report(model)["sparsity"] == pytest.approx(stats.sparsity["sparsity"])


def _step(model, optimizer, batch, gold, hooks, step):
    """One plain AdamW step with clipping and the loop's events around it, as fine_tune
    orders them."""
    torch.nn.functional.cross_entropy(model(**batch).logits, gold).backward()
    for hook in hooks:
        hook.on_after_backward(step)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    for hook in hooks:
        hook.on_step_end(step + 1)


def _steps(model, tok, train, hooks, steps=5):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    batch = tok(list(train.text_a[:16]), list(train.text_b[:16]), padding=True, return_tensors="pt")
    for hook in hooks:
        hook.on_train_begin(model, steps)
    for step in range(steps):
        _step(model, optimizer, batch, torch.tensor(train.label[:16].to_numpy()), hooks, step)


def test_pruned_weights_stay_zero_through_optimizer_steps(tiny):
    model, tok, train = tiny
    prune_to(model, 0.5, "per_matrix")
    masks = {n: (m.weight == 0).clone() for n, m in prunable_linears(model).items()}
    _steps(model, tok, train, [hold(0.5, "per_matrix")])
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
    """IMP ranks the weights an optimizer step left, with no forward in between."""
    model = tiny[0]
    prune_to(model, 0.2, scope)
    layer = prunable_linears(model)["encoder.layer.0.attention.self.query"]
    largest = int(torch.argmax(layer.weight.abs()))
    with torch.no_grad():
        layer.weight.view(-1)[largest] = 0.0  # what a step could do; no forward since
    prune_to(model, 0.3, scope)
    assert layer.weight_mask.view(-1)[largest] == 0


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_in_place_masks_train_what_torchs_reparametrised_masks_train(tiny, scope):
    """The masks used to be torch.nn.utils.prune's `weight_orig * weight_mask`, recomputed
    every forward. Masks applied in place, with pruned gradients zeroed before clipping,
    must give the same weights step for step, and prune the same entries."""
    from torch.nn.utils import prune as torch_prune

    model, tok, train = tiny
    model.eval()  # no dropout: the two copies must see the same forward
    reference = copy.deepcopy(model)
    sparsities = (0.3, 0.5)
    prune_to(model, sparsities[0], scope)

    def torch_prune_to(target):
        linears = list(prunable_linears(reference).values())
        current = lambda m: (m.weight_orig * m.weight_mask).detach() if torch_prune.is_pruned(m) else m.weight.detach()
        pruned = lambda m: int((m.weight_mask == 0).sum()) if torch_prune.is_pruned(m) else 0
        if scope == "global":
            extra = round(target * sum(m.weight.numel() for m in linears)) - sum(pruned(m) for m in linears)
            torch_prune.global_unstructured([(m, "weight") for m in linears], pruning_method=torch_prune.L1Unstructured,
                                            amount=extra, importance_scores={(m, "weight"): current(m) for m in linears})
        else:
            for m in linears:
                torch_prune.l1_unstructured(m, "weight", amount=round(target * m.weight.numel()) - pruned(m),
                                            importance_scores=current(m))

    torch_prune_to(sparsities[0])
    ours = hold(sparsities[0], scope)
    batch = tok(list(train.text_a[:16]), list(train.text_b[:16]), padding=True, return_tensors="pt")
    gold = torch.tensor(train.label[:16].to_numpy())
    opt_ours = torch.optim.AdamW(model.parameters(), lr=1e-2)
    opt_ref = torch.optim.AdamW(reference.parameters(), lr=1e-2)
    ours.on_train_begin(model, 100)
    for step in range(6):
        if step == 3:
            prune_to(model, sparsities[1], scope)
            torch_prune_to(sparsities[1])
        _step(reference, opt_ref, batch, gold, [], step)
        _step(model, opt_ours, batch, gold, [ours], step)
    for (name, a), b in zip(prunable_linears(model).items(), prunable_linears(reference).values()):
        torch.testing.assert_close(a.weight, (b.weight_orig * b.weight_mask).detach(), atol=1e-6, rtol=1e-5, msg=name)
        assert torch.equal(a.weight == 0, b.weight_mask == 0), name
