"""int8 students: quantization-aware training computes what the converted model computes,
the int8 artifact holds int8 tensors and rebuilds the same model, and export refuses a
format that cannot hold one."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from torch.nn.utils import parametrize

from rmc_core import quantization as q
from rmc_core.models import build_base, load_model, save_model
from tests.conftest import TINY

TEXTS = ["a man plays a guitar", "the doctor saw the actor", "it rains today", "two dogs run in a field"] * 10


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = build_base(TINY, ("a", "b", "c"), TEXTS, 0)
    inputs = tokenizer(["a man plays", "the actor saw it"], ["it rains", "a dog"], padding=True, return_tensors="pt")
    return model.eval(), tokenizer, inputs


def logits(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def test_quantization_aware_training_computes_what_the_int8_model_computes(tiny):
    model, _, inputs = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fp32, int8 = logits(model, inputs), logits(q.to_int8(model), inputs)
    hook = q.QuantAware()
    hook.on_train_begin(model, total_steps=1)
    simulated = logits(model, inputs)
    torch.testing.assert_close(simulated, int8, atol=1e-6, rtol=0)
    assert (simulated - fp32).abs().max() > 1e-5, "the rounding is simulated"
    hook.on_train_end(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the fp32 weights are kept"


def test_the_weight_gradient_passes_straight_through_the_rounding():
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 4)
    x = torch.randn(3, 6)
    rounded = q.fake_quant_weight(linear.weight.detach()).requires_grad_()
    (torch.nn.functional.linear(q.fake_quant_input(x), rounded, linear.bias) ** 2).sum().backward()
    parametrize.register_parametrization(linear, "weight", q.FakeQuantWeight())
    (linear(q.fake_quant_input(x)) ** 2).sum().backward()
    torch.testing.assert_close(linear.parametrizations.weight.original.grad, rounded.grad)


def test_the_int8_artifact_holds_int8_tensors_and_rebuilds_the_same_model(tiny, tmp_path):
    model, tokenizer, inputs = tiny
    int8 = q.to_int8(model)
    q.save_int8(int8, tokenizer, tmp_path / "int8", "dynamic-int8")
    save_model(model, tokenizer, tmp_path / "fp32")
    loaded, _ = load_model(tmp_path / "int8")
    torch.testing.assert_close(logits(loaded, inputs), logits(int8, inputs), atol=0, rtol=0)
    with safe_open(str(tmp_path / "int8" / q.INT8_WEIGHTS), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    linears = q.quantized_linears(model)
    assert len(linears) == 2 * 6 + 1  # Q, K, V, attention output and both FFN matrices per layer, and the pooler
    assert {dtypes[f"{name}.weight.int8"] for name in linears} == {"I8"}
    assert "classifier.weight" in dtypes and dtypes["classifier.weight"] == "F32"
    int8_bytes, fp32_bytes = ((tmp_path / d / f).stat().st_size for d, f in (("int8", q.INT8_WEIGHTS), ("fp32", "model.safetensors")))
    linear_weights = sum(model.get_submodule(n).weight.numel() for n in linears)
    assert fp32_bytes - int8_bytes == pytest.approx(3 * linear_weights, rel=0.02), "three bytes saved per int8 weight"


def test_a_transformers_folder_is_refused_for_an_int8_model(tiny, tmp_path):
    from rmc_core.export import export_hf

    model, tokenizer, _ = tiny
    q.save_int8(q.to_int8(model), tokenizer, tmp_path / "int8", "dynamic-int8")
    with pytest.raises(ValueError, match="int8 model, which a transformers folder cannot hold; export it with --format onnx"):
        export_hf(tmp_path / "int8", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_quantization_aware_training_of_a_masked_student_is_refused_before_any_training():
    from pydantic import ValidationError

    from rmc_core.compression.masked_config import MaskedConfig
    from rmc_core.config import StudentConfig

    with pytest.raises(ValidationError, match="qat-int8 cannot train a masked student"):
        StudentConfig(compression=MaskedConfig(), quantize="qat-int8")
    assert StudentConfig(compression=MaskedConfig(), quantize="dynamic-int8").quantize == "dynamic-int8"
