"""Which stages recompute after a change to each rmc_core module: the code half of every
cache key, stated here as a table and checked on edited copies of the package."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from rmc.tasks.code_digest import ROOT, Source
from rmc_core.evaluation import EVALUATIONS
from rmc_core.objectives.methods import METHODS

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

# Module touched -> stages whose cache key changes. A stage means one Prefect task; train[m]
# is the `train` stage for method m (the teacher and the sub-networks train as "vanilla").
RECOMPUTES: dict[str, set[str]] = {
    "__init__.py": set(),
    "artifact_layout.py": EVERY,
    "_arrays.py": {"difficulty", "evaluate[split_agreement]", "summarize", *SMOOTHED},
    "compression/__init__.py": set(),
    "compression/distilled.py": {"prepare_student[distilled]"},
    "compression/imp.py": TRAINING | {"prune_oneshot", "import_teacher"},  # an imported teacher's sparsity report
    "compression/masked.py": set(),  # no stage in this table trains a masked student
    "quantization.py": MODEL_STAGES | {"measure[inference]", "predict", "prepare_student[distilled]", "quantize"} | ATTACK,
    "compression/spd.py": set(),  # no stage in this table trains an SPD student
    "compression/theseus.py": {"train[vanilla|theseus]"},
    "pruned_bert.py": {"train[vanilla|structured]"},
    "compression/registry.py": TRAINING | {"prepare_student[distilled]", "train[teacher]", "train[vanilla|structured]",
                                           "train[vanilla|theseus]"},
    "compression/schedule.py": TRAINING | {"prune_oneshot", "train[vanilla|structured]"},
    "compression/structured.py": {"train[vanilla|structured]"},
    "config.py": MODEL_STAGES | {"predict", "prepare_data"} | QUERY,
    "costs.py": set(),
    "data/__init__.py": set(),
    "data/fingerprint.py": set(),  # a digest in the keys of the stages that read files, not their code
    "data/task_file.py": set(),  # resolved before the DAG: the resolved spec is an input
    "data/texts.py": MODEL_STAGES | {"predict", "measure[inference]", "prepare_base", "prepare_student[distilled]"} | ATTACK,
    "data/annotate.py": {"prepare_data"},  # read by the data sources alone
    "data/registry.py": DATA | {"measure[inference]"} | QUERY,
    "data/shortcut.py": DATA | QUERY,
    "data/sources.py": DATA | QUERY,
    "data/synthetic.py": DATA | QUERY,
    "devices.py": set(),
    "evaluation/__init__.py": set(),
    "evaluation/accuracy.py": {"evaluate[accuracy]", "summarize"},
    "evaluation/easy_hard.py": {"evaluate[easy_hard]", "summarize"},
    "evaluation/f_bias.py": {"evaluate[f_bias]", "summarize"},
    "evaluation/heuristics.py": {"evaluate[heuristics]", "summarize"},
    "evaluation/loyalty.py": {"evaluate[loyalty]", "summarize"},
    "evaluation/registry.py": EVALUATE | {"summarize", "measure[inference]", "report"} | QUERY,
    "evaluation/split_agreement.py": {"evaluate[split_agreement]", "summarize"},
    "evaluation/train_fit.py": {"evaluate[train_fit]", "summarize"},
    "evaluation/inference_cost.py": {"measure[inference]"},
    "evaluation/attack.py": ATTACK,
    "attack/__init__.py": set(),
    "attack/candidates.py": ATTACK,
    "attack/reference.py": ATTACK,
    "attack/similarity.py": ATTACK,
    "attack/textfooler.py": ATTACK,
    "attack/words.py": ATTACK,
    "evaluation/metrics.py": EVALUATE - {"evaluate[heuristics]", "evaluate[attack]"} | {"summarize"},
    "evaluation/statistics.py": {"evaluate[accuracy]", "measure[inference]", "summarize"} | ATTACK,
    "evaluation/tables.py": EVALUATE - {"evaluate[loyalty]", "evaluate[attack]", "evaluate[train_fit]"} | {"summarize"},
    "evaluation/uncertainty.py": {"summarize"},
    "export.py": set(),
    "model_card.py": set(),
    "model_spec.py": TRAINING | {"prepare_base", "prepare_student[distilled]", "import_teacher"},  # FAMILIES: IMP's architectures
    "models.py": MODEL_STAGES | {"measure[inference]", "predict", "prepare_base", "import_teacher", "prepare_student[distilled]",
                                 "quantize"} | ATTACK,
    "objectives/__init__.py": set(),
    "objectives/bias_model.py": {"bias_model"},
    "objectives/cartography.py": {"difficulty"},
    "objectives/difficulty.py": {"difficulty", "evaluate[split_agreement]", "summarize"},
    "objectives/known_bias.py": KNOWN_BIAS,
    "objectives/ood_upper.py": {"train[ood-upper]"},
    "objectives/losses.py": MODEL_STAGES | TARGETS,
    "objectives/methods.py": TRAINING | TARGETS | {"train[teacher]", "train[vanilla|structured]", "train[vanilla|theseus]"},
    "objectives/smoothing.py": SMOOTHED,
    "out_folder.py": set(),
    "overrides.py": set(),
    "pipeline.py": set(),
    "registry.py": set(),
    "report.py": {"report", "summarize"},  # the headline and verdict lines they log
    "report_plot.py": set(),
    "schema.py": EVERY - {"difficulty", "measure[inference]", "quantize"},
    "serve_policy.py": set(),
    "stages.py": EVERY,
    "store.py": EVERY,
    "training/__init__.py": set(),
    "training/batching.py": MODEL_STAGES,
    "training/dynamics.py": MODEL_STAGES - {"prune_oneshot"},
    "training/hooks.py": MODEL_STAGES | {"prepare_student[distilled]"},
    "training/loop.py": MODEL_STAGES,
    "training/precision.py": MODEL_STAGES | {"predict"} | ATTACK,
    "training/predict.py": MODEL_STAGES - {"prune_oneshot"} | {"measure[inference]", "predict"} | ATTACK,
    "training/stopping.py": MODEL_STAGES | {"predict"} | ATTACK,
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
    ("compression/imp.py", "PRUNED", TRAINING),
    ("compression/imp.py", "hold", {"prune_oneshot"}),
    ("compression/structured.py", "STRUCTURED", {"train[vanilla|structured]"}),
    ("compression/distilled.py", "DISTILLED", {"prepare_student[distilled]"}),
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
    path = copy / "rmc_core" / "training" / "loop.py"
    text = path.read_text().replace('"""One fine-tuning routine', '"""A reworded docstring. One fine-tuning routine')
    path.write_text(text + "\n# a comment\n")
    assert changed(baseline, copy) == set()


def test_a_stage_reached_through_a_local_name_is_not_a_dependency():
    """`train = store.table(...)` inside prepare_base names a local, not the train stage."""
    symbols, _ = Source().closure([("rmc_core.stages", "prepare_base")])
    assert ("rmc_core.stages", "train") not in symbols
