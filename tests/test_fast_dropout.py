"""The CPU dropout that training uses: the same Bernoulli(p), a model left as it was, and an
attention path equal to sdpa's but for the draws."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from rmc_core.config import TrainConfig
from rmc_core.models import build_base
from rmc_core.objectives.losses import gold_objective
from rmc_core.training import fast_dropout
from rmc_core.training.fast_dropout import ATTENTION, FastDropout, apply_dropout, faster_dropout, keep_mask
from rmc_core.training.loop import fine_tune
from tests.conftest import TINY


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mask_keeps_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    n = 2_000_001  # odd: the last 64-bit word is half used
    kept = keep_mask(torch.Size([n]), p, torch.device("cpu")).double().mean().item()
    assert abs(kept - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)


def test_the_mask_is_seeded_and_differs_between_draws():
    shape = torch.Size([4, 7, 33])
    torch.manual_seed(3)
    a, b = keep_mask(shape, 0.1, torch.device("cpu")), keep_mask(shape, 0.1, torch.device("cpu"))
    torch.manual_seed(3)
    assert a.shape == shape and torch.equal(a, keep_mask(shape, 0.1, torch.device("cpu"))) and not torch.equal(a, b)


def test_dropout_zeroes_or_scales_each_element_and_passes_gradients_the_same_way():
    torch.manual_seed(0)
    x = torch.randn(64, 50, requires_grad=True)
    y = apply_dropout(x, 0.25)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75) and 0.6 < kept.double().mean() < 0.9
    y.sum().backward()
    assert torch.allclose(x.grad, kept.double().float() / 0.75)
    assert apply_dropout(x, 0.0) is x and (apply_dropout(x, 1.0) == 0).all()


def _tiny():
    model, _ = build_base(TINY, ["a", "b", "c"], ["w x y z"] * 8, seed=0)
    return model


def test_the_model_is_as_it_was_after_training_and_evaluation_never_changes():
    model = _tiny()
    dropouts = [(n, m) for n, m in model.named_modules() if type(m) is nn.Dropout]
    assert dropouts and model.config._attn_implementation == "sdpa"
    x = {"input_ids": torch.tensor([[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0]]),
         "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])}
    model.eval()
    before = model(**x).logits
    with faster_dropout(model, "cpu"):
        swapped = [m for m in model.modules() if isinstance(m, FastDropout)]
        assert len(swapped) == len(dropouts) and model.config._attn_implementation == ATTENTION
        assert torch.equal(model(**x).logits, before)  # eval: no dropout, sdpa as before
    assert [(n, m) for n, m in model.named_modules() if type(m) is nn.Dropout] == dropouts
    assert model.config._attn_implementation == "sdpa" and torch.equal(model(**x).logits, before)
    with faster_dropout(model, "cuda:0"):  # a GPU keeps torch's own
        assert not any(isinstance(m, FastDropout) for m in model.modules())


def test_training_attention_is_sdpas_math_with_the_cheap_draws(monkeypatch):
    """With every element kept, the training path equals sdpa without dropout, scaled by 1/(1-p)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    allowed = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)[:, None, None, :].expand(2, 1, 5, 5)
    module = nn.Module().train()
    module.is_causal = False
    monkeypatch.setattr(fast_dropout, "keep_mask", lambda shape, p, device: torch.ones(shape, dtype=torch.bool))
    ours, _ = fast_dropout._attention(module, q, k, v, allowed, dropout=0.2, scaling=0.3)
    reference, _ = sdpa_attention_forward(module, q, k, v, allowed, dropout=0.0, scaling=0.3)
    assert torch.allclose(ours, reference / 0.8, atol=1e-6)


def test_a_seeded_training_is_reproducible_and_the_two_dropouts_learn_alike():
    frame = pd.DataFrame({"text_a": ["w x y", "y z", "x x w", "z y x"] * 12, "text_b": ["x y", "w", "z z", "y"] * 12,
                          "label": [0, 1, 2, 1] * 12})
    cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=8, seed=0)
    _, tokenizer = build_base(TINY, ["a", "b", "c"], ["w x y z"] * 8, seed=0)
    runs = [fine_tune(_tiny(), tokenizer, frame, gold_objective(), cfg.model_copy(update={"dropout": d}))[1]
            for d in ("fast", "fast", "torch")]
    assert runs[0].final_loss == runs[1].final_loss
    assert runs[0].final_loss != runs[2].final_loss and abs(runs[0].final_loss - runs[2].final_loss) < 0.5
