"""8-bit integer students (Xu et al. 2021's quantization family), on top of any compression.

`dynamic-int8` is post-training dynamic quantization: each Linear of the encoder and pooler
keeps int8 weights (per-tensor symmetric, scale = max|W| / 127.5, torch's default weight
observer) and quantizes its input per batch at run time (uint8, 7-bit range on x86/fbgemm,
as torch's dynamic Linear does). `qat-int8` trains the student with both roundings
simulated (fake quantization with straight-through gradients, `QuantAware`), so the weights
learn to sit where int8 keeps them, then converts it the same way.

The classification head stays fp32: it is a few hundred weights whose rounding would go
straight into the logits. The int8 model is stored as int8 tensors with their scales
(`model-int8.safetensors`: a byte per Linear weight instead of four) and rebuilt on load; it runs on the
CPU only (torch's int8 kernels are CPU kernels).

torch marks eager-mode quantization deprecated in favour of torchao (not a dependency of
rmc); its kernels still run in torch 2.13 (1.5x at batch 1 on MiniLM here), so rmc uses
them and silences the deprecation notices here, where they are known.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils import parametrize
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from rmc_core.artifact_layout import INT8_WEIGHTS, QUANTIZATION
from rmc_core.training.hooks import Hook

if TYPE_CHECKING:
    from rmc_core.config import Quantize

# The int8 grids torch's dynamic Linear uses: symmetric qint8 weights, and inputs in
# quint8 with the 7-bit range x86/fbgemm kernels take to stay clear of overflow.
WEIGHT_QMIN, WEIGHT_QMAX = -128, 127
INPUT_QMIN, INPUT_QMAX = 0, 127


def quantized_linears(model: nn.Module) -> list[str]:
    """The Linear layers that become int8: every one except the classification head."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and not name.startswith("classifier")]


def weight_scale(weight: torch.Tensor) -> torch.Tensor:
    """torch's symmetric per-tensor weight scale (MinMaxObserver, qint8): max|W| / 127.5."""
    amax = weight.detach().abs().max().float()
    return torch.clamp(amax / ((WEIGHT_QMAX - WEIGHT_QMIN) / 2), min=torch.finfo(torch.float32).eps)


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    return torch.fake_quantize_per_tensor_affine(weight, weight_scale(weight), 0, WEIGHT_QMIN, WEIGHT_QMAX)


def fake_quant_input(x: torch.Tensor) -> torch.Tensor:
    """The per-batch input rounding of a dynamic int8 Linear: the range [min(x, 0), max(x, 0)]
    on 128 levels."""
    low = torch.clamp(x.detach().min(), max=0.0).float()
    high = torch.clamp(x.detach().max(), min=0.0).float()
    scale = torch.clamp((high - low) / (INPUT_QMAX - INPUT_QMIN), min=torch.finfo(torch.float32).eps)
    zero_point = int(torch.clamp(torch.round(INPUT_QMIN - low / scale), INPUT_QMIN, INPUT_QMAX))
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, INPUT_QMIN, INPUT_QMAX)


