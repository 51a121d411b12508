"""The method registry: a method is one MethodSpec, and the rest of the project follows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import Field, ValidationError

from rmc_core.config import RunConfig
from rmc_core.objectives.losses import distillation_loss, distillation_objective, weighted_cross_entropy
from rmc_core.objectives.methods import METHODS, MethodConfig, MethodSpec, register, select
from rmc_core.pipeline import run_local, student_name
from rmc_core.schema import Frozen, Real
from rmc_core.objectives.smoothing import smooth_probs
from tests.conftest import tiny_run_config


class UniformMix(Frozen):
    """A hyper-parameter of the test's method, declared with it (MethodConfig is not edited)."""

    mix: Real = Field(0.5, ge=0, le=1, description="weight of the uniform distribution in the targets")


@pytest.fixture
def uniform_method():
    """A method that exists only in this test: Eq. 3 towards the teacher mixed with the
    uniform distribution. Registered in one place; the fixture removes it again."""
    spec = register(MethodSpec(
        name="uniform-mix",
        summary="Eq. 3 with targets between the teacher and uniform",
        loss=distillation_objective,
        targets=lambda teacher_probs, mix: (1 - mix) * teacher_probs + mix / teacher_probs.shape[1],
        settings=UniformMix,
    ))
    yield spec
    del METHODS[spec.name]


def test_a_method_registered_in_one_place_runs_through_the_pipeline(uniform_method, tmp_path):
    cfg = tiny_run_config(methods=("vanilla", "uniform-mix"), method_settings={"uniform-mix": {"mix": 0.25}})
    assert select(uniform_method.target_params, uniform_method, cfg) == {"mix": 0.25}
    assert select(uniform_method.target_params, uniform_method, tiny_run_config()) == {"mix": 0.5}  # its default
    with pytest.raises(ValidationError, match="mixx"):
        tiny_run_config(method_settings={"uniform-mix": {"mixx": 0.25}})
    with pytest.raises(ValidationError, match="method 'vanilla' has no settings of its own"):
        tiny_run_config(method_settings={"vanilla": {}})
    tables = run_local(cfg, tmp_path / "store")
    results = tables["results"].set_index("model")
    assert list(results.index) == ["teacher", student_name(cfg.student.compression, "vanilla"), student_name(cfg.student.compression, "uniform-mix")]
    assert 0.0 <= results.loc[student_name(cfg.student.compression, "uniform-mix"), "acc_dev"] <= 1.0
    assert RunConfig.model_json_schema()["properties"]["methods"]["items"]["enum"][-1] == "uniform-mix"


def test_what_each_method_needs_and_reads_follows_from_its_functions():
    assert {m: (set(s.needs), s.params) for m, s in METHODS.items()} == {
        "vanilla": (set(), ()),
        "distil": ({"teacher_probs"}, ("lam",)),
        "smooth": ({"teacher_probs"}, ("lam", "smooth_d")),
        "smooth-matched": ({"teacher_probs", "difficulty"}, ("lam",)),
        "focal": (set(), ("focal_gamma",)),
        "jtt": ({"first_stage_errors"}, ("jtt_lambda_up",)),
        "rmc": ({"teacher_probs", "difficulty"}, ("lam",)),
        "poe": ({"bias_probs"}, ()),
        "reweight": ({"bias_beta"}, ()),
        "confreg": ({"teacher_probs", "bias_beta"}, ()),
        "ood-upper": (set(), ()),
    }


def test_every_hyper_parameter_is_read_by_a_method_and_documented():
    read = {p for s in METHODS.values() for p in s.params} | {"jtt_first_epochs", "alpha", "bias_model"}
    assert read == set(MethodConfig.model_fields)
    assert all(f.description for f in MethodConfig.model_fields.values())


def test_specs_build_the_papers_targets_and_losses():
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    d = np.array([0.5, 1.0])
    np.testing.assert_allclose(METHODS["rmc"].targets(teacher_probs=teacher, difficulty=d), smooth_probs(teacher, d))
    np.testing.assert_allclose(METHODS["smooth"].targets(teacher_probs=teacher, smooth_d=0.9), smooth_probs(teacher, 0.9))
    errors = np.array([True, False, False, False])
    np.testing.assert_allclose(METHODS["jtt"].targets(first_stage_errors=errors, jtt_lambda_up=3.0), [2.0, 2 / 3, 2 / 3, 2 / 3])

    logits, labels, idx = torch.randn(2, 3), torch.tensor([0, 2]), torch.tensor([0, 1])
    rmc = METHODS["rmc"].loss(smooth_probs(teacher, d), lam=0.9)
    assert rmc(logits, labels, idx) == pytest.approx(float(distillation_loss(logits, labels, torch.tensor(smooth_probs(teacher, d), dtype=torch.float32), 0.9)))
    weights = np.array([2.0, 0.5])
    jtt = METHODS["jtt"].loss(weights)
    assert jtt(logits, labels, idx) == pytest.approx(float(weighted_cross_entropy(logits, labels, torch.tensor(weights, dtype=torch.float32))))


def test_a_spec_that_reads_an_undefined_setting_or_is_registered_twice_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        MethodSpec(name="x", summary="", loss=lambda targets, temperature: None)
    with pytest.raises(ValueError, match="already registered"):
        register(METHODS["rmc"])
