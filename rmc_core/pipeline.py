"""RMC end to end, for one validated config: the DAG written once.

`run` wires the stages of `rmc_core.stages`. It takes a `call` hook that executes one
stage: by default a plain function call (pure Python, no orchestration); the Prefect flow
passes a hook that submits the stage as a cached Prefect task and gets futures back, so
the pure pipeline and the flow are the same DAG, not two copies of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel

from rmc_core import stages
from rmc_core.compression import CompressionConfig, spec_of
from rmc_core.compression.imp_config import ImpConfig
from rmc_core.config import RunConfig, TrainConfig
from rmc_core.data.fingerprint import files_digest, model_digest
from rmc_core.data.registry import (
    TASKS,
    TaskHandle,
    TaskSpec,
    check_sources,
    local_files,
    ood_names,
    task_spec,
)
from rmc_core.data.task_file import FileTask, resolve
from rmc_core.devices import assign_devices, check_devices
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import active, settings_of
from rmc_core.model_spec import FAMILIES
from rmc_core.models import check_fine_tuned, check_fits_in_memory, check_labels, encoder_config
from rmc_core.objectives.bias_model import PAIR_ONLY
from rmc_core.objectives.estimators import ESTIMATORS, trained_by
from rmc_core.objectives.methods import BIAS_PRODUCTS, METHODS, UPPER_BOUND, select
from rmc_core.store import Ref, Store, ensure_writable
from rmc_core.training.precision import resolve_precision

Call = Callable[..., Any]


def direct(stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return stage(*args, **kwargs)


_PREFLIGHTED: set[tuple[Any, ...]] = set()


def preflight(cfg: RunConfig, store: Store, devices: list[str], devices_here: bool = True) -> None:
    """Checks that need more than the config's own fields (model configs, devices, the
    filesystem), done before any data is read or model trained: each of these used to
    surface only after the teacher and five sub-networks had trained. Done once per
    process for a given run: the CLI checks before it starts the flow, the flow's own call
    is then free."""
    key = (cfg.model_dump_json(), store.root, tuple(devices), devices_here)
    if key in _PREFLIGHTED:
        return
    check_devices(devices, devices_here)
    ensure_writable(store.root, "store")
    store.check_layout()
    task = task_spec(task_of(cfg))
    labels = task.labels
    if cfg.teacher.fine_tuned:
        check_fine_tuned(cfg.teacher, labels)
    else:
        check_labels(cfg.teacher, labels, "teacher")
    teacher = encoder_config(cfg.teacher)
    check_architecture(cfg, teacher.model_type)
    check_fits_in_memory(teacher, "teacher")
    student = spec_of(cfg.student.compression).check(cfg.student.compression, teacher, labels)
    for name, train, model in (("teacher_train", cfg.teacher_train, teacher),
                               ("subnetworks.train", cfg.subnetworks.train, teacher),
                               ("student.train", cfg.student.train, student)):
        positions = model.max_position_embeddings
        if train.max_length > positions:
            raise ValueError(f"{name}.max_length={train.max_length} exceeds the model's {positions} positions")
    estimator = ESTIMATORS[cfg.subnetworks.estimator]
    if estimator.check is not None and (why := estimator.check(cfg, task)):
        raise ValueError(f"subnetworks.estimator {estimator.name!r} {why}")
    check_sources(task, cfg.data, needs_ood_train(cfg))
    for name in active(cfg.evaluations, cfg):
        spec = EVALUATIONS[name]
        if spec.check is not None:
            spec.check(settings_of(spec, cfg), task)
    if task.single_text and bias_model_kind(cfg) in PAIR_ONLY and any(METHODS[m].needs & BIAS_PRODUCTS for m in cfg.methods):
        raise ValueError(f"method.bias_model {bias_model_kind(cfg)!r} reads a text pair; task {task.name} has one text per "
                         "row: use bag-of-words (or 'task', its default)")
    _PREFLIGHTED.add(key)


def check_architecture(cfg: RunConfig, kind: str) -> None:
    """Refuse, naming it, a teacher architecture (`config.model_type`) rmc does not run, or
    one the student's compression is not built for (the sub-networks are IMP, which runs on
    every family)."""
    if kind not in FAMILIES:
        raise ValueError(f"teacher {cfg.teacher.source!r} is a {kind!r} model; rmc runs {', '.join(FAMILIES)}")
    supported = spec_of(cfg.student.compression).architectures
    if kind not in supported:
        raise ValueError(f"student.compression {cfg.student.compression.kind!r} is built for {', '.join(supported)}; the "
                         f"teacher {cfg.teacher.source!r} is a {kind!r} model (pruned and distilled run on "
                         f"{', '.join(FAMILIES)})")


_RESOLVED: dict[tuple[str, str], TaskSpec] = {}


def task_of(cfg: RunConfig) -> TaskHandle:
    """What the stages receive as the task: its whole spec, so that a changed declaration
    (a built-in one in data/tasks/ included) changes the key of every stage that reads
    it. A declared task is resolved against its files (labels read, columns and label maps
    checked; once per process for the same declaration and file contents)."""
    if not isinstance(cfg.task, FileTask):
        return TASKS[cfg.task]
    key = (cfg.task.model_dump_json(), data_fingerprint(cfg, ood_train=True))
    if key not in _RESOLVED:
        _RESOLVED[key] = resolve(cfg.task)
    return _RESOLVED[key]


def data_fingerprint(cfg: RunConfig, ood_train: bool = False) -> str:
    """The digest of every local file a data artifact of the run reads (data/fingerprint.py):
    the OOD training rows only for the upper bound's own data artifact, so that adding it
    changes nothing else's key."""
    if isinstance(cfg.task, FileTask):
        return files_digest(Path(f.path) for role, f in cfg.task.files().items()
                            if not f.on_hub and (ood_train or role != "ood-train"))
    return files_digest(local_files(cfg.task, cfg.data, ood_train))


