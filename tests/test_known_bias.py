"""The known-bias methods (PoE, example reweighting, confidence regularisation) and their
bias-only model: the setting RMC avoids, as baselines that show what avoiding it costs;
and SRNets' OOD-information upper bound in the same tiny run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rmc_core import pipeline, stages
from rmc_core.data.synthetic import generate_split
from rmc_core.objectives.bias_model import bias_probabilities, overlap_features
from rmc_core.objectives.known_bias import confreg_targets, log_bias, poe_loss, reweighted_loss, soft_cross_entropy
from rmc_core.objectives.methods import METHODS, UPPER_BOUND, compared_methods
from rmc_core.report import UPPER_BOUND_HEADING, markdown_report, summary_tables, upper_bound_table
from rmc_core.stages import OOD_TRAIN, TRAIN_STATS
from rmc_core.store import Store
from tests.conftest import tiny_run_config


def test_poe_is_cross_entropy_of_the_renormalised_product_of_the_two_experts():
    z, p = np.array([1.0, 0.0, -1.0]), np.array([0.7, 0.2, 0.1])
    q = np.exp(z) / np.exp(z).sum()
    expected = -np.log(q[0] * p[0] / (q * p).sum())
    loss = poe_loss(torch.tensor(z[None]), torch.tensor([0]), torch.tensor(np.log(p)[None]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_reweighting_is_the_weighted_mean_of_cross_entropies():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    ce = [np.log(1 + np.exp(-2.0)), np.log(1 + np.exp(1.0))]
    loss = reweighted_loss(logits, labels, torch.tensor([0.2, 0.8]))
    assert loss.item() == pytest.approx((0.2 * ce[0] + 0.8 * ce[1]) / 1.0, rel=1e-6)


def test_confidence_regularisation_flattens_the_teacher_by_one_minus_beta():
    teacher = np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])
    targets = confreg_targets(teacher, np.array([0.0, 0.5]))
    np.testing.assert_allclose(targets[0], teacher[0])
    root = np.sqrt(teacher[1])
    np.testing.assert_allclose(targets[1], root / root.sum())
    soft = soft_cross_entropy(torch.zeros(1, 3), torch.tensor(targets[1:], dtype=torch.float32))
    assert soft.item() == pytest.approx(np.log(3), rel=1e-6), "uniform logits: the cross-entropy is log K"


def test_a_bias_model_certain_of_a_wrong_label_keeps_poe_finite():
    loss = poe_loss(torch.zeros(1, 2), torch.tensor([0]), torch.tensor(log_bias(np.array([[0.0, 1.0]])), dtype=torch.float32))
    assert torch.isfinite(loss)


def test_the_methods_ask_for_the_bias_products_they_use():
    assert METHODS["poe"].needs == {"bias_probs"} and METHODS["reweight"].needs == {"bias_beta"}
    assert METHODS["confreg"].needs == {"teacher_probs", "bias_beta"}
    assert not {"poe", "reweight", "confreg"} & set(compared_methods()), "not among the paper's methods in Table 4"


def test_overlap_features_by_hand():
    frame = pd.DataFrame({"text_a": ["the doctor helped the lawyer"], "text_b": ["the doctor never helped"]})
    [f] = overlap_features(frame)
    np.testing.assert_allclose(f[:6], [3 / 4, 4 / 5, 0.0, 0.0, 1.0, 0.0])
    assert f[6] == pytest.approx(np.log(5 / 6))


@pytest.fixture(scope="module")
def synthetic():
    return generate_split(1200, 0, "train", 0.9, 0.0), generate_split(600, 0, "dev", 0.9, 0.0)


def test_the_hypothesis_only_model_captures_the_planted_shortcut_and_nothing_else(synthetic):
    train, dev = synthetic
    probs = bias_probabilities("hypothesis-only", train, dev, 3, seed=0)
    right = np.argmax(probs["dev"], axis=1) == dev["label"].to_numpy()
    hard = dev["hard"].to_numpy(dtype=bool)
    assert right[~hard].mean() > 0.95 and right[hard].mean() < 0.1
    gold = probs["train"][np.arange(len(train)), train["label"]]
    assert gold[train["hard"].to_numpy(dtype=bool)].mean() < 0.5, "out of fold: the hard training rows are not memorised"


def test_too_few_rows_per_label_for_cross_fitting_is_refused(synthetic):
    train, dev = synthetic
    with pytest.raises(ValueError, match="at least 5 training rows per label"):
        bias_probabilities("overlap", train.head(8), dev, 3, seed=0)


@pytest.fixture(scope="module")
def srnets_run(tmp_path_factory):
    """One tiny run of SRNets' settings for several checks: the three known-bias students,
    the OOD-information upper bound, and RMC with cartography difficulty. Returns the
    store, the run's outputs, and each stage's calls (arguments and result)."""
    made = {}

    def keeping(stage, *args, **kwargs):
        ref = stage(*args, **kwargs)
        made.setdefault(stage.__name__, []).append((args, kwargs, ref))
        return ref

    subnets = tiny_run_config().subnetworks.model_copy(update={"estimator": "cartography"})
    cfg = tiny_run_config(methods=("poe", "reweight", "confreg", "rmc", "ood-upper"), subnetworks=subnets)
    store = Store(tmp_path_factory.mktemp("srnets"))
    return cfg, store, pipeline.run(cfg, store, call=keeping), made


def test_one_bias_model_serves_every_known_bias_student_and_cartography_trains_no_subnetwork(srnets_run):
    """The known-bias students share one bias-only model, and the cartography estimator
    scores rows from the teacher's own training alone."""
    cfg, store, outputs, made = srnets_run
    assert len(made["bias_model"]) == 1
    results = store.tables(outputs.report)["results"]
    assert list(results["model"]) == ["teacher", "imp40-poe", "imp40-reweight", "imp40-confreg", "imp40-rmc",
                                      "imp40-ood-upper"]
    assert pipeline.bias_model_kind(cfg) == "hypothesis-only"
    assert len(made["train"]) == 1 + 5, "the teacher and the students: no sub-network"
    tables = store.tables(outputs.report)
    assert tables["subnetworks"].empty and 0 <= tables["split_agreement"]["agreement"].iloc[0] <= 1
    (_, _, bias), = made["bias_model"]
    assert store.tables(bias)["train"].shape == (300, 4) and store.tables(bias)["dev"].shape == (90, 4), \
        "three probabilities and the gold loss"
    np.testing.assert_allclose(stages.split_probs(store, bias, "train").sum(axis=1), 1.0)


