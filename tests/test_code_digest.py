"""Which stages recompute after a change to each rmc_core module: the code half of every
cache key, stated here as a table and checked on edited copies of the package."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from rmc.tasks.code_digest import ROOT, Source
from rmc_core.methods import METHODS

TRAINING = {f"train[{m}]" for m in METHODS}
TARGETS = {f"student_inputs[{m}]" for m in METHODS if METHODS[m].targets is not None}
MODEL_STAGES = TRAINING | {"prune_oneshot"}
EVERY = ({"prepare_data", "prepare_base", "truncate_base", "predict", "difficulty", "evaluate", "summarize", "measure_inference"}
         | MODEL_STAGES | TARGETS)
DATA = {"prepare_data", "prepare_base", "evaluate", "summarize"}

# Module touched -> stages whose cache key changes. A stage means one Prefect task; train[m]
# is the `train` stage for method m (the teacher and the sub-networks train as "vanilla").
RECOMPUTES: dict[str, set[str]] = {
    "__init__.py": set(),
    "_arrays.py": {"difficulty", "evaluate", "student_inputs[rmc]", "student_inputs[smooth]", "train[rmc]", "train[smooth]"},
    "batching.py": MODEL_STAGES,
    "config.py": MODEL_STAGES | {"predict", "prepare_base", "prepare_data", "measure_inference"},
    "costs.py": set(),
    "data/__init__.py": set(),
    "data/annotate.py": DATA,
    "data/registry.py": DATA,
    "data/sources.py": DATA,
    "data/synthetic.py": DATA,
    "devices.py": set(),
    "difficulty.py": {"difficulty", "evaluate"},
    "evaluation.py": {"evaluate", "summarize"},
    "export.py": set(),
    "inference_cost.py": {"measure_inference"},
    "losses.py": MODEL_STAGES | TARGETS,
    "methods.py": TRAINING | TARGETS,
    "metrics.py": {"evaluate", "summarize"},
    "models.py": MODEL_STAGES | {"predict", "prepare_base", "truncate_base", "measure_inference"},
    "overrides.py": set(),
    "pipeline.py": set(),
    "precision.py": MODEL_STAGES | {"predict"},
    "pruned_bert.py": MODEL_STAGES,
    "pruning.py": MODEL_STAGES,
    "report.py": set(),
    "schema.py": EVERY - {"truncate_base", "difficulty"},
    "smoothing.py": {"student_inputs[rmc]", "student_inputs[smooth]", "train[rmc]", "train[smooth]"},
    "stages.py": EVERY,
    "statistics.py": {"summarize", "measure_inference"},
    "stopping.py": MODEL_STAGES | {"predict"},
    "store.py": EVERY,
    "structured.py": MODEL_STAGES,
    "training.py": MODEL_STAGES | {"predict", "measure_inference"},
    "uncertainty.py": {"summarize"},
}

# One definition touched -> stages whose key changes: a loss retrains only the students
# trained with it, a metric re-evaluates without retraining anything.
ONE_DEFINITION: list[tuple[str, str, set[str]]] = [
    ("losses.py", "distillation_loss", {"train[distil]", "train[smooth]", "train[rmc]",
                                        "student_inputs[distil]", "student_inputs[smooth]", "student_inputs[rmc]"}),
    ("losses.py", "focal_loss", {"train[focal]"}),
    ("losses.py", "cross_entropy", {"train[vanilla]", "prune_oneshot"}),
    ("methods.py", "RMC", {"train[rmc]", "student_inputs[rmc]"}),
    ("smoothing.py", "smooth_probs", {"train[smooth]", "train[rmc]", "student_inputs[smooth]", "student_inputs[rmc]"}),
    ("difficulty.py", "difficulty_scores", {"difficulty"}),
    ("evaluation.py", "heuristic_breakdown", {"evaluate"}),
    ("metrics.py", "relative_bias", {"evaluate", "summarize"}),
    ("statistics.py", "difference_interval", {"summarize"}),
    ("statistics.py", "median_interval", {"measure_inference"}),
]


def stage_digests(root: Path) -> dict[str, str]:
    source = Source(root)
    stages = {name: (name, None) for name in EVERY if "[" not in name}
    stages |= {f"{fn}[{m}]": (fn, m) for fn in ("train", "student_inputs") for m in METHODS}
    return {name: source.digest(("rmc_core.stages", fn), method) for name, (fn, method) in stages.items() if name in EVERY}


def touch(path: Path, only: str | None = None) -> None:
    """Change the code (not a docstring) of every top-level definition, or of one."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
            t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        if only is not None and only not in names:
            continue
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            node.body.append(ast.Pass())
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            node.value = ast.Subscript(ast.List([node.value], ast.Load()), ast.Constant(0), ast.Load())
    path.write_text(ast.unparse(ast.fix_missing_locations(tree)))


@pytest.fixture(scope="module")
def baseline() -> dict[str, str]:
    return stage_digests(ROOT)


@pytest.fixture
def copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "rmc_core", tmp_path / "rmc_core", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def changed(baseline: dict[str, str], root: Path) -> set[str]:
    return {name for name, d in stage_digests(root).items() if d != baseline[name]}


def test_the_table_lists_every_core_module():
    modules = {p.relative_to(ROOT / "rmc_core").as_posix() for p in (ROOT / "rmc_core").rglob("*.py")}
    assert modules == set(RECOMPUTES)


@pytest.mark.parametrize("module", sorted(RECOMPUTES))
def test_touching_a_module_recomputes_exactly_the_stages_that_use_it(module, baseline, copy):
    touch(copy / "rmc_core" / module)
    assert changed(baseline, copy) == RECOMPUTES[module]


@pytest.mark.parametrize("module, name, stages", ONE_DEFINITION, ids=[f"{m}:{n}" for m, n, _ in ONE_DEFINITION])
def test_touching_one_definition_recomputes_only_its_users(module, name, stages, baseline, copy):
    touch(copy / "rmc_core" / module, only=name)
    assert changed(baseline, copy) == stages


def test_docstrings_and_comments_are_not_code(baseline, copy):
    path = copy / "rmc_core" / "training.py"
    text = path.read_text().replace('"""One fine-tuning routine', '"""A reworded docstring. One fine-tuning routine')
    path.write_text(text + "\n# a comment\n")
    assert changed(baseline, copy) == set()


def test_a_stage_reached_through_a_local_name_is_not_a_dependency():
    """`train = store.table(...)` inside prepare_base names a local, not the train stage."""
    symbols, _ = Source().closure([("rmc_core.stages", "prepare_base")])
    assert ("rmc_core.stages", "train") not in symbols