def each_training(cfg: RunConfig, change: Callable[[TrainConfig], TrainConfig]) -> RunConfig:
    """`cfg` with `change` applied to every TrainConfig in it (teacher, sub-networks, student)."""
    return cfg.model_copy(update={
        "teacher_train": change(cfg.teacher_train),
        "subnetworks": cfg.subnetworks.model_copy(update={"train": change(cfg.subnetworks.train)}),
        "student": cfg.student.model_copy(update={"train": change(cfg.student.train)}),
    })


def resolve_precisions(cfg: RunConfig, device: str) -> RunConfig:
    """`auto` made concrete for the run's device, so that a stage's cache key names the
    precision its artifact is computed in: a store moved to a machine without bf16 retrains
    rather than reusing bf16 results as if they were what `auto` gives there."""
    return each_training(cfg, lambda t: t.model_copy(update={"precision": resolve_precision(t.precision, device)}))


def bias_model_kind(cfg: RunConfig) -> str:
    """The known-bias methods' bias-only model: the configured one, else the task's."""
    return task_spec(task_of(cfg)).bias_model if cfg.method.bias_model == "task" else cfg.method.bias_model


def difficulty_floor(cfg: RunConfig) -> float:
    """Eq. 1's alpha: the configured one, else the task's (docs/method.md)."""
    return cfg.method.alpha if cfg.method.alpha is not None else task_spec(task_of(cfg)).default_alpha


def student_name(compression: CompressionConfig, method: str) -> str:
    """imp40-rmc (IMP at 40 %), h20n30-rmc (20 % of heads, 30 % of FFN neurons), L3-rmc
    (3 layers): the compression's label and the method. Tables carry both as columns."""
    return f"{spec_of(compression).label(compression)}-{method}"


