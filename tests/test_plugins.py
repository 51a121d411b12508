"""The toolkit is open: a compression, an evaluation and a difficulty estimator, each
written in one file outside rmc_core (tests/plugins/), run through the Prefect flow, show
up in the run form and the report, are cached like the built-ins, and a change to any of
them (or to a helper module of theirs) recomputes only its stages."""

from __future__ import annotations

import ast
import importlib
import shutil
import sys

import numpy as np
import pytest

from rmc.tasks.code_digest import Source
from rmc_core.compression import COMPRESSIONS
from rmc_core.config import StudentConfig, SubnetworkConfig
from rmc_core.evaluation import EVALUATIONS
from rmc_core.objectives.estimators import ESTIMATORS
from rmc_core.report import markdown_report
from rmc_core.store import Store
from tests.conftest import FAST, TINY_SPARSITIES, tiny_run_config

PLUGINS = {"random_pruning": (COMPRESSIONS, "random"), "confidence": (EVALUATIONS, "confidence"),
           "margin": (ESTIMATORS, "margin")}




@pytest.fixture
def plugins():
    """Both throw-away extensions registered for one test, removed afterwards."""
    loaded = [importlib.import_module(f"tests.plugins.{name}") for name in PLUGINS]
    yield loaded
    for name, (registry, key) in PLUGINS.items():
        registry.pop(key, None)
        sys.modules.pop(f"tests.plugins.{name}", None)


def plugin_config(threshold: float = 0.34, **overrides):
    return tiny_run_config(student=StudentConfig.model_validate({"compression": {"kind": "random", "sparsity": 0.4},
                                                                 "train": FAST.model_dump()}),
                           subnetworks=SubnetworkConfig(sparsities=TINY_SPARSITIES, train=FAST, estimator="margin"),
                           methods=("vanilla", "rmc"), evaluations=(*EVALUATIONS,),
                           evaluation_settings={"confidence": {"threshold": threshold}}, **overrides)


def test_a_registered_compression_evaluation_and_estimator_run_through_the_flow_and_the_report(plugins, prefect_api,
                                                                                              tmp_path):
    from rmc.flows.rmc_flow import RmcParameters, rmc_flow

    params = RmcParameters(config=plugin_config(), store_root=str(tmp_path / "store"))
    summary = rmc_flow(params)
    tables = Store(tmp_path / "store").tables(summary.report)
    results = tables["results"].set_index("model")
    assert list(results.index) == ["teacher", "rand40-vanilla", "rand40-rmc"]
    assert list(results.loc["rand40-rmc", ["role", "compression", "sparsity", "method"]]) == ["student", "random", 0.4, "rmc"]
    assert results.loc["rand40-rmc", "achieved_sparsity"] == pytest.approx(0.4, abs=1e-3)
    assert results["dev_confidence"].between(1 / 3, 1).all()
    # Its own setting (a threshold of 0.34, not its default 0.9) reached it, and is part of its key.
    teacher_dev = Store(tmp_path / "store").table(summary.artifacts["predict-teacher"], "dev").drop(columns="loss").to_numpy()
    assert results.loc["teacher", "confident_share"] == pytest.approx((teacher_dev.max(axis=1) >= 0.34).mean())
    assert {"evaluate-confidence", "train-rand40-rmc"} <= set(summary.computed)
    assert "| confidence |" in markdown_report(tables, "synthetic")  # the headline table takes its declared label
    assert "overconfidence" in set(tables["results_interval"]["metric"])  # a declared direction: intervals over seeds

    # The estimator scored every row from the teacher's predictions, and no sub-network trained.
    assert not [n for n in summary.computed if n.startswith("train-subnet")]
    store = Store(tmp_path / "store")
    top = np.sort(store.table(summary.artifacts["predict-teacher"], "dev").drop(columns="loss").to_numpy(), axis=1)
    scored = store.table(summary.artifacts["difficulty"], "dev")["variance"].to_numpy()
    np.testing.assert_allclose(scored, 1 - (top[:, -1] - top[:, -2]))

    schema = RmcParameters.model_json_schema()
    form = schema["properties"]
    assert "random" in form["compression"]["enum"] and "random" in form["compression_settings"]["properties"]
    text = str(schema)
    assert "'confidence'" in text and "'margin'" in text  # the run form offers all three

    again = rmc_flow(params)
    assert again.computed == [] and again.report == summary.report
    other = rmc_flow(RmcParameters(config=plugin_config(threshold=0.99), store_root=params.store_root))
    assert {n for n in other.computed if not n.startswith(("report", "summarize", "measure"))} == {"evaluate-confidence"}


def _touch_every_function(path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            node.body.append(ast.Pass())
    path.write_text(ast.unparse(ast.fix_missing_locations(tree)))


@pytest.mark.parametrize("name, touched", [(name, name) for name in PLUGINS] + [("random_pruning", "random_masks")])
def test_a_change_to_a_plugin_or_its_helper_recomputes_only_its_own_stages(name, touched, tmp_path, monkeypatch):
    """The code half of the cache keys follows a plugin's registration to its own file and
    to its helper modules (random_masks.py: outside rmc_core, imported by the plugin)."""
    package = tmp_path / f"copy_of_{name}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for file in ("random_pruning", "random_masks", "confidence", "margin"):
        shutil.copy(f"tests/plugins/{file}.py", package / f"{file}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry, key = PLUGINS[name]
    importlib.import_module(f"copy_of_{name}.{name}")
    try:
        stages = {
            "train[vanilla|random]": ("train", {"method": "vanilla", "compression": "random"}),
            "train[vanilla|pruned]": ("train", {"method": "vanilla", "compression": "pruned"}),
            "train[teacher]": ("train", {"method": "vanilla", "compression": None}),
            "evaluate[confidence]": ("evaluate", {"evaluation": "confidence"}),
            "evaluate[accuracy]": ("evaluate", {"evaluation": "accuracy"}),
            "summarize[built-in]": ("summarize", {"evaluations": ("accuracy", "f_bias")}),
            "summarize[with confidence]": ("summarize", {"evaluations": ("accuracy", "confidence")}),
            "predict": ("predict", {}),
            "difficulty[margin]": ("difficulty", {"estimator": "margin"}),
            "difficulty[imp]": ("difficulty", {"estimator": "imp"}),
        }
        before = {s: Source().digest(("rmc_core.stages", fn), keys) for s, (fn, keys) in stages.items()}
        _touch_every_function(package / f"{touched}.py")
        after = {s: Source().digest(("rmc_core.stages", fn), keys) for s, (fn, keys) in stages.items()}
    finally:
        registry.pop(key, None)
        for module in [m for m in sys.modules if m.startswith(f"copy_of_{name}")]:
            sys.modules.pop(module)
    changed = {s for s in stages if before[s] != after[s]}
    assert changed == {"random_pruning": {"train[vanilla|random]"}, "margin": {"difficulty[margin]"},
                       "confidence": {"evaluate[confidence]", "summarize[with confidence]"}}[name]
