"""Speed-ups over a reference model are paired per round and carry an interval."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from rmc_core.evaluation.inference_cost import Timed, speed_figures


class Sleeper(nn.Module):
    """A 'model' whose every call takes a known time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, **_: torch.Tensor) -> None:
        time.sleep(self.seconds)


def timed(seconds: float) -> Timed:
    return Timed(Sleeper(seconds), singles=[{}] * 4, batches=[{}])


def test_a_model_twice_as_fast_has_a_resolved_speed_up_near_two_and_the_reference_exactly_one():
    figures = speed_figures({"teacher": timed(0.02), "student": timed(0.01)}, repeats=7, reference="teacher")
    student, teacher = figures["student"], figures["teacher"]
    assert (teacher["speedup_b1"], teacher["speedup_b1_low"], teacher["speedup_b1_high"]) == (1.0, 1.0, 1.0)
    for key in ("speedup_b1", "speedup_batched"):
        assert 1.0 < student[f"{key}_low"] <= student[key] <= student[f"{key}_high"]
        assert 1.5 < student[key] < 2.2  # sleep overshoots a little, more on a busy machine
    assert student["latency_b1_ms"] < teacher["latency_b1_ms"]


def test_too_few_rounds_give_a_speed_up_without_bounds_and_no_reference_none():
    few = speed_figures({"teacher": timed(0.001), "student": timed(0.001)}, repeats=3, reference="teacher")
    assert np.isnan(few["student"]["speedup_b1_low"]) and np.isnan(few["student"]["speedup_b1_high"])
    assert "speedup_b1" not in speed_figures({"student": timed(0.001)}, repeats=2, reference="teacher")["student"]
