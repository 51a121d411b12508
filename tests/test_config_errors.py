"""Bad input fails with a clear message before any training starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rmc_core import pipeline
from rmc_core.training import loop as training
from rmc_core.compression.distilled_config import DistilledConfig
from rmc_core.compression.imp_config import ImpConfig
from rmc_core.config import DataConfig, ModelSpec, RunConfig, StudentConfig, SubnetworkConfig
from rmc_core.objectives.methods import METHODS, MethodConfig
from rmc_core.models import build_base, save_model
from rmc_core.store import Store
from tests.conftest import TINY, tiny_run_config


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RunConfig(task="mnlii"), "'mnli', 'fever', 'qqp' or 'synthetic'"),
        (lambda: RunConfig(methods=("vanilla", "rmcc")), "rmcc"),
        (lambda: RunConfig(methods=()), "at least one method"),
        (lambda: StudentConfig(compression={"sparsity": 0.0}), "greater than 0"),
        (lambda: StudentConfig(compression={"kind": "pruned", "sparsity": 1.0}), "less than 1"),
        (lambda: StudentConfig(compression={"kind": "prunned"}), "unknown compression kind 'prunned'; registered: pruned"),
        (lambda: StudentConfig(compression={"kind": "pruned", "heads": 0.2}), "heads"),
        (lambda: SubnetworkConfig(sparsities=(0.2, 1.2)), "less than 1"),
        (lambda: SubnetworkConfig(sparsities=(0.5,)), "at least two"),
        (lambda: SubnetworkConfig(estimator="oneshot", controls_on="oneshot"),
         "controls_on='oneshot' applies to the controls \\(shuffled, annotated\\) only, not to estimator 'oneshot'"),
        (lambda: ImpConfig(sparsity=-0.1), "greater than 0"),
        (lambda: MethodConfig(alpha=0.0), "greater than 0"),
        (lambda: MethodConfig(alpha=1.1), "less than or equal to 1"),
        # alpha and smooth_d are checked here, at the config edge, and nowhere downstream.
        (lambda: MethodConfig(alpha=-0.1), "greater than 0"),
        (lambda: MethodConfig(smooth_d=0.0), "greater than 0"),
        (lambda: MethodConfig(smooth_d=1.5), "less than or equal to 1"),
        (lambda: MethodConfig(lam=1.5), "less than or equal to 1"),
        (lambda: MethodConfig(lam=-0.1), "greater than or equal to 0"),
        (lambda: RunConfig(teacher_train={"epochs": 1, "lrr": 1e-3}), "lrr"),
    ],
)
def test_bad_config_values_are_refused(make, message):
    with pytest.raises(ValidationError, match=message):
        make()


def test_the_task_choice_lists_exactly_the_registered_tasks():
    from typing import get_args

    from rmc_core.config import TaskName
    from rmc_core.data.registry import TASKS

    assert sorted(get_args(TaskName)) == sorted(TASKS)
    choices = RunConfig.model_json_schema()["properties"]["task"]["anyOf"]
    assert [c["enum"] for c in choices if "enum" in c] == [list(get_args(TaskName))]
    assert any(c.get("$ref", "").endswith("/FileTask") for c in choices), "or a task declared from files"


def test_the_method_choice_lists_exactly_the_registered_methods():
    assert RunConfig.model_json_schema()["properties"]["methods"]["items"]["enum"] == list(METHODS)


def test_task_default_alpha_and_override():
    assert pipeline.difficulty_floor(RunConfig(task="qqp")) == 0.2
    assert pipeline.difficulty_floor(RunConfig(task="mnli", method=MethodConfig(alpha=0.7))) == 0.7


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(training, "fine_tune", refuse)
    monkeypatch.setattr("rmc_core.stages.fine_tune", refuse)


def test_missing_data_root_fails_before_training(tmp_path, no_training):
    cfg = RunConfig(task="mnli", teacher=TINY, data=DataConfig(data_root=tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        pipeline.run(cfg, Store(tmp_path / "store"))


def test_teacher_and_student_with_different_label_sets_fail_before_training(tmp_path, no_training):
    labels = ("duplicate", "not_duplicate")
    model, tok = build_base(TINY, labels, ["a b c", "d e f"] * 20, seed=0)
    save_model(model, tok, tmp_path / "qqp-model")
    cfg = tiny_run_config(student=StudentConfig(compression=DistilledConfig(model=ModelSpec(source=str(tmp_path / "qqp-model")))))
    with pytest.raises(ValueError, match="student .* has labels \\['duplicate', 'not_duplicate'\\]"):
        pipeline.run(cfg, Store(tmp_path / "store"))


def test_hub_source_for_a_task_without_one_fails_before_training(tmp_path, no_training):
    cfg = RunConfig(task="fever", teacher=TINY, data=DataConfig(source="hub"))
    with pytest.raises(ValueError, match="no 'hub' source"):
        pipeline.run(cfg, Store(tmp_path / "store"))
