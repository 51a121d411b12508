"""Benchmark profiles: the paper's experiment (its Table 4; docs/method.md) as a list of runs.

cpu-small fits 2 CPU cores in under three hours by documented cuts, never by dropping a
method or a metric: 3,000 stratified training rows per task, two epochs for the teacher
and one for students, max length 128, one seed, a stratified 6,000-row HANS sample (1,000
per heuristic x label, 200 per subcase), and the cheap difficulty estimator (the trained
teacher pruned one-shot per matrix at 0.1-0.5, 0.25 epoch of recovery each). The full IMP
estimator runs on an 800-row training subset, where both fit, to measure the agreement of
the two; those two runs score a 3,000-row stratified dev sample and 600 HANS rows.
Measured on this machine: MiniLM-L6 trains at ~16 examples/s and predicts at ~100/s on
MNLI-length pairs, which puts the profile at about 2.5 hours. It runs students at 40 %
only, so it draws no Fig. 3.
paper is the paper's setting, for machines with GPUs and internet, plus Vanilla and RMC
students at 20/60/70 % on MNLI for Fig. 3 (HANS across sparsities).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rmc_core.compression.distilled_config import DistilledConfig
from rmc_core.compression.imp_config import ImpConfig
from rmc_core.compression.structured_config import StructuredConfig
from rmc_core.config import (
    AttackConfig,
    DataConfig,
    InferenceCostConfig,
    ModelSpec,
    RunConfig,
    StudentConfig,
    SubnetworkConfig,
    TrainConfig,
)
from rmc_core.data.registry import TASKS, load_task_data
from rmc_core.objectives.methods import compared_methods
from rmc_core.models import check_labels
from rmc_core.pipeline import seeded

ProfileName = Literal["cpu-small", "paper", "tiny"]

PROFILE_SETTINGS = {
    "cpu-small": "packaged all-MiniLM-L6-v2 teacher, 3,000 stratified training rows per task, teacher 2 epochs, "
                 "students 1 epoch, lr 5e-5, batch 32, max length 128, seed 0; MNLI dev-matched 9,815 rows, "
                 "HANS stratified 6,000 rows; QQP held-out 1,000 rows, PAWS-qqp 677 and PAWS-wiki 8,000; "
                 "difficulty from the teacher pruned one-shot per matrix at 0.1-0.5 with 0.25 epoch recovery; "
                 "IMP sub-networks (0.2-0.85) vs one-shot compared on an 800-row MNLI training subset "
                 "(scored on a 3,000-row stratified dev sample).",
    "paper": "bert-base-uncased, full MNLI/FEVER/QQP from the hub, 5 epochs, lr 2e-5, 3 seeds, IMP sub-networks at "
             "0.2-0.85, students at 40 % sparsity and MiniLM-L6.",
    "tiny": "test profile: a tiny random BERT on a few hundred rows of the shared data.",
}


class BenchRun(BaseModel):
    """One flow run of a benchmark, with the role it plays in the report."""

    model_config = ConfigDict(frozen=True)
    task: str
    role: Literal["pruned", "distilled", "structured", "estimator-imp", "estimator-oneshot", "sparsity-sweep"]
    seed: int
    config: RunConfig


def _runs(task: str, seed: int, data: DataConfig, teacher: ModelSpec, teacher_train: TrainConfig,
          student_train: TrainConfig, subnets: SubnetworkConfig, distilled_layers: int | None,
          distilled_model: ModelSpec | None) -> list[BenchRun]:
    common = {"task": task, "data": data, "teacher": teacher, "teacher_train": teacher_train, "subnetworks": subnets}
    pruned = seeded(RunConfig(**common, student=StudentConfig(compression=ImpConfig(sparsity=0.4), train=student_train),
                              methods=compared_methods()), seed)
    distilled = seeded(RunConfig(**common, student=StudentConfig(compression=DistilledConfig(num_layers=distilled_layers or 3, model=distilled_model),
                                                   train=student_train),
                                 methods=("vanilla", "rmc")), seed)
    return [BenchRun(task=task, role="pruned", seed=seed, config=pruned),
            BenchRun(task=task, role="distilled", seed=seed, config=distilled)]


def _estimator_runs(base: RunConfig, rows: int, imp_train: TrainConfig, seed: int,
                    dev_rows: int | None = None, ood_rows: int | None = None) -> list[BenchRun]:
    """The same small training subset scored by both estimators (vanilla students only:
    the point of these runs is the difficulty tables). `dev_rows` (stratified) bounds the
    dev rows every sub-network predicts to measure its split against the annotated one."""
    data = base.data.model_copy(update={"max_train": rows, "max_dev": dev_rows or base.data.max_dev,
                                        "max_ood": ood_rows or base.data.max_ood})
    imp = base.subnetworks.model_copy(update={"estimator": "imp", "sparsities": (0.2, 0.4, 0.6, 0.7, 0.85), "train": imp_train})
    runs = []
    for role, sub in (("estimator-imp", imp), ("estimator-oneshot", base.subnetworks)):
        cfg = base.model_copy(update={"data": data, "subnetworks": sub, "methods": ("vanilla",)})
        runs.append(BenchRun(task=base.task, role=role, seed=seed, config=RunConfig.model_validate(cfg.model_dump())))
    return runs


def _sweep_runs(pruned: BenchRun, sparsities: tuple[float, ...]) -> list[BenchRun]:
    """Vanilla and RMC students at more sparsities, for Fig. 3 (the 40 % pair is in `pruned`)."""
    runs = []
    for s in sparsities:
        student = pruned.config.student.model_copy(update={"compression": ImpConfig(sparsity=s)})
        cfg = pruned.config.model_copy(update={"student": student, "methods": ("vanilla", "rmc")})
        runs.append(BenchRun(task=pruned.task, role="sparsity-sweep", seed=pruned.seed,
                             config=RunConfig.model_validate(cfg.model_dump())))
    return runs


def _structured_run(pruned: BenchRun, heads: float) -> BenchRun:
    """Paper Table 3: the teacher's architecture with a fraction of its attention heads
    pruned during fine-tuning, Vanilla and RMC (same teacher and sub-networks as `pruned`)."""
    student = pruned.config.student.model_copy(update={"compression": StructuredConfig(heads=heads)})
    cfg = pruned.config.model_copy(update={"student": student, "methods": ("vanilla", "rmc")})
    return BenchRun(task=pruned.task, role="structured", seed=pruned.seed, config=RunConfig.model_validate(cfg.model_dump()))


# Dev rows attacked per model in the Table 4 (pruned) runs of each profile: Xu et al.'s
# robustness column, at a cost each profile can carry (a tiny model's rows are for shape).
ATTACK_ROWS = {"paper": 1000, "cpu-small": 200, "tiny": 6}


def with_attack(runs: list[BenchRun], profile: ProfileName) -> list[BenchRun]:
    attacked = AttackConfig(examples=ATTACK_ROWS[profile], candidates=5 if profile == "tiny" else 50)
    return [r.model_copy(update={"config": r.config.model_copy(update={"attack": attacked})}) if r.role == "pruned" else r
            for r in runs]


def bench_runs(profile: ProfileName, data_root: Path) -> list[BenchRun]:
    """Every run of a profile, validated, its Table 4 runs attacked (`ATTACK_ROWS`)."""
    return with_attack(_profile_runs(profile, data_root), profile)


def _profile_runs(profile: ProfileName, data_root: Path) -> list[BenchRun]:
    if profile == "paper":
        train = TrainConfig(epochs=5, lr=2e-5, batch_size=32, max_length=128)
        subnets = SubnetworkConfig(sparsities=(0.2, 0.4, 0.6, 0.7, 0.85), estimator="imp", train=train)
        runs = []
        for seed in (0, 1, 2):
            for task in ("mnli", "fever", "qqp"):
                data = DataConfig(source="hub" if task != "fever" else "local", data_root=data_root, seed=seed)
                runs += _runs(task, seed, data, ModelSpec(source="bert-base-uncased"), train, train, subnets,
                              None, ModelSpec(source="nreimers/MiniLM-L6-H384-uncased"))
        mnli_pruned = [r for r in runs if r.task == "mnli" and r.role == "pruned"]
        return (runs + [s for r in mnli_pruned for s in _sweep_runs(r, (0.2, 0.6, 0.7))]
                + [_structured_run(r, 28 / 144) for r in mnli_pruned])
    if profile == "tiny":
        tiny = ModelSpec(source="tiny")
        train = TrainConfig(epochs=1, lr=2e-3, batch_size=32, max_length=48)
        subnets = SubnetworkConfig(sparsities=(0.1, 0.3, 0.5), estimator="oneshot", recovery_epochs=0.5, train=train)
        runs = []
        for task in ("mnli", "qqp"):
            data = DataConfig(data_root=data_root, max_train=200, max_dev=120, max_ood=120)
            runs += _runs(task, 0, data, tiny, train, train, subnets, 1, None)
        imp_train = train.model_copy(update={"epochs": 2})  # IMP prunes in steps across epochs
        runs += _estimator_runs(runs[0].config, 150, imp_train, 0) + _sweep_runs(runs[0], (0.2,)) + [_structured_run(runs[0], 0.25)]
        quick = InferenceCostConfig(rows=16, repeats=2)  # a tiny model's timings are for shape, not for reading
        return [r.model_copy(update={"config": r.config.model_copy(update={"inference": quick})}) for r in runs]
    teacher_train = TrainConfig(epochs=2, lr=5e-5, batch_size=32, max_length=128)
    student_train = TrainConfig(epochs=1, lr=5e-5, batch_size=32, max_length=128)
    subnets = SubnetworkConfig(sparsities=(0.1, 0.2, 0.3, 0.4, 0.5), estimator="oneshot", recovery_epochs=0.25,
                               train=student_train)
    runs = []
    for task in ("mnli", "qqp"):
        data = DataConfig(data_root=data_root, max_train=3000, max_ood=6000 if task == "mnli" else None)
        runs += _runs(task, 0, data, ModelSpec(source="minilm"), teacher_train, student_train, subnets, 3, None)
    return (runs + _estimator_runs(runs[0].config, 800, student_train, 0, dev_rows=3000, ood_rows=600)
            + [_structured_run(runs[0], 0.2)])


PAPER_TABLE4 = {
    "teacher": {"mnli_dev": 84.2, "hans": 59.8, "qqp_dev": 90.9, "paws-wiki": 48.9, "paws-qqp": 34.7},
    "imp40-vanilla": {"mnli_dev": 84.0, "hans": 54.7, "qqp_dev": 90.5, "paws-wiki": 46.6, "paws-qqp": 32.4, "avg_f_bias": 1.101},
    "imp40-distil": {"mnli_dev": 84.1, "hans": 56.2, "qqp_dev": 90.5, "paws-wiki": 47.3, "paws-qqp": 33.2, "avg_f_bias": 1.063},
    "imp40-smooth": {"mnli_dev": 84.2, "hans": 56.5, "qqp_dev": 90.7, "paws-wiki": 47.2, "paws-qqp": 33.8, "avg_f_bias": 1.036},
    "imp40-focal": {"mnli_dev": 84.0, "hans": 56.7, "qqp_dev": 90.7, "paws-wiki": 46.2, "paws-qqp": 32.1, "avg_f_bias": 1.054},
    "imp40-jtt": {"mnli_dev": 83.8, "hans": 56.3, "qqp_dev": 90.4, "paws-wiki": 47.3, "paws-qqp": 33.7, "avg_f_bias": 1.057},
    "imp40-rmc": {"mnli_dev": 84.2, "hans": 58.6, "qqp_dev": 90.4, "paws-wiki": 47.6, "paws-qqp": 34.3, "avg_f_bias": 0.990},
    "distilled-vanilla": {"mnli_dev": 83.1, "hans": 51.4, "qqp_dev": 89.9, "paws-wiki": 46.8, "paws-qqp": 31.0, "avg_f_bias": 1.162},
    "distilled-rmc": {"mnli_dev": 83.7, "hans": 57.8, "qqp_dev": 90.5, "paws-wiki": 47.0, "paws-qqp": 33.4, "avg_f_bias": 1.041},
}


# Paper Table 3 (MNLI, bert-base): 28 of 144 heads pruned by importance, three versions.
PAPER_TABLE3 = {
    "teacher": {"mnli_dev": 84.2, "hans": 59.8},
    "116-head v1": {"mnli_dev": 84.1, "hans": 55.5, "f_bias": 1.172},
    "116-head v2": {"mnli_dev": 84.2, "hans": 53.7, "f_bias": 1.250},
    "116-head v3": {"mnli_dev": 84.0, "hans": 55.3, "f_bias": 1.176},
}


def check(profile: ProfileName, data_root: Path) -> list[tuple[str, str]]:
    """Validate every input of a profile without training: each distinct model source and
    each distinct task dataset once. Returns (input, problem) for each that fails."""
    runs = bench_runs(profile, data_root)
    problems = []
    models = {(s.source, run.task): s for run in runs for s in (run.config.teacher, getattr(run.config.student.compression, "model", None)) if s}
    for (source, task), spec in sorted(models.items()):
        try:
            check_labels(spec, TASKS[task].labels, "model")
        except Exception as err:  # noqa: BLE001 - every failure is reported, none hidden
            problems.append((f"model {source}", f"{type(err).__name__}: {str(err).splitlines()[0]}"))
    datasets = {(run.task, run.config.data.model_dump_json()): run.config.data for run in runs}
    for (task, _), data in datasets.items():
        try:
            load_task_data(task, data)
        except Exception as err:  # noqa: BLE001
            problems.append((f"data {task} ({data.source})", f"{type(err).__name__}: {str(err).splitlines()[0]}"))
    return sorted(set(problems))
