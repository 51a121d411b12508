"""The committed experiment configurations stay valid and say what the docs say they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmc_core.overrides import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_committed_config_validates(path):
    load_config(path)


def test_cpu_medium_is_the_documented_experiment():
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu-medium-mnli.json")
    assert cfg.task == "mnli" and cfg.data.source == "local"
    assert (cfg.data.max_train, cfg.data.max_dev, cfg.data.max_ood) == (None, None, None)  # full 9k, dev, HANS
    assert cfg.student.compression.kind == "pruned" and cfg.student.compression.sparsity == 0.4 and cfg.student.train.epochs >= 2
    assert set(cfg.methods) == {"vanilla", "distil", "smooth", "rmc"} and len(cfg.seeds) >= 3
    assert cfg.subnetworks.estimator == "oneshot" and len(cfg.subnetworks.sparsities) == 5


def test_the_shortcut_testbed_is_mnli_with_an_injected_shortcut():
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "shortcut-mnli.json")
    assert cfg.task == "mnli" and cfg.data.shortcut_strength == 0.7 and cfg.data.max_train is None
    assert cfg.subnetworks.estimator == "oneshot" and len(cfg.subnetworks.sparsities) == 5 and len(cfg.seeds) >= 3
    assert {"vanilla", "smooth-matched", "rmc"} <= set(cfg.methods)