class FakeQuantWeight(nn.Module):
    """A parametrization: the weight as its int8 grid value (straight-through gradient)."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(weight)


class QuantAware(Hook):
    """Quantization-aware training: every Linear that will become int8 computes with its
    weight and input rounded as the int8 model will round them. At the end the fp32
    weights stay (the conversion rounds them exactly as the fake quantization did)."""

    def __init__(self) -> None:
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        self.modules: list[nn.Linear] = []

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        for name in quantized_linears(model):
            linear = model.get_submodule(name)
            parametrize.register_parametrization(linear, "weight", FakeQuantWeight())
            self.handles.append(linear.register_forward_pre_hook(lambda _m, args: (fake_quant_input(args[0]), *args[1:])))
            self.modules.append(linear)

    def on_train_end(self, model: nn.Module) -> nn.Module:
        for handle in self.handles:
            handle.remove()
        for linear in self.modules:
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=False)
        return model


@contextlib.contextmanager
def _known_deprecations() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(deprecated|torchao).*")
        yield


def to_int8(model: PreTrainedModel, modules: list[str] | None = None) -> PreTrainedModel:
    """A dynamic-int8 copy of an fp32 model (the model itself is left as it is)."""
    from torch.ao.quantization import quantize_dynamic

    with _known_deprecations():
        return quantize_dynamic(model.float().eval(), set(modules if modules is not None else quantized_linears(model)),
                                dtype=torch.qint8, inplace=False)


def int8_modules(model: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, DynamicLinear)}


def is_int8(directory: Path) -> bool:
    return (Path(directory) / QUANTIZATION).exists()


def save_int8(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path, scheme: Quantize) -> None:
    """int8 weights with their scales, every other tensor as it is, and the config: no
    pickled module, so a shared store never has to unpickle to load one."""
    directory.mkdir(parents=True, exist_ok=True)
    quantized = int8_modules(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in quantized.items():
        weight = module.weight()
        tensors[f"{name}.weight.int8"] = weight.int_repr().contiguous()
        tensors[f"{name}.weight.scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
        tensors[f"{name}.weight.zero_point"] = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
        if module.bias() is not None:
            tensors[f"{name}.bias"] = module.bias().detach().contiguous()
    for key, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and not value.is_quantized and _owner(key, quantized) is None:
            tensors[key] = value.detach().contiguous()
    save_file(tensors, str(directory / INT8_WEIGHTS))
    model.config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / QUANTIZATION).write_text(json.dumps({"scheme": scheme, "modules": sorted(quantized),
                                                      "weights": "int8 per-tensor symmetric", "inputs": "dynamic uint8, 7-bit"},
                                                     indent=1))


def load_int8(directory: Path) -> PreTrainedModel:
    """The int8 model saved by `save_int8`, rebuilt from its config and its tensors."""
    info = json.loads((directory / QUANTIZATION).read_text())
    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(directory))
    model = to_int8(model, info["modules"])
    tensors = load_file(str(directory / INT8_WEIGHTS))
    quantized = int8_modules(model)
    if set(quantized) != set(info["modules"]):
        raise ValueError(f"{directory}: the int8 modules do not match its {QUANTIZATION}")
    with _known_deprecations():
        for name, module in quantized.items():
            weight = torch._make_per_tensor_quantized_tensor(tensors.pop(f"{name}.weight.int8"),
                                                            float(tensors.pop(f"{name}.weight.scale")),
                                                            int(tensors.pop(f"{name}.weight.zero_point")))
            module.set_weight_bias(weight, tensors.pop(f"{name}.bias", None))
    own = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor) and _owner(k, quantized) is None}
    missing, unexpected = sorted(own.keys() - tensors.keys()), sorted(tensors.keys() - own.keys())
    if missing or unexpected:
        raise ValueError(f"{directory}: int8 checkpoint mismatch (missing {missing[:5]}, unexpected {unexpected[:5]})")
    with torch.no_grad():
        for key, value in tensors.items():
            own[key].copy_(value)
    return model.eval()


def fp32_twin(model: PreTrainedModel) -> PreTrainedModel:
    """The int8 model with each int8 Linear back as an fp32 Linear holding its dequantized
    weights: the graph other runtimes (ONNX Runtime) quantize again, onto the same grid."""
    twin = AutoModelForSequenceClassification.from_config(model.config)
    quantized = int8_modules(model)
    state = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor) and _owner(k, quantized) is None}
    for name, module in quantized.items():
        state[f"{name}.weight"] = module.weight().dequantize()
        if module.bias() is not None:
            state[f"{name}.bias"] = module.bias().detach()
    twin.load_state_dict(state)
    return twin.float().eval()


def int8_layer_tensors(model: nn.Module) -> list[torch.Tensor]:
    """What the int8 layers hold outside `parameters()`: their weights as integers (offset
    by their zero point) and their fp32 biases, for parameter counts and sparsity figures."""
    tensors = []
    for m in int8_modules(model).values():
        tensors.append(m.weight().int_repr().to(torch.int32) - m.weight().q_zero_point())
        if m.bias() is not None:
            tensors.append(m.bias().detach())
    return tensors


def _owner(key: str, modules: dict[str, nn.Module]) -> str | None:
    prefix = key.rsplit(".", 1)[0]
    while prefix:
        if prefix in modules:
            return prefix
        prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    return None
