"""Speed-ups over a reference model are paired per round and carry an interval."""

from __future__ import annotations

import time

import numpy as np
import pytest
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
    figures = speed_figures({"teacher": timed(0.02), "student": timed(0.01)}, repeats=7, references={"": "teacher"})
    student, teacher = figures["student"], figures["teacher"]
    assert (teacher["speedup_b1"], teacher["speedup_b1_low"], teacher["speedup_b1_high"]) == (1.0, 1.0, 1.0)
    for key in ("speedup_b1", "speedup_batched"):
        assert 1.0 < student[f"{key}_low"] <= student[key] <= student[f"{key}_high"]
        assert 1.5 < student[key] < 2.2  # sleep overshoots a little, more on a busy machine
    assert student["latency_b1_ms"] < teacher["latency_b1_ms"]


def test_too_few_rounds_give_a_speed_up_without_bounds_and_no_reference_none():
    few = speed_figures({"teacher": timed(0.001), "student": timed(0.001)}, repeats=3, references={"": "teacher"})
    assert np.isnan(few["student"]["speedup_b1_low"]) and np.isnan(few["student"]["speedup_b1_high"])
    assert "speedup_b1" not in speed_figures({"student": timed(0.001)}, repeats=2, references={"": "teacher"})["student"]


def test_speed_ups_over_a_second_reference_come_from_the_same_rounds_under_their_own_columns():
    figures = speed_figures({"teacher": timed(0.02), "fast teacher": timed(0.01), "student": timed(0.005)}, repeats=7,
                            references={"": "teacher", "_vs_fast": "fast teacher"})
    student = figures["student"]
    assert 3.0 < student["speedup_b1"] < 4.4 and 1.5 < student["speedup_b1_vs_fast"] < 2.2
    assert figures["fast teacher"]["speedup_b1_vs_fast"] == 1.0


def test_a_model_served_by_onnx_runtime_is_timed_beside_torch_with_its_own_accuracy(tmp_path):
    from rmc.benchmarks.inference import onnx_model
    from rmc_core.evaluation.inference_cost import prepared
    from rmc_core.models import load_model
    from rmc_core.store import Store
    from rmc_core.training.predict import predict_logits
    from tests.conftest import tiny_data_and_base

    store = Store(tmp_path / "store")
    data, base = tiny_data_and_base(store)
    dev, path = store.table(data, "dev"), store.path(base)
    timed = prepared(path, dev.head(6), 32, 4)
    graph, size, correct = onnx_model(path, tmp_path / "graph", timed, dev, 32, 16)
    accuracy = float(np.mean(correct))
    model, tokenizer = load_model(path)
    logits = predict_logits(model.float(), tokenizer, dev, 32, 16, precision="fp32")
    # The same fp32 weights (logits within the export's 1e-4): the same predictions, ties aside.
    assert accuracy == pytest.approx(float(np.mean(logits.argmax(axis=1) == dev["label"].to_numpy())), abs=2 / len(dev))
    assert size["weights_mb"] > 0 and len(graph.singles) == 6
    figures = speed_figures({"teacher": timed, "teacher (onnx)": graph}, repeats=2,
                            references={"": "teacher", "_vs_onnx_teacher": "teacher (onnx)"})
    assert figures["teacher (onnx)"]["speedup_b1_vs_onnx_teacher"] == 1.0 and figures["teacher"]["latency_b1_ms"] > 0
