"""Mixed precision: which compute dtype a device gets, and the autocast around a forward.

bf16 autocast runs matmuls in bf16 while master weights, gradients and the optimizer
state stay fp32, so training needs no loss scaling and IMP masks (computed from the fp32
weights) are exactly those of an fp32 run. On a CPU it pays only with native bf16
instructions (avx512_bf16 or AMX); without them bf16 is emulated and slower than fp32, so
`auto` falls back to fp32 there.
"""

from __future__ import annotations

import contextlib
from typing import Literal

# The training configs' precision setting (config.TrainConfig.precision). torch is imported
# where a device is asked about: the run config imports this module and stays torch-free.
Precision = Literal["auto", "fp32", "bf16"]


def bf16_supported(device: str) -> bool:
    """Whether `device` computes bf16 natively (checked at run time, not assumed)."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_precision(precision: Precision, device: str) -> Literal["fp32", "bf16"]:
    """`auto` -> bf16 where the device supports it natively, else fp32; explicit choices stand."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


def autocast(precision: Literal["fp32", "bf16"], device: str) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
