"""Every equation of docs/method.md against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from rmc_core.objectives.difficulty import difficulty_scores, loss_variance, variance_hard_split
from rmc_core.objectives.losses import distillation_loss, focal_loss, jtt_weights, weighted_cross_entropy
from rmc_core.evaluation.metrics import label_loyalty, probability_loyalty, relative_bias
from rmc_core.objectives.smoothing import smooth_probs


def test_loss_variance_is_population_variance_per_sample():
    losses = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 3.0]])
    np.testing.assert_allclose(loss_variance(losses), [2 / 3, 2.0])


def test_loss_variance_keeps_torch_in_torch_out():
    out = loss_variance(torch.tensor([[1.0, 0.0], [3.0, 0.0]], dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([1.0, 0.0]))


def test_loss_variance_needs_two_models():
    with pytest.raises(ValueError, match="n_models >= 2"):
        loss_variance(np.ones((1, 4)))


def test_difficulty_scores_eq1():
    np.testing.assert_allclose(difficulty_scores(np.array([0.0, 1.0, 2.0, 4.0]), 0.5), [0.5, 0.625, 0.75, 1.0])


def test_difficulty_scores_all_equal_variances_mean_no_smoothing():
    np.testing.assert_array_equal(difficulty_scores(np.full(5, 0.3), 0.2), np.ones(5))


def test_variance_split_marks_highest_variance_hard():
    np.testing.assert_array_equal(variance_hard_split(np.array([0.1, 0.9, 0.5, 0.2]), 2), [0, 1, 1, 0])


def test_smooth_probs_eq2_by_hand():
    s = smooth_probs(np.array([[0.5, 0.25, 0.25]]), np.array([0.5]))
    r = np.sqrt([0.5, 0.25, 0.25])
    np.testing.assert_allclose(s, [r / r.sum()])
    np.testing.assert_allclose(s, [[0.414214, 0.292893, 0.292893]], atol=1e-6)


def test_smooth_probs_d1_is_identity_and_scalar_d_is_global():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(smooth_probs(p, np.ones(2)), p)
    np.testing.assert_allclose(smooth_probs(p, 0.9), smooth_probs(p, np.full(2, 0.9)))


def test_smooth_probs_zero_and_tiny_probabilities_are_safe():
    s = smooth_probs(np.array([[1.0, 0.0, 0.0], [1 - 2e-300, 1e-300, 1e-300]]), np.array([0.5, 0.01]))
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s.sum(axis=1), 1.0)


def test_distillation_loss_eq3_by_hand():
    logits, labels = torch.zeros(1, 2), torch.tensor([0])
    targets = torch.tensor([[0.8, 0.2]])
    ce = math.log(2)
    kl = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert distillation_loss(logits, labels, targets, 0.9).item() == pytest.approx(0.1 * ce + 0.9 * kl, rel=1e-6)
    assert distillation_loss(logits, labels, targets, 0.0).item() == pytest.approx(ce, rel=1e-6)


def test_distillation_loss_with_one_hot_targets_is_finite():
    loss = distillation_loss(torch.tensor([[2.0, -1.0]]), torch.tensor([0]), torch.tensor([[1.0, 0.0]]), 0.9)
    assert torch.isfinite(loss)


def test_focal_loss_batch_normalised_weights_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(9.0), 0.0]])  # q_y = 0.5 and 0.9
    labels = torch.tensor([0, 0])
    w = np.array([0.5**2, 0.1**2])
    w = w / w.mean()
    expected = -(w[0] * math.log(0.5) + w[1] * math.log(0.9)) / 2
    assert focal_loss(logits, labels, 2.0).item() == pytest.approx(expected, rel=1e-5)


def test_focal_loss_weights_are_detached():
    logits = torch.tensor([[0.0, 0.0], [1.0, 0.0]], requires_grad=True)
    focal_loss(logits, torch.tensor([0, 1]), 2.0).backward()
    w = torch.tensor([0.5**2, (1 - 1 / (1 + math.e)) ** 2])
    w = w / w.mean()
    plain = torch.tensor([[0.0, 0.0], [1.0, 0.0]], requires_grad=True)
    (-(w * torch.log_softmax(plain, -1)[[0, 1], [0, 1]]).mean()).backward()
    torch.testing.assert_close(logits.grad, plain.grad)


def test_focal_gamma_zero_is_cross_entropy():
    logits, labels = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(focal_loss(logits, labels, 0.0), torch.nn.functional.cross_entropy(logits, labels))


def test_jtt_weights_upweight_errors_and_normalise_to_mean_one():
    w = jtt_weights(np.array([True, False, False, False]), 2.0)
    np.testing.assert_allclose(w, [1.6, 0.8, 0.8, 0.8])
    assert w.mean() == pytest.approx(1.0)


def test_weighted_cross_entropy_by_hand():
    loss = weighted_cross_entropy(torch.zeros(2, 2), torch.tensor([0, 1]), torch.tensor([1.5, 0.5]))
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


def test_relative_bias_on_the_papers_table1():
    assert relative_bias(84.2, 59.8, 84.4, 55.5) == pytest.approx(1.182, abs=5e-4)


def test_relative_bias_is_nan_when_teacher_has_no_gap():
    assert math.isnan(relative_bias(80.0, 80.0, 80.0, 70.0))


def test_label_loyalty():
    t = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    s = np.array([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1]])
    assert label_loyalty(t, s) == pytest.approx(2 / 3)


def test_probability_loyalty_bounds_and_scipy_reference():
    p = np.array([[1.0, 0.0], [0.3, 0.7]])
    assert probability_loyalty(p, p) == pytest.approx(1.0)
    assert probability_loyalty(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(3), 50), rng.dirichlet(np.ones(3), 50)
    reference = 1 - jensenshannon(a, b, base=2, axis=1).mean()
    assert probability_loyalty(a, b) == pytest.approx(reference, rel=1e-9)