def test_the_upper_bound_trains_on_the_ood_rows_and_is_tabled_apart_and_compared_with_nothing(srnets_run):
    cfg, store, outputs, made = srnets_run
    (_, _, shared), (_, _, data) = made["prepare_data"]
    assert len(store.table(data, OOD_TRAIN)) == cfg.data.synthetic_ood
    # Only the upper bound's student trains on the data with the OOD rows: adding the
    # method to a run keeps every other stage's input, and so its cache, as it was.
    assert OOD_TRAIN not in store.tables(shared)
    assert [kw.get("desc") for args, kw, _ in made["train"] if args[1] == data] == ["imp40-ood-upper"]
    steps = {kw.get("desc"): store.record(ref, TRAIN_STATS)["steps"] for _, kw, ref in made["train"]}
    assert steps["imp40-ood-upper"] > steps["imp40-rmc"], "the upper bound trains on more rows"
    tables = store.tables(outputs.report)
    roles = tables["results"].set_index("model")["role"]
    assert roles["imp40-ood-upper"] == UPPER_BOUND and roles["imp40-rmc"] == "student"
    compared = set(tables["comparisons"]["a"]) | set(tables["comparisons"]["b"])
    assert "imp40-ood-upper" not in compared and {"imp40-rmc", "imp40-poe"} <= compared
    assert all("imp40-ood-upper" not in set(t["model"]) for t in summary_tables(tables))
    assert list(upper_bound_table(tables)["model"]) == ["imp40-ood-upper"]
    assert f"## {UPPER_BOUND_HEADING}" in markdown_report(tables, "synthetic")
    without = tables["results"][tables["results"]["role"] != UPPER_BOUND]
    assert upper_bound_table({**tables, "results": without}) is None
    assert OOD_TRAIN not in store.tables(stages.prepare_data("synthetic", tiny_run_config().data, store)), \
        "a run without an upper bound reads no OOD training rows"