def identities(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """What each model of a run is, as table columns (role, compression, nominal sparsity,
    method), so that no report parses a model's name. Sub-networks are IMP at their sparsity."""
    out: dict[str, dict[str, Any]] = {"teacher": {"role": "teacher", "compression": "none", "sparsity": 0.0, "method": "vanilla"}}
    for s in cfg.subnetworks.sparsities:
        out[subnetwork_name(s)] = {"role": "subnetwork", **_what(subnetwork_compression(cfg, s)), "method": "vanilla"}
    for method in cfg.methods:
        name, what = student_name(cfg.student.compression, method), _what(cfg.student.compression)
        role = UPPER_BOUND if METHODS[method].upper_bound else "student"
        out[name] = {"role": role, **what, "method": method}
        if cfg.student.quantize != "none":
            out[int8_name(name)] = {"role": role, **what, "compression": f"{what['compression']}+{cfg.student.quantize}",
                                    "method": method}
    return out


def needs_ood_train(cfg: RunConfig) -> bool:
    """The run trains an upper bound, so its data holds the task's OOD training rows."""
    return any(METHODS[m].upper_bound for m in cfg.methods)


def int8_name(student: str) -> str:
    """imp40-rmc-int8: a student's int8 version (`StudentConfig.quantize`)."""
    return f"{student}-int8"


def _what(compression: CompressionConfig) -> dict[str, Any]:
    return {"compression": compression.kind, "sparsity": float(spec_of(compression).sparsity(compression))}


def starting_model(compression: CompressionConfig, base: Any, teacher: Any) -> Any:
    """Where a student of `compression` starts: the base (pre-trained encoder and head) or
    the fine-tuned teacher (`CompressionSpec.starts_from`)."""
    return teacher if spec_of(compression).starts_from(compression) == "teacher" else base


def subnetwork_compression(cfg: RunConfig, sparsity: float) -> ImpConfig:
    """A difficulty sub-network: IMP to `sparsity` (with the student's default schedule, so
    that a Vanilla IMP student at a sub-network's sparsity is that sub-network's artifact)."""
    return ImpConfig(sparsity=sparsity, scope=cfg.subnetworks.scope)


def subnetwork_name(sparsity: float) -> str:
    return f"subnet-{round(sparsity * 100)}"


def seeded(cfg: RunConfig, seed: int) -> RunConfig:
    """One seed's branch: `seed` added to every training seed (teacher, base head,
    sub-networks, students). The data sample stays fixed, so that every seed and every
    method is scored on the same rows and differences can be paired."""
    return each_training(cfg, lambda t: t.model_copy(update={"seed": t.seed + seed}))


class Outputs(NamedTuple):
    """A run's products: the report (identical for identical runs), the evaluations of the
    models themselves by name (size and speed: timings vary from run to run), and what each
    model is and where its weights and predictions are (`ModelRecord` fields; refs or,
    under Prefect, futures), and the data artifact they were scored on."""

    report: Any
    measured: dict[str, Any]
    models: list[dict[str, Any]]
    data: Any


class ModelRecord(BaseModel):
    """One trained model of a run, typed: what it is and which artifacts hold it, so that
    tools read a run's models from its summary instead of parsing names."""

    name: str
    role: str
    compression: str
    sparsity: float
    method: str
    seed: int
    model: Ref
    predictions: Ref


def run(cfg: RunConfig, store: Store, devices: list[str] | None = None, call: Call = direct,
        devices_here: bool = True) -> Outputs:
    """Every seed's branch (teacher -> sub-networks -> difficulty -> students -> per-seed
    report), then one summary across seeds (means, intervals and paired comparisons), and
    last the evaluations of the first seed's models themselves (size and speed).

    Returns the Refs as `Outputs` (under the Prefect hook, their futures).
    `devices_here=False`: the stages run on a cluster's workers, whose devices this
    process cannot see.
    """
    devices = devices or ["cpu"]
    preflight(cfg, store, devices, devices_here)
    cfg = resolve_precisions(cfg, devices[0])
    task = task_of(cfg)
    data = call(stages.prepare_data, task, cfg.data, store, fingerprint=data_fingerprint(cfg))
    # The upper bound's student alone reads the OOD training rows, from a data artifact of
    # its own: the shared one stays the same, so adding the method retrains nothing else.
    ood_data = call(stages.prepare_data, task, cfg.data, store, True, fingerprint=data_fingerprint(cfg, ood_train=True)
                    ) if needs_ood_train(cfg) else None
    bias = None
    if any(METHODS[m].needs & BIAS_PRODUCTS for m in cfg.methods):
        bias = call(stages.bias_model, task, data, bias_model_kind(cfg), cfg.data.seed, store)
    tag = (lambda name, seed: name) if len(cfg.seeds) == 1 else (lambda name, seed: f"{name}-s{seed}")
    branches = [branch(seeded(cfg, seed), data, store, devices, call, lambda name, s=seed: tag(name, s), bias, ood_data)
                for seed in cfg.seeds]
    summary = call(stages.summarize, task, data, list(cfg.seeds), [b.report for b in branches],
                   [b.predictions for b in branches], comparison_pairs(cfg),
                   [n for n in active(cfg.evaluations, cfg) if EVALUATIONS[n].measure is None], store,
                   query_refs=[b.queried for b in branches] if any(b.queried for b in branches) else None)
    measured = {}
    for name in cfg.evaluations:
        spec = EVALUATIONS[name]
        if spec.measure is not None:
            measured[name] = call(stages.measure_models, name, summary, branches[0].models, data,
                                  settings_of(spec, cfg), cfg.student.train.max_length, store)
    ids = identities(cfg)
    models = [{"name": name, **ids[name], "seed": seed, "model": ref, "predictions": b.predictions[name]}
              for seed, b in zip(cfg.seeds, branches) for name, ref in b.models.items()]
    return Outputs(summary, measured, models, data)


def comparison_pairs(cfg: RunConfig) -> list[tuple[str, str]]:
    """The paired comparisons of a run: RMC against each baseline (int8 against int8), and
    each student against the teacher (what compression cost: Xu et al.'s question)."""
    rmc = [(student_name(cfg.student.compression, "rmc"), student_name(cfg.student.compression, m))
           for m in cfg.methods if m != "rmc" and not METHODS[m].upper_bound] if "rmc" in cfg.methods else []
    if cfg.student.quantize != "none":
        rmc += [(int8_name(a), int8_name(b)) for a, b in rmc]
    students = [name for name, what in identities(cfg).items() if what["role"] == "student"]
    return rmc + [(name, "teacher") for name in students]


class Branch(NamedTuple):
    report: Any
    predictions: dict[str, Any]
    models: dict[str, Any]
    queried: dict[str, dict[str, Any]]


@dataclass
class _Seed:
    """One seed's branch, submitted step by step (`branch`). Trainings are submitted before
    the predictions that wait on them, so that under a bounded worker pool a waiting
    prediction never holds a slot a training could use."""

    cfg: RunConfig
    data: Any
    store: Store
    devices: list[str]
    call: Call
    tag: Callable[[str], str]
    models: dict[str, Any] = field(default_factory=dict)
    preds: dict[str, Any] = field(default_factory=dict)
    # Where and how each model predicts, for the evaluations that query the models again.
    placed: dict[str, tuple[str, TrainConfig]] = field(default_factory=dict)
    # The task and the splits every model predicts, found once for the branch.
    task: TaskHandle = field(init=False)
    splits: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.task = task_of(self.cfg)
        data = self.cfg.data
        self.splits = ("dev", *ood_names(self.task, data.source, data.shortcut_strength is not None))

    def teacher(self) -> tuple[Any, Any]:
        """The base (pre-trained encoder and the task's head) and the teacher: trained from
        the base, or the user's fine-tuned classifier as it is (the base then is its own
        weights, or the encoder named as its base)."""
        cfg, call, store, data = self.cfg, self.call, self.store, self.data
        if cfg.teacher.fine_tuned:
            teacher = call(stages.import_teacher, cfg.teacher, task_spec(self.task).labels, store,
                           fingerprint=model_digest(cfg.teacher.source))
            base = teacher if cfg.teacher.base is None else call(
                stages.prepare_base, cfg.teacher.model_copy(update={"source": cfg.teacher.base, "fine_tuned": False,
                                                                    "label_map": None, "base": None}),
                data, cfg.teacher_train.seed, store, fingerprint=model_digest(cfg.teacher.base))
            return base, teacher
        base = call(stages.prepare_base, cfg.teacher, data, cfg.teacher_train.seed, store,
                    fingerprint=model_digest(cfg.teacher.source))
        dynamics = {"record_dynamics": True} if ESTIMATORS[cfg.subnetworks.estimator].teacher_dynamics else {}
        teacher = call(stages.train, base, data, cfg.teacher_train, store, device=self.devices[0], desc=self.tag("teacher"),
                       **dynamics)
        return base, teacher

    def difficulty(self, base: Any, teacher: Any) -> tuple[Any, dict[str, Any], Any]:
        """The estimator's sub-networks (if it trains any), the teacher's predictions, and
        the difficulty scored from the product the estimator reads."""
        cfg, call, store, data, sub = self.cfg, self.call, self.store, self.data, self.cfg.subnetworks
        names = [subnetwork_name(s) for s in sub.sparsities]
        placement = dict(zip(names, assign_devices(len(names), self.devices)))
        trains = trained_by(sub.estimator, sub.controls_on)
        if trains == "imp":
            subnets = {name: call(stages.train, base, data, sub.train, store, compression=subnetwork_compression(cfg, s),
                                  device=placement[name], desc=self.tag(name)) for name, s in zip(names, sub.sparsities)}
        elif trains == "oneshot":
            subnets = {name: call(stages.prune_oneshot, teacher, data, s, sub.scope, sub.train, sub.recovery_epochs, store,
                                  device=placement[name], desc=self.tag(name)) for name, s in zip(names, sub.sparsities)}
        else:
            subnets = {}
        teacher_pred = call(stages.predict, teacher, data, ("train", *self.splits), cfg.teacher_train, store,
                            device=self.devices[0], desc=self.tag("teacher"))
        subnet_preds = {name: call(stages.predict, ref, data, ("train", "dev"), sub.train, store, device=placement[name],
                                   desc=self.tag(name)) for name, ref in subnets.items()}
        products = {"subnetworks": list(subnet_preds.values()), "teacher-predictions": [teacher_pred], "teacher": [teacher],
                    "data": [data]}
        difficulty = call(stages.difficulty, sub.estimator, products[ESTIMATORS[sub.estimator].reads], difficulty_floor(cfg),
                          store, seed=sub.train.seed)
        self.models["teacher"], self.preds["teacher"] = teacher, teacher_pred
        self.placed["teacher"] = (self.devices[0], cfg.teacher_train)
        return teacher_pred, subnet_preds, difficulty

    def students(self, base: Any, teacher: Any, teacher_pred: Any, difficulty: Any, bias: Any, ood_data: Any) -> None:
        """One student per method, each from its spec: its per-row targets, its first stage
        (JTT), its mask search (SRNets' scenario 2), its training data (the upper bound's),
        and its int8 copy."""
        cfg, call, store, data, st = self.cfg, self.call, self.store, self.data, self.cfg.student
        student_base = starting_model(st.compression, base, teacher)
        if spec_of(st.compression).prepare is not None:
            student_base = call(stages.prepare_student, st.compression, student_base, data, st.train.seed, store)
        mask_search = spec_of(st.compression).mask_from(st.compression)
        # Quantization-aware training simulates int8 rounding on fp32 values: bf16 autocast would
        # round them again, off the int8 grid. int8 models run on the CPU (torch's int8 kernels).
        qat = {"quantize_aware": True} if st.quantize == "qat-int8" else {}
        student_train = st.train.model_copy(update={"precision": "fp32"}) if qat else st.train
        for i, method in enumerate(cfg.methods):
            spec, name, device = METHODS[method], student_name(st.compression, method), self.devices[i % len(self.devices)]
            per_sample = self.targets(method, student_base, teacher_pred, difficulty, bias, device)
            # No loss parameters keys like the default (None), so that a Vanilla student trained with
            # a sub-network's recipe is that sub-network's cached artifact, not a second training.
            loss_params = select(spec.loss_params, spec, cfg) or None
            start = student_base
            if mask_search is not None:
                searched = call(stages.train, starting_model(mask_search, base, teacher), data, st.train, store, method=method,
                                loss_params=loss_params, compression=mask_search, per_sample_ref=per_sample, device=device,
                                desc=self.tag(f"{name}-mask-search"))
                start = call(stages.mask_student, searched, student_base, store)
            trained_on = ood_data if spec.upper_bound else data
            self.models[name] = call(stages.train, start, trained_on, student_train, store, method=method,
                                     loss_params=loss_params, compression=st.compression, per_sample_ref=per_sample,
                                     device=device, desc=self.tag(name), **qat)
            self.preds[name] = call(stages.predict, self.models[name], data, self.splits, student_train, store, device=device,
                                    desc=self.tag(name))
            self.placed[name] = (device, student_train)
            if st.quantize != "none":
                self.int8(name)

    def targets(self, method: str, student_base: Any, teacher_pred: Any, difficulty: Any, bias: Any, device: str) -> Any:
        """A method's per-row training inputs (soft targets, weights), from the products its
        spec needs; None for a method that trains on the gold labels alone."""
        cfg, call, store, data, spec = self.cfg, self.call, self.store, self.data, METHODS[method]
        first_stage_pred = None
        if spec.first_stage_epochs is not None:
            epochs = select((spec.first_stage_epochs,), spec, cfg)[spec.first_stage_epochs]
            first_cfg = cfg.student.train.model_copy(update={"epochs": epochs})
            first = call(stages.train, student_base, data, first_cfg, store, device=device,
                         desc=self.tag(f"{method}-first-stage"))
            first_stage_pred = call(stages.predict, first, data, ("train",), first_cfg, store, device=device,
                                    desc=self.tag(f"{method}-first-stage"))
        if spec.targets is None:
            return None
        return call(stages.student_inputs, method, select(spec.target_params, spec, cfg), store,
                    teacher_pred_ref=teacher_pred if "teacher_probs" in spec.needs else None,
                    difficulty_ref=difficulty if "difficulty" in spec.needs else None,
                    first_stage_pred_ref=first_stage_pred, data_ref=data if first_stage_pred is not None else None,
                    **({"bias_pred_ref": bias} if spec.needs & BIAS_PRODUCTS else {}))

    def int8(self, name: str) -> None:
        """A student's int8 copy, a model of its own, predicting on the CPU (torch's int8 kernels)."""
        int8, predict = int8_name(name), self.cfg.student.train.model_copy(update={"precision": "fp32"})
        self.models[int8] = self.call(stages.quantize, self.models[name], self.cfg.student.quantize, self.store,
                                      desc=self.tag(int8))
        self.preds[int8] = self.call(stages.predict, self.models[int8], self.data, self.splits, predict, self.store,
                                     device="cpu", desc=self.tag(int8))
        self.placed[int8] = ("cpu", predict)

    def evaluations(self, teacher_pred: Any, subnet_preds: dict[str, Any], difficulty: Any) -> tuple[dict, dict]:
        """Each evaluation the run's settings switch on, from the products its spec needs;
        those that query the models again get a stage per model first."""
        cfg, call, store, data = self.cfg, self.call, self.store, self.data
        evaluations, queried = {}, {}
        evaluated = [n for n in active(cfg.evaluations, cfg) if EVALUATIONS[n].measure is None]
        # The teacher's train rows are predicted anyway (the students' soft targets, the
        # teacher-loss estimator); a student's only for an evaluation that needs them, in a
        # stage of their own so that its dev and OOD predictions stay cached either way.
        train_preds = {}
        if any("train" in EVALUATIONS[n].needs for n in evaluated):
            train_preds = {m: teacher_pred if m == "teacher" else call(
                stages.predict, ref, data, ("train",), self.placed[m][1], store, device=self.placed[m][0],
                desc=self.tag(f"{m}-train-rows")) for m, ref in self.models.items()}
        for name in evaluated:
            spec = EVALUATIONS[name]
            if spec.query is not None:
                settings = settings_of(spec, cfg)
                queried[name] = {m: call(stages.query_model, name, ref, data, self.task, settings, self.placed[m][1], store,
                                         device=self.placed[m][0], desc=self.tag(f"{name}-{m}"))
                                 for m, ref in self.models.items()}
            evaluations[name] = call(stages.evaluate, name, self.task, data, self.preds, store,
                                     subnet_pred_refs=subnet_preds if "subnetworks" in spec.needs else None,
                                     difficulty_ref=difficulty if "difficulty" in spec.needs else None,
                                     query_refs=queried.get(name),
                                     train_pred_refs=train_preds if "train" in spec.needs else None,
                                     **({"settings": settings_of(spec, cfg)} if spec.settings is not None else {}),
                                     desc=self.tag(name))
        return evaluations, queried


def branch(cfg: RunConfig, data: Any, store: Store, devices: list[str], call: Call, tag: Callable[[str], str],
           bias: Any = None, ood_data: Any = None) -> Branch:
    """One seed: teacher -> sub-networks -> difficulty -> students (RMC and baselines) -> report.
    `bias`: the bias-only model's predictions, shared by every seed (the known-bias methods);
    `ood_data`: the data with the OOD training rows, which only the upper bound's student trains on."""
    seed = _Seed(cfg, data, store, devices, call, tag)
    base, teacher = seed.teacher()
    teacher_pred, subnet_preds, difficulty = seed.difficulty(base, teacher)
    seed.students(base, teacher, teacher_pred, difficulty, bias, ood_data)
    evaluations, queried = seed.evaluations(teacher_pred, subnet_preds, difficulty)
    report = call(stages.report, seed.task, evaluations, seed.models, identities(cfg), store, desc=tag("report"))
    return Branch(report, seed.preds, seed.models, queried)


def run_local(cfg: RunConfig, store_root: Path, devices: list[str] | None = None, call: Call = direct) -> dict:
    """Plain-Python entry: run everything in this process and return the report's tables
    and those of the evaluations of the models themselves (`inference`)."""
    store = Store(store_root)
    outputs = run(cfg, store, devices, call=call)
    return store.tables(outputs.report) | {k: v for ref in outputs.measured.values() for k, v in store.tables(ref).items()}
