"""Mixed precision, length-grouped batches and the throughput benchmark (issue: speed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rmc.benchmarks.throughput import COLUMNS
from rmc.flows.cli import main as rmc_main
from rmc_core.training import precision as precision_mod
from rmc_core.training.batching import LengthGroupedBatches, batch_sampler, label_skew, random_batches
from rmc_core.compression.imp import MagnitudePruning
from rmc_core.compression.schedule import Schedule
from rmc_core.config import TrainConfig
from rmc_core.data.synthetic import generate_split
from rmc_core.objectives.losses import gold_objective
from rmc_core.models import build_base
from rmc_core.pipeline import resolve_precisions
from rmc_core.training.precision import resolve_precision
from rmc_core.compression.imp import prunable_linears
from rmc_core.training.loop import fine_tune
from rmc_core.training.predict import PredictTally, predict_logits
from tests.conftest import TINY, tiny_run_config

LABELS = ("entailment", "neutral", "contradiction")


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")])
def test_auto_precision_picks_bf16_only_where_the_cpu_computes_it(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"


def test_auto_precision_on_cuda_asks_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cuda:0") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", "cuda:1") == "bf16"


def test_run_config_precision_is_made_concrete_for_the_cache_key(monkeypatch):
    cfg = tiny_run_config()
    monkeypatch.setattr(precision_mod, "bf16_supported", lambda device: False)
    fp32 = resolve_precisions(cfg, "cpu")
    monkeypatch.setattr(precision_mod, "bf16_supported", lambda device: True)
    bf16 = resolve_precisions(cfg, "cpu")
    def precisions(c):
        return {t.precision for t in (c.teacher_train, c.subnetworks.train, c.student.train)}

    assert precisions(fp32) == {"fp32"} and precisions(bf16) == {"bf16"}
    assert resolve_precisions(cfg.model_copy(update={"teacher_train": cfg.teacher_train.model_copy(
        update={"precision": "fp32"})}), "cpu").teacher_train.precision == "fp32"


def test_grouped_batches_are_a_permutation_deterministic_per_seed_and_pad_less():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000).tolist()
    sampler = LengthGroupedBatches(lengths, 32, seed=7)
    epochs = [list(sampler) for _ in range(3)]
    for epoch in epochs:
        flat = [i for b in epoch for i in b]
        assert sorted(flat) == list(range(1000)) and len(epoch) == len(sampler) == 32
        assert all(len(b) <= 32 for b in epoch)
    assert epochs[0] != epochs[1], "each epoch draws a new grouping"
    again = LengthGroupedBatches(lengths, 32, seed=7)
    assert [list(again) for _ in range(3)] == epochs
    assert list(LengthGroupedBatches(lengths, 32, seed=8)) != epochs[0]

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(epochs[0]) < 0.7 * padded(list(random_batches(1000, 32, seed=7)))
    # Batch order is shuffled: length does not trend through the epoch.
    maxima = [max(lengths[i] for i in b) for b in epochs[0]]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)


def test_auto_batching_keeps_random_batches_when_length_predicts_the_label():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=900)
    independent = rng.integers(10, 80, size=900).tolist()
    _, kind = batch_sampler(independent, labels, 32, 0, "auto")
    assert kind == "grouped"
    telling = (20 + 5 * labels + rng.integers(0, 2, size=900)).tolist()
    sampler, kind = batch_sampler(telling, labels, 32, 0, "auto")
    assert kind == "random"
    assert label_skew(list(sampler), labels) < 0.2 < label_skew(list(LengthGroupedBatches(telling, 32, 0)), labels)
    assert batch_sampler(telling, labels, 32, 0, "grouped")[1] == "grouped"
    assert batch_sampler(independent, labels, 32, 0, "random")[1] == "random"
    # auto that groups serves exactly the batches an explicit grouped run serves.
    assert list(batch_sampler(independent, labels, 32, 0, "auto")[0]) == list(
        batch_sampler(independent, labels, 32, 0, "grouped")[0])


@pytest.fixture(scope="module")
def synthetic():
    train, dev = generate_split(600, 0, "train", 0.9), generate_split(150, 0, "dev", 0.9)
    texts = list(train.text_a) + list(train.text_b)
    return train, dev, texts


def _trained(synthetic, precision, hooks=(), epochs=3.0):
    train, _, texts = synthetic
    model, tok = build_base(TINY, LABELS, texts, seed=0)
    cfg = TrainConfig(epochs=epochs, lr=2e-3, batch_size=32, max_length=32, precision=precision)
    _, stats = fine_tune(model, tok, train, gold_objective(), cfg, hooks)
    return model, tok, stats


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fp32_and_bf16_both_learn_the_synthetic_task(synthetic, precision):
    model, tok, stats = _trained(synthetic, precision)
    assert stats.precision == precision and stats.batching == "random"  # synthetic lengths predict the label
    dev = synthetic[1]
    logits = predict_logits(model, tok, dev, 32, 64, precision=precision)
    assert (logits.argmax(1) == dev["label"].to_numpy()).mean() > 0.7
    # The master weights stay fp32 whatever the compute precision.
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_bf16_prediction_matches_fp32(synthetic):
    model, tok, _ = _trained(synthetic, "fp32", epochs=1.0)
    dev = synthetic[1]
    fp32 = predict_logits(model, tok, dev, 32, 64, precision="fp32")
    bf16 = predict_logits(model, tok, dev, 32, 64, precision="bf16")
    assert fp32.dtype == bf16.dtype == np.float32
    assert np.abs(fp32 - bf16).max() < 0.1 and (fp32.argmax(1) == bf16.argmax(1)).mean() > 0.95


def test_prediction_counts_its_tokens_with_and_without_padding(synthetic):
    """The tally behind a prediction stage's MFU: rows, real tokens, and each length-sorted
    batch padded to its longest row; summed over calls."""
    _, dev, texts = synthetic
    model, tok = build_base(TINY, LABELS, texts, seed=0)
    tally = PredictTally()
    for _ in range(2):
        predict_logits(model, tok, dev, 32, 64, tally=tally)
    lengths = np.sort([len(tok(a, b, truncation=True, max_length=32)["input_ids"]) for a, b in zip(dev.text_a, dev.text_b)])
    padded = sum(int(lengths[s : s + 64].max()) * len(lengths[s : s + 64]) for s in range(0, len(lengths), 64))
    assert (tally.rows, tally.tokens, tally.padded_tokens) == (2 * len(dev), 2 * lengths.sum(), 2 * padded)
    # The path `auto` takes on this CPU: bf16 where it computes bf16 natively, else fp32.
    assert tally.tokens < tally.padded_tokens and tally.seconds > 0 and tally.precision == resolve_precision("auto", "cpu")


def test_imp_sparsity_is_identical_under_bf16(synthetic):
    reports = {}
    for precision in ("fp32", "bf16"):
        model, _, stats = _trained(synthetic, precision, [MagnitudePruning(0.6, schedule=Schedule(end=0.5, events=4))], epochs=2.0)
        zeros = {n: int((m.weight == 0).sum()) for n, m in prunable_linears(model).items()}
        reports[precision] = (stats.sparsity, zeros)
    assert reports["fp32"] == reports["bf16"]
    assert reports["bf16"][0]["sparsity"] == pytest.approx(0.6, abs=1e-3)


def test_speed_benchmark_smoke_writes_every_column(tmp_path):
    out = tmp_path / "speed.csv"
    assert rmc_main(["speed", "--task", "synthetic", "--model", "tiny", "--rows", "200", "--steps", "2",
                     "--repeats", "1", "--predict-rows", "40", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    train = table[table["stage"] == "train"]
    assert set(train["loop"]) == {"rmc", "bare"} and set(train["batching"]) == {"random", "grouped"}
    assert set(train["student"]) == {"teacher", "imp40"}
    assert (train["examples"] == 64).all() and (table["examples_per_s"] > 0).all()
    assert np.allclose(train[train["loop"] == "bare"]["ratio_to_bare"], 1.0)
    assert set(table[table["stage"] == "predict"]["precision"]) <= {"fp32", "bf16"}
    # MFU against this CPU's own matmul peak, on real and on padded tokens (padding is work too).
    assert (table["peak_flops"] > 0).all() and (table["padded_tokens"] >= table["tokens"]).all()
    assert ((table["mfu"] > 0) & (table["mfu"] <= table["mfu_padded"])).all()
    assert table["mfu_padded"].max() < 1.5  # a rate cannot far exceed the machine's own best
    assert not table["compiled"].any()


def test_the_cpu_features_are_read_from_the_kernels_flags(tmp_path):
    from rmc_core.machine_peak import cpu_features, feature_line, matmul_peak

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n\nprocessor\t: 1\nflags\t: fpu\n")
    found = cpu_features(info)
    assert found == {"avx2": True, "avx512f": True, "avx512_bf16": False, "amx_bf16": False, "amx_tile": False,
                     "avx512_vnni": True, "avx_vnni": False}
    assert feature_line(found).startswith("avx2 yes, avx512f yes, avx512_bf16 no")
    assert not any(cpu_features(tmp_path / "absent").values())
    assert matmul_peak("fp32", size=128, rounds=2, min_seconds=0.01) > 1e6  # any CPU does a MFLOP/s
