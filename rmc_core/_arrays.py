"""Numpy-or-torch in, same out: the equations are written once, in torch float64."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import numpy as np
import torch


def _float64(a: Any) -> Any:
    if isinstance(a, torch.Tensor):
        return a.to(torch.float64)
    if isinstance(a, (np.ndarray, list, tuple)):
        return torch.tensor(np.asarray(a), dtype=torch.float64)
    return a


def same_type_out(fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """Run `fn` on float64 tensors; hand back a tensor if the first argument was one, else numpy."""

    @wraps(fn)
    def wrapper(first: Any, *args: Any, **kwargs: Any) -> Any:
        is_tensor = isinstance(first, torch.Tensor)
        out = fn(_float64(first), *map(_float64, args), **kwargs)
        return out.to(first.dtype if first.is_floating_point() else torch.float64) if is_tensor else out.numpy()

    return wrapper
