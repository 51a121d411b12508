"""The code half of every cache key (tasks/code_digest.py), checked as properties: every
definition a stage runs is in its key (run with a profiler), a module no stage imports
changes no key, a plugin's helper changes its plugin's stages only (tests/test_plugins.py),
and a loss, a metric or a spec changes only the stages that use it."""

from __future__ import annotations

import ast
import inspect
import shutil
import sys
from pathlib import Path

import pytest

from rmc.tasks.code_digest import PACKAGE, ROOT, Source, imported_names, stage_symbols
from rmc_core import pipeline
from rmc_core.config import StudentConfig
from rmc_core.store import Store
from rmc_core.evaluation import EVALUATIONS
from rmc_core.objectives.methods import METHODS
from tests.conftest import FAST, tiny_run_config

# train[m]: a student of method m under IMP (the sub-networks train as train[vanilla]);
# train[teacher]: no compression; train[vanilla|structured]: a structured-pruning student;
# train[vanilla|theseus]: a module-replacing student.
TRAINING = {f"train[{m}]" for m in METHODS}
TARGETS = {f"student_inputs[{m}]" for m in METHODS if METHODS[m].targets is not None}
MODEL_STAGES = TRAINING | {"train[teacher]", "train[vanilla|structured]", "train[vanilla|theseus]", "prune_oneshot"}
EVALUATE = {f"evaluate[{e}]" for e in EVALUATIONS if EVALUATIONS[e].measure is None}
# The stages that query each model again (the adversarial attack).
QUERY = {f"query[{e}]" for e in EVALUATIONS if EVALUATIONS[e].query is not None}
# The attack's own stages: the model queried, its evaluation, and the summary whose
# evaluations include it (the spec's query reaches the model loading and prediction code).
ATTACK = QUERY | {"evaluate[attack]", "summarize"}
EVERY = ({"prepare_data", "prepare_base", "import_teacher", "prepare_student[distilled]", "predict", "quantize", "difficulty", "bias_model", "report",
          "summarize", "measure[inference]"} | MODEL_STAGES | TARGETS | EVALUATE | QUERY)
# The students whose targets are the teacher's probabilities smoothed (Eq. 2).
SMOOTHED = {f"{stage}[{m}]" for m in ("smooth", "smooth-matched", "rmc") for stage in ("train", "student_inputs")}
# The students of the known-bias methods (a bias-only model's products as their targets).
KNOWN_BIAS = {f"{stage}[{m}]" for m in ("poe", "reweight", "confreg") for stage in ("train", "student_inputs")}
# The base and a prepared student read the label names from the data artifact, not the registry;
# the report receives the task (a declared task's spec) and names it.
DATA = {"prepare_data", "bias_model", "summarize", "report"} | EVALUATE
# Each stage's function and the registry keys its inputs choose.
STAGES: dict[str, tuple[str, dict[str, str | None]]] = {
    **{name: (name, {}) for name in EVERY if "[" not in name},
    **{f"train[{m}]": ("train", {"method": m, "compression": "pruned"}) for m in METHODS},
    **{f"student_inputs[{m}]": ("student_inputs", {"method": m}) for m in METHODS if METHODS[m].targets is not None},
    "train[teacher]": ("train", {"method": "vanilla", "compression": None}),
    "train[vanilla|structured]": ("train", {"method": "vanilla", "compression": "structured"}),
    "train[vanilla|theseus]": ("train", {"method": "vanilla", "compression": "theseus"}),
    "prepare_student[distilled]": ("prepare_student", {"compression": "distilled"}),
    **{f"evaluate[{e}]": ("evaluate", {"evaluation": e}) for e in EVALUATIONS if EVALUATIONS[e].measure is None},
    "summarize": ("summarize", {"evaluations": tuple(e for e in EVALUATIONS if EVALUATIONS[e].measure is None)}),
    "measure[inference]": ("measure_models", {"evaluation": "inference"}),
    **{f"query[{e}]": ("query_model", {"evaluation": e}) for e in EVALUATIONS if EVALUATIONS[e].query is not None},
}

# One definition touched -> stages whose key changes: a loss retrains only the students
# trained with it, a metric re-evaluates without retraining anything.
ONE_DEFINITION: list[tuple[str, str, set[str]]] = [
    ("objectives/losses.py", "distillation_loss", {"train[distil]", "student_inputs[distil]", *SMOOTHED}),
    ("objectives/losses.py", "focal_loss", {"train[focal]"}),
    ("objectives/losses.py", "cross_entropy", {"train[vanilla]", "train[teacher]", "train[vanilla|structured]",
                                               "train[vanilla|theseus]", "prune_oneshot"}),
    ("objectives/methods.py", "RMC", {"train[rmc]", "student_inputs[rmc]"}),
    ("objectives/smoothing.py", "smooth_probs", SMOOTHED),
    ("objectives/difficulty.py", "difficulty_scores", {"difficulty"}),
    ("compression/imp_config.py", "PRUNED", TRAINING),
    ("compression/imp.py", "hold", {"prune_oneshot"}),
    ("compression/structured_config.py", "STRUCTURED", {"train[vanilla|structured]"}),
    ("compression/distilled_config.py", "DISTILLED", {"prepare_student[distilled]"}),
    ("evaluation/tables.py", "heuristic_breakdown", {"evaluate[heuristics]", "summarize"}),
    ("evaluation/loyalty.py", "LOYALTY", {"evaluate[loyalty]", "summarize"}),
    ("evaluation/metrics.py", "relative_bias", {"evaluate[f_bias]", "summarize"}),
    ("evaluation/statistics.py", "difference_interval", {"summarize"}),
    ("evaluation/statistics.py", "median_interval", {"measure[inference]"}),
]


