"""The validation rules every config object shares (see config.py for why they are strict)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

# Strict numbers: `batch_size=true` or `epochs="2"` is a mistake, not a 1 or a 2.
Int = Annotated[int, Strict()]
Real = Annotated[float, Strict()]
# Seeds are summed (a training's seed + the run's seed) and must stay inside numpy's seed
# range (below 2**32): each is at most 2**31 - 1, so any sum of two is.
SEED_MAX = 2**31 - 1
Sparsity = Annotated[float, Strict(), Field(gt=0.0, lt=1.0, description="fraction of pruned weights, in (0, 1)")]


class Frozen(BaseModel):
    """Immutable and strict: unknown keys are typos, and typos must not be ignored; an
    infinite or NaN number is never a setting (lr=Infinity trains to NaN and exits 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
