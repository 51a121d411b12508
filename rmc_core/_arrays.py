"""Numpy-or-torch in, same out: the equations are written once, in torch float64."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import numpy as np
import torch


def same_type_out(fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """Run `fn` on float64 tensors; hand back a tensor if the first argument was one, else numpy."""

    @wraps(fn)
    def wrapper(first: Any, *args: Any, **kwargs: Any) -> Any:
        is_tensor = isinstance(first, torch.Tensor)
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float64) if isinstance(a, (np.ndarray, torch.Tensor, list, tuple)) else a
        out = fn(as_t(first), *map(as_t, args), **kwargs)
        return out.to(first.dtype if first.is_floating_point() else torch.float64) if is_tensor else out.numpy()

    return wrapper