def stage_digests(root: Path) -> dict[str, str]:
    source = Source(root)
    return {name: source.digest(("rmc_core.stages", fn), keys) for name, (fn, keys) in STAGES.items()}


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


def imported_by_stages(source: Source) -> set[str]:
    """The rmc_core modules rmc_core.stages imports, directly or through other modules (at
    their top or inside a function)."""
    seen, todo = set(), ["rmc_core.stages"]
    while todo:
        name = todo.pop()
        module = source.module(name)
        if name in seen or module is None:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        imports = imported_names(list(ast.walk(module.tree)), module.package).values()
        todo += parents + [m for m, _ in imports if m.split(".")[0] == PACKAGE]
        todo += [f"{m}.{a}" for m, a in imports if a and source.module(f"{m}.{a}") is not None]
    return seen


UNREACHED = sorted(m for m in Source().package_modules() if m not in imported_by_stages(Source()))


def test_the_stages_import_most_of_the_package_and_not_its_edges():
    assert {"rmc_core.pipeline", "rmc_core.experiment", "rmc_core.out_folder", "rmc_core.export"} <= set(UNREACHED)
    assert "rmc_core.objectives.losses" not in UNREACHED and "rmc_core.evaluation.metrics" not in UNREACHED


@pytest.mark.parametrize("module", UNREACHED)
def test_a_module_no_stage_imports_changes_no_key(module, baseline, copy):
    path = copy.joinpath(*module.split("."))
    touch(path / "__init__.py" if path.is_dir() else path.with_suffix(".py"))
    assert changed(baseline, copy) == set()


@pytest.mark.parametrize("module, name, stages", ONE_DEFINITION, ids=[f"{m}:{n}" for m, n, _ in ONE_DEFINITION])
def test_touching_one_definition_recomputes_only_its_users(module, name, stages, baseline, copy):
    touch(copy / "rmc_core" / module, only=name)
    assert changed(baseline, copy) == stages


def test_docstrings_and_comments_are_not_code(baseline, copy):
    path = copy / "rmc_core" / "training" / "loop.py"
    text = path.read_text().replace('"""One fine-tuning routine', '"""A reworded docstring. One fine-tuning routine')
    path.write_text(text + "\n# a comment\n")
    assert changed(baseline, copy) == set()


def test_a_stage_reached_through_a_local_name_is_not_a_dependency():
    """`train = store.table(...)` inside prepare_base names a local, not the train stage."""
    symbols, _ = Source().closure([("rmc_core.stages", "prepare_base")])
    assert ("rmc_core.stages", "train") not in symbols


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> list[tuple[str, dict, set[tuple[str, str]]]]:
    """A tiny run with four methods (two with per-row targets, one with a bias-only model),
    int8 students and every evaluation, each stage run under a profiler: the stage, its
    inputs, and every rmc_core definition whose code ran while it did (methods count as
    their class, nested functions as the function around them)."""
    files = {str(ROOT.joinpath(*m.split("."))) + suffix: m for m in Source().package_modules()
             for suffix in (".py", "/__init__.py")}
    calls = []

    def call(stage, *args, **kwargs):
        ran: set[tuple[str, str]] = set()

        def profile(frame, event, arg) -> None:
            if event == "call" and (module := files.get(frame.f_code.co_filename)):
                top = frame.f_code.co_qualname.split(".")[0]
                if not top.startswith("<"):  # module-level code and lambdas of a module-level spec
                    ran.add((module, top))

        sys.setprofile(profile)
        try:
            result = stage(*args, **kwargs)
        finally:
            sys.setprofile(None)
        bound = inspect.signature(stage).bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append((stage, dict(bound.arguments), ran))
        return result

    cfg = tiny_run_config(methods=("vanilla", "distil", "rmc", "poe"),
                          student=StudentConfig(train=FAST, quantize="dynamic-int8"))
    pipeline.run(cfg, Store(tmp_path_factory.mktemp("profiled")), ["cpu"], call=call)
    return calls


def test_every_definition_a_stage_runs_is_in_its_key(executed):
    """Soundness of the cache: code a stage ran but its key does not cover would give a
    stale cache hit after an edit."""
    missing = {}
    for stage, inputs, ran in executed:
        covered = set(stage_symbols(stage.__module__, stage.__name__, inputs))
        if ran - covered:
            missing[stage.__name__] = sorted(ran - covered)
    assert not missing, missing
    ran = {symbol for _, _, r in executed for symbol in r}
    assert ("rmc_core.training.loop", "fine_tune") in ran and ("rmc_core.objectives.losses", "distillation_loss") in ran
    assert len(ran) > 60  # the profiler saw the code run, not only the stages' own functions
    assert {s.__name__ for s, _, _ in executed} >= {"prepare_data", "train", "predict", "difficulty", "student_inputs",
                                                    "bias_model", "quantize", "evaluate", "report", "summarize"}
