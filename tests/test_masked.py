"""Mask training (SRNets): scores over frozen weights, a straight-through gradient, each
matrix's sparsity exact, masks searched on the teacher (scenario 1) or the pre-trained
encoder (scenario 3)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from rmc_core import stages
from rmc_core.compression.masked import MaskLearning, ScoredMask, masked_linears, top_mask
from rmc_core.compression.masked_config import MaskedConfig
from rmc_core.models import load_model
from rmc_core.store import Store
from tests.conftest import FAST, tiny_data_and_base, tiny_run_config


def test_the_scores_get_the_gradient_the_mask_would_get():
    torch.manual_seed(0)
    weight, x = torch.randn(4, 6), torch.randn(3, 6)
    scored = ScoredMask(weight, "soft", 0.5)
    (x @ scored(weight).T).pow(2).sum().backward()
    mask = top_mask(weight.abs(), 0.5).requires_grad_(True)
    [expected] = torch.autograd.grad((x @ (weight * mask).T).pow(2).sum(), mask)
    torch.testing.assert_close(scored.scores.grad, expected)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.7, 0.9, 0.97])
def test_the_mask_holds_each_matrixs_sparsity_exactly(sparsity):
    scores = torch.randn(37, 11)
    scores[0, :5] = 0.0  # ties
    mask = top_mask(scores, sparsity)
    assert int((mask == 0).sum()) == round(sparsity * scores.numel())
    assert bool((scores[mask == 1].min() >= scores[mask == 0].max()))


def test_hard_init_scores_are_zero_below_the_start_sparsity_and_twice_the_threshold_above():
    weight = torch.arange(1.0, 11.0).view(2, 5)
    scored = ScoredMask(weight, "hard", 0.3)
    torch.testing.assert_close(scored.scores.flatten(), torch.tensor([0.0] * 3 + [0.02] * 7))


def test_the_warm_up_is_cubic_from_the_start_to_the_final_sparsity():
    hook = MaskLearning(MaskedConfig(sparsity=0.9, warmup_from=0.7))
    hook.total = 100
    targets = [hook.target(step) for step in range(101)]
    assert targets[0] == pytest.approx(0.7) and targets[-1] == pytest.approx(0.9)
    assert all(a <= b for a, b in zip(targets, targets[1:]))
    with pytest.raises(ValidationError, match="must not exceed"):
        MaskedConfig(sparsity=0.5, warmup_from=0.7)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny teacher, and masks searched on it (scenario 1) and on the base (scenario 3)."""
    store = Store(tmp_path_factory.mktemp("masked"))
    data, base = tiny_data_and_base(store)
    teacher = stages.train(base, data, FAST, store)
    cfg1 = MaskedConfig(sparsity=0.6, warmup_from=0.3)
    on_teacher = stages.train(teacher, data, FAST, store, compression=cfg1)
    on_base = stages.train(base, data, FAST, store, compression=cfg1.model_copy(update={"scenario": 3}))
    return store, {"base": base, "teacher": teacher, "scenario 1": on_teacher, "scenario 3": on_base}


@pytest.mark.parametrize(("student", "start"), [("scenario 1", "teacher"), ("scenario 3", "base")])
def test_no_weight_moves_and_every_masked_matrix_is_at_its_sparsity(trained, student, start):
    store, refs = trained
    before, after = (load_file(store.path(refs[k]) / "model.safetensors") for k in (start, student))
    assert before.keys() == after.keys()
    model, _ = load_model(store.path(refs[student]))
    masked = {f"{model.base_model_prefix}.{n}" if not n.startswith("classifier") else n for n in masked_linears(model)}
    checked = set()
    for name, value in after.items():
        kept = value != 0
        torch.testing.assert_close(value[kept], before[name][kept], rtol=0, atol=0)
        if name.removesuffix(".weight") in masked and name.endswith(".weight"):
            assert int((~kept).sum()) == round(0.6 * value.numel()), name
            checked.add(name.removesuffix(".weight"))
    assert checked == masked and len(masked) == 2 * 6 + 2, "six matrices per layer, the pooler and the classifier"
    stats = store.record(refs[student], stages.TRAIN_STATS)["sparsity"]
    assert stats["min_matrix_sparsity"] == pytest.approx(0.6, abs=1e-3) == stats["max_matrix_sparsity"]


def test_scenario_1_starts_from_the_teacher_and_scenario_3_from_the_base():
    from rmc_core.compression import spec_of

    assert spec_of(MaskedConfig()).starts_from(MaskedConfig()) == "teacher"
    assert spec_of(MaskedConfig(scenario=3)).starts_from(MaskedConfig(scenario=3)) == "base"
    assert spec_of(MaskedConfig(sparsity=0.9, scenario=3)).label(MaskedConfig(sparsity=0.9, scenario=3)) == "mask90s3"


def test_scenario_2_fine_tunes_the_pretrained_weights_under_the_scenario_1_mask(tmp_path):
    from rmc_core import pipeline
    from rmc_core.config import StudentConfig

    trained = {}

    def keep(stage, *args, **kwargs):
        ref = stage(*args, **kwargs)
        if stage is stages.train or stage is stages.prepare_base:
            trained[kwargs.get("desc", stage.__name__)] = ref
        return ref

    student = StudentConfig(compression=MaskedConfig(sparsity=0.6, scenario=2), train=FAST)
    subnets = tiny_run_config().subnetworks.model_copy(update={"estimator": "teacher-loss"})
    pipeline.run(tiny_run_config(methods=("vanilla",), student=student, subnetworks=subnets), Store(tmp_path), call=keep)
    assert set(trained) == {"prepare_base", "teacher", "mask60s2-vanilla-mask-search", "mask60s2-vanilla"}
    store = Store(tmp_path)
    base, searched, final = (load_file(store.path(trained[k]) / "model.safetensors")
                             for k in ("prepare_base", "mask60s2-vanilla-mask-search", "mask60s2-vanilla"))
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(final[query] == 0, searched[query] == 0), "the scenario-1 mask, held"
    assert int((final[query] == 0).sum()) == round(0.6 * final[query].numel())
    kept = final[query] != 0
    assert not torch.equal(final[query][kept], base[query][kept]), "the surviving pre-trained weights were fine-tuned"
