"""Module replacing (BERT-of-Theseus): the replacement rate's schedule, successors that
learn to stand in for blocks of the teacher's layers while nothing else moves, and a
student that is the successors alone."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from rmc_core import stages
from rmc_core.compression.theseus import ModuleReplacing, replace_rate
from rmc_core.compression.theseus_config import check, TheseusConfig
from rmc_core.model_spec import ModelSpec, TinyBertSpec
from rmc_core.models import encoder_config, load_model
from rmc_core.store import Store
from tests.conftest import FAST, TINY, tiny_run_config


def test_the_rate_is_constant_or_rises_linearly_then_is_one_for_successor_only_fine_tuning():
    constant = TheseusConfig(replace_rate=0.4, successor_only=0.25)
    assert [replace_rate(constant, t, 8) for t in range(8)] == [0.4] * 6 + [1.0] * 2
    linear = TheseusConfig(replace_rate=0.2, schedule="linear", successor_only=0.5)
    rates = [replace_rate(linear, t, 100) for t in range(100)]
    assert rates[0] == pytest.approx(0.2) and rates[25] == pytest.approx(0.6) and rates[49] == pytest.approx(0.984)
    assert rates[50:] == [1.0] * 50 and all(a < b for a, b in zip(rates[:50], rates[1:50]))


def test_successors_must_split_the_teachers_layers_into_equal_blocks():
    six = encoder_config(ModelSpec(source="tiny", tiny=TinyBertSpec(num_hidden_layers=6)))
    assert check(TheseusConfig(successors=3), six, ("a", "b")).num_hidden_layers == 3
    for bad in (4, 6, 7):
        with pytest.raises(ValueError, match="must split into that many equal blocks"):
            check(TheseusConfig(successors=bad), six, ("a", "b"))


def test_each_block_draws_its_own_choice_at_the_configured_rate():
    torch.manual_seed(0)
    hook = ModuleReplacing(2, lambda step, total: 0.3)
    model = torch.nn.Module()
    model.base_model = model
    model.encoder = torch.nn.Module()
    model.encoder.layer = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(4)])
    hook.on_train_begin(model, 2000)
    for step in range(2000):
        hook.on_step_begin(step)
    assert hook.report()["successor_share"] == pytest.approx(0.3, abs=0.03)
    assert [list(b.predecessors) for b in hook.blocks] == [list(model.encoder.layer[0].predecessors), list(model.encoder.layer[1].predecessors)]
    assert all(not p.requires_grad for b in hook.blocks for p in b.predecessors.parameters())
    assert all(p.requires_grad for b in hook.blocks for p in b.successor.parameters())


def test_only_the_successors_train_and_the_student_is_the_successors_alone(tmp_path):
    store = Store(tmp_path)
    cfg = tiny_run_config()
    four = TINY.model_copy(update={"tiny": TINY.tiny.model_copy(update={"num_hidden_layers": 4})})
    data = stages.prepare_data(cfg.task, cfg.data, store)
    teacher = stages.train(stages.prepare_base(four, data, 0, store), data, FAST, store)
    student = stages.train(teacher, data, FAST, store, compression=TheseusConfig(successors=2, replace_rate=0.5))
    before = load_file(str(store.path(teacher) / "model.safetensors"))
    after = load_file(str(store.path(student) / "model.safetensors"))
    model, _ = load_model(store.path(student))
    assert model.config.num_hidden_layers == 2 and len(model.bert.encoder.layer) == 2
    kept = [k for k in after if not k.startswith("bert.encoder.layer.")]
    assert kept and all(torch.equal(after[k], before[k]) for k in kept), "embeddings, pooler and head stay the teacher's"
    for i in range(2):  # successor i starts as a copy of the teacher's layer i, and trains
        layer = [k for k in after if k.startswith(f"bert.encoder.layer.{i}.")]
        assert any(not torch.equal(after[k], before[k]) for k in layer)
    record = store.record(student, stages.TRAIN_STATS)
    assert record["sparsity"]["successor_layers"] == 2.0
    assert 0.5 < record["sparsity"]["successor_share"] < 1.0
