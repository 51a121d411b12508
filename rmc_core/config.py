"""Validated run configuration.

Every value a user can set is checked here, once, before any data is read or any model
trained: a bad alpha found after five sub-network fine-tunes costs hours. Downstream code
trusts these objects and does not re-check them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rmc_core.compression import COMPRESSIONS, CompressionConfig
from rmc_core.compression.imp_config import ImpConfig, Scope
from rmc_core.compression.registry import validate_compression
from rmc_core.data.task_file import FileTask, read_task_file
from rmc_core.evaluation import EVALUATIONS
from rmc_core.evaluation.registry import default_evaluations
from rmc_core.evaluation.attack import AttackConfig
from rmc_core.evaluation.inference_cost import InferenceCostConfig
from rmc_core.model_spec import ModelSpec
from rmc_core.objectives.estimators import ESTIMATORS, subnetwork_estimators
from rmc_core.objectives.methods import METHODS, MethodConfig
from rmc_core.schema import SEED_MAX, Frozen, Int, Real, Seed, Sparsity
from rmc_core.training.precision import Precision

# Closed choices are Literals so that the Prefect run form shows them as drop-downs.
# TaskName lists rmc_core.data.registry.TASKS (a test keeps the two equal).
TaskName = Literal["mnli", "fever", "qqp", "synthetic"]
Batching = Literal["auto", "grouped", "random"]
# A student's int8 copy (rmc_core/quantization.py): none, after training, or trained for it.
Quantize = Literal["none", "dynamic-int8", "qat-int8"]
TASK_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def _task(value: Any) -> Any:
    """A built-in task's name stays a name; a task file's path (.json, .yaml) becomes its
    declaration; an inline declaration gets its relative paths resolved against the folder
    the run starts in. Either way the validated config holds absolute paths only."""
    if isinstance(value, str) and value.lower().endswith(TASK_FILE_SUFFIXES):
        path = Path(value).expanduser()
        from rmc_core.serve_policy import check_task_file

        check_task_file(path)
        if not path.is_file():
            raise ValueError(f"task file {value} does not exist (a task is a built-in name or a task file, .json or .yaml)")
        return read_task_file(path)
    if isinstance(value, dict):
        return FileTask.model_validate(value).resolved(Path.cwd())
    return value


Task = Annotated[TaskName | FileTask, BeforeValidator(_task)]


# An evaluation's name, checked and offered like a method's.
Evaluation = Annotated[str, AfterValidator(lambda name: EVALUATIONS.known(name)),
                       Field(json_schema_extra=lambda schema: schema.update(enum=list(EVALUATIONS)))]


# A method name, checked against the registry when the config is validated (so a method
# registered after import is accepted) and offered as a drop-down of the registered ones.
Method = Annotated[str, AfterValidator(lambda name: METHODS.known(name)),
                   Field(json_schema_extra=lambda schema: schema.update(enum=list(METHODS)))]


class TrainConfig(Frozen):
    """One fine-tuning run: AdamW with a linear schedule and warm-up, and its prediction settings."""

    epochs: Real = Field(1.0, gt=0, le=1000, description="passes over the training rows (fractions allowed; at most 1000)")
    lr: Real = Field(5e-5, gt=0, description="AdamW's peak learning rate, reached after the warm-up")
    batch_size: Int = Field(32, ge=1, le=65536, description="training rows per optimizer step")
    eval_batch_size: Int = Field(128, ge=1, le=65536, description="rows per batch when predicting (memory only, not results)")
    warmup_ratio: Real = Field(0.1, ge=0, lt=1, description="share of the steps over which the learning rate rises from 0")
    weight_decay: Real = Field(0.01, ge=0, description="AdamW's decoupled weight decay")
    max_length: Int = Field(128, ge=8, le=8192, description="tokens per sentence pair; longer pairs are truncated")
    seed: Int = Field(0, ge=0, le=SEED_MAX, description="seeds the head's initialisation, dropout and batch order (added to the run's seed)")
    precision: Precision = Field("auto", description="auto: bf16 autocast where the device computes bf16 natively, else fp32")
    batching: Batching = Field(
        "auto", description="grouped: rows of similar length batched together (less padding); auto: grouped unless "
                            "that skews batches' label mix (length predicts the label), then random")
    dropout: Literal["fast", "torch"] = Field(
        "fast", description="how dropout draws its masks on a CPU: fast (half the random draws: a MiniLM step 1.08x "
                            "faster, rmc_core/training/fast_dropout.py) or torch's nn.Dropout; the same "
                            "Bernoulli(p) either way, not the same draws; on a GPU always torch's")


class DataConfig(Frozen):
    """Which rows to use. Limits exist to fit a CPU budget; the benchmark documents them."""

    source: Literal["local", "hub"] = Field("local", description="local: files under data_root; hub: the Hugging Face "
                                                                 "hub (needs internet; two files still come from data_root)")
    data_root: Path = Field(Path("../shared/data"), description="the folder of task files (its README gives formats); "
                            f"a relative path is read from the folder the run starts in ({Path.cwd()} here)")
    max_train: Int | None = Field(None, ge=1, description="sample at most this many training rows (empty: all)")
    max_dev: Int | None = Field(None, ge=1, description="sample at most this many dev rows (empty: all)")
    max_ood: Int | None = Field(None, ge=1, description="per OOD set, stratified by label (and heuristic)")
    max_ood_train: Int | None = Field(None, ge=1, description="method ood-upper (the OOD-information upper bound): at "
                                                              "most this many of the task's OOD training rows (MNLI: "
                                                              "HANS train, 30,000), stratified; empty: all (synthetic: "
                                                              "synthetic_ood rows)")
    seed: Int = Field(0, ge=0, le=SEED_MAX, description="seeds the row sample (and the synthetic task's rows); fixed across run seeds")
    shortcut_strength: Real | None = Field(
        None, ge=0.0, le=1.0, description="real tasks: inject a label-revealing marker word into every train and dev "
                                          "row's second text, agreeing with the label at this rate, and add the OOD set "
                                          "shortcut-ood (dev with every marker wrong); empty: off (rmc_core/data/shortcut.py)")
    synthetic_train: Int = Field(2000, ge=10, le=1_000_000, description="synthetic task: training rows")
    synthetic_dev: Int = Field(1500, ge=10, le=1_000_000, description="synthetic task: dev rows")
    synthetic_ood: Int = Field(1000, ge=10, le=1_000_000, description="synthetic task: OOD rows (all where the shortcut fails)")
    synthetic_bias: Real = Field(0.9, ge=0.5, le=1.0, description="shortcut strength: P(word overlap agrees with the label) "
                                                                  "on entailment and neutral rows of train/dev")
    synthetic_order: Real = Field(0.0, ge=0.0, le=1.0, description="rule difficulty: share of the hard non-entailed rows "
                                                                    "that need word order (role swaps) rather than a lexical check")


# A difficulty estimator's name (objectives/estimators.py), checked and offered like a method's.
Estimator = Annotated[str, AfterValidator(lambda name: ESTIMATORS.known(name)),
                      Field(json_schema_extra=lambda schema: schema.update(enum=list(ESTIMATORS)))]


class SubnetworkConfig(Frozen):
    """How each training row's difficulty is estimated: by the pruned sub-networks whose
    loss variance is the paper's estimate, or by a registered alternative or control
    (rmc_core/objectives/estimators.py).

    The sub-networks: "imp" (the paper) fine-tunes each from the base encoder with IMP to
    its sparsity, five extra fine-tunes; "oneshot" (cheap) prunes the trained teacher by
    magnitude to each sparsity, then fine-tunes `recovery_epochs` at that sparsity (0:
    none). Variance is only informative while every sub-network still works (docs/method.md,
    deviations), so a run reports the agreement of whatever estimator it used. A control
    trains the sub-networks of `controls_on` (the estimator of the run it controls), so
    every report and premise check stays comparable and a control of a one-shot run reuses
    that run's sub-networks from the cache.
    """

    sparsities: tuple[Sparsity, ...] = Field((0.2, 0.4, 0.6, 0.7, 0.85), description="one sub-network per sparsity "
                                             "(the paper's five); the variance of their losses is the difficulty")
    scope: Scope = Field("per_matrix", description="per_matrix: every matrix to the same sparsity; global: one ranking")
    estimator: Estimator = Field("imp", description="how each row's difficulty is scored: " + "; ".join(
        f"{name}: {spec.summary}" for name, spec in ESTIMATORS.items()))
    recovery_epochs: Real = Field(0.0, ge=0, description="oneshot: fine-tuning epochs after pruning (0: none)")
    controls_on: Estimator = Field(
        "imp", description="a control's sub-networks: those of this estimator, the estimator of the run it controls "
                           f"({', '.join(subnetwork_estimators())})")
    train: TrainConfig = Field(TrainConfig(epochs=2), title="Sub-network training", description="each sub-network's fine-tuning")

    @field_validator("sparsities")
    @classmethod
    def _at_least_two(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) < 2:
            raise ValueError("a variance needs at least two sub-networks")
        if len({round(x * 100) for x in v}) != len(v):
            raise ValueError(f"sub-network sparsities must differ (in whole percent): {v}")
        return v

    @model_validator(mode="after")
    def _controls_on_a_control(self) -> SubnetworkConfig:
        """controls_on means something to the controls only; elsewhere it was ignored silently."""
        controls = [name for name, spec in ESTIMATORS.items() if spec.control]
        if self.controls_on != type(self).model_fields["controls_on"].default and not ESTIMATORS[self.estimator].control:
            raise ValueError(f"controls_on={self.controls_on!r} applies to the controls ({', '.join(controls)}) only, "
                             f"not to estimator {self.estimator!r}; leave it at the default")
        if self.controls_on not in subnetwork_estimators():
            raise ValueError(f"controls_on={self.controls_on!r} trains no sub-networks; a control controls one of "
                             f"{', '.join(subnetwork_estimators())}")
        return self


class _RegisteredKinds:
    """The form shows one option per registered compression, each with its own fields (the
    field validates by `kind` at run time, so a kind registered later is offered too)."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"anyOf": [handler(spec.config.__pydantic_core_schema__) for spec in COMPRESSIONS.values()]}


Compression = Annotated[SerializeAsAny[CompressionConfig], BeforeValidator(validate_compression), _RegisteredKinds()]


class StudentConfig(Frozen):
    """The compressed model: how it is made from the teacher (`compression`, one of the
    registered kinds, rmc_core/compression/) and how it trains."""

    compression: Compression = Field(ImpConfig(), title="Compression",
                                     description="IMP (\"pruned\", default), \"structured\", \"distilled\", or a registered kind")
    train: TrainConfig = Field(TrainConfig(epochs=2), title="Student training", description="every student's fine-tuning")
    quantize: Quantize = Field("none", description="also make each student int8 (its own model, -int8): \"dynamic-int8\" after "
                               "training, or \"qat-int8\" trained with int8 rounding simulated (fp32), then converted")

    @model_validator(mode="after")
    def _qat_fits_the_compression(self) -> StudentConfig:
        if self.quantize == "qat-int8" and self.compression.kind == "masked":
            raise ValueError("student.quantize=qat-int8 cannot train a masked student: both put a parametrization on "
                             "every weight; use dynamic-int8 (after training) for masked students")
        return self


def _settings_by_name(registry: Any, what: str) -> Any:
    """A validator of `{name: settings}`: each entry validated by the settings class its
    registered spec declares (`spec.settings`), as a compression is by its kind."""
    def validate(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for name, settings in value.items():
            spec = registry.get(name)
            if spec is None:
                raise ValueError(f"no {what} {name!r} (registered: {', '.join(registry)})")
            if getattr(spec, "section", None) is not None:
                raise ValueError(f"{what} {name!r} is set in the run config's {spec.section!r} section")
            if getattr(spec, "settings", None) is None:
                raise ValueError(f"{what} {name!r} has no settings of its own")
            out[name] = spec.settings.model_validate(settings)
        return out

    return validate


class _RegisteredSettings:
    """The form offers each registered spec's settings by name (validated by name at run time)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "object", "properties": {
            name: handler(spec.settings.__pydantic_core_schema__) for name, spec in self.registry.items()
            if getattr(spec, "settings", None) is not None and getattr(spec, "section", None) is None}}


EvaluationSettings = Annotated[dict[str, SerializeAsAny[Frozen]], BeforeValidator(_settings_by_name(EVALUATIONS, "evaluation")),
                               _RegisteredSettings(EVALUATIONS)]
MethodSettings = Annotated[dict[str, SerializeAsAny[Frozen]], BeforeValidator(_settings_by_name(METHODS, "method")),
                           _RegisteredSettings(METHODS)]


class RunConfig(Frozen):
    """Everything one RMC run needs; the unit that is validated, hashed and reported.

    The defaults are the demo: the synthetic task's design (experiments/synthetic-0.9.yaml,
    arm main) at shortcut strength 0.9, one seed, Vanilla and RMC. The teacher trains 3
    epochs because that is what the MiniLM teacher needs to learn the synthetic task's rule,
    not only its shortcut (docs/results.md).
    """

    task: Task = Field("synthetic", description="mnli (OOD: HANS), fever (FEVER-Symmetric), qqp (PAWS), the synthetic "
                                                "shortcut task, or your own: a task file (.json or .yaml) or a declaration "
                                                "(docs/usage.md, \"Your model, your data\")")
    data: DataConfig = Field(DataConfig(), title="Data", description="where the rows come from and how many")
    teacher: ModelSpec = Field(ModelSpec(), title="Teacher model", description="the encoder fine-tuned as the teacher")
    teacher_train: TrainConfig = Field(TrainConfig(epochs=3), title="Teacher training", description="the teacher's fine-tuning")
    subnetworks: SubnetworkConfig = Field(SubnetworkConfig(), title="Sub-networks (difficulty estimation)",
                                          description="the pruned sub-networks whose loss variance scores each sample")
    student: StudentConfig = Field(StudentConfig(), title="Student (compressed model)",
                                   description="how each student is compressed and trained")
    methods: tuple[Method, ...] = Field(("vanilla", "rmc"), description="one student per method, all compared with RMC")
    method: MethodConfig = Field(MethodConfig(), title="Method hyper-parameters", description="the methods' settings")
    method_settings: MethodSettings = Field(default_factory=dict, title="Methods' own settings",
                                            description="settings a method declares of its own (a method registered "
                                                        "outside rmc_core), by method name")
    evaluations: tuple[Evaluation, ...] = Field(
        default_factory=default_evaluations,
        description="what each seed's models are measured by (rmc_core/evaluation/); default: every registered "
                    "evaluation but train_fit (students' train-row predictions) and inference (size and speed), which "
                    "are asked for by name")
    inference: InferenceCostConfig = Field(InferenceCostConfig(), title="Inference cost measurement",
                                           description="how each model's size and CPU speed are measured")
    attack: AttackConfig = Field(AttackConfig(), title="Adversarial attack",
                                 description="a TextFooler-style word-substitution attack on every model (off by default)")
    evaluation_settings: EvaluationSettings = Field(default_factory=dict, title="Evaluations' own settings",
                                                    description="settings an evaluation declares of its own (one "
                                                                "registered outside rmc_core), by evaluation name")
    seeds: tuple[Seed, ...] = Field(
        (0,), description="one cached branch of the DAG per seed, added to every training seed; the data sample stays "
                          "fixed, so methods and seeds are compared on the same rows")

    @field_validator("methods", "seeds", "evaluations")
    @classmethod
    def _listed_once(cls, v: tuple, info: ValidationInfo) -> tuple:
        if not v:
            raise ValueError(f"at least one {info.field_name.removesuffix('s')} is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"{info.field_name} listed twice: {v}")
        if info.field_name == "evaluations" and "accuracy" not in v:
            raise ValueError("evaluations must include accuracy: comparisons, F_bias and the size table build on it")
        return v

    @property
    def task_name(self) -> str:
        return self.task if isinstance(self.task, str) else self.task.name

    @model_validator(mode="after")
    def _shortcut_on_real_text(self) -> RunConfig:
        if self.task == "synthetic" and self.data.shortcut_strength is not None:
            raise ValueError("data.shortcut_strength injects a shortcut into a real task's text; the synthetic task "
                             "plants its own (data.synthetic_bias)")
        return self

    @model_validator(mode="after")
    def _data_settings_that_apply(self) -> RunConfig:
        """A setting the task does not read is refused, not ignored without a word."""
        defaults = DataConfig()
        # Set to something other than its default (the UI sends every field, defaults included).
        given = {f for f in self.data.model_fields_set if getattr(self.data, f) != getattr(defaults, f)}
        if self.task == "synthetic" and given & {"data_root", "source"}:
            raise ValueError(f"data.{sorted(given & {'data_root', 'source'})[0]} does nothing for the synthetic task (it "
                             "generates its rows); name a task that reads files")
        if isinstance(self.task, FileTask):
            if given & {"data_root", "source"}:
                raise ValueError(f"data.{sorted(given & {'data_root', 'source'})[0]} does nothing for a declared task: its "
                                 "files are named in the declaration (a path or hub:owner/name each)")
            synthetic = sorted(f for f in given if f.startswith("synthetic_"))
            if synthetic:
                raise ValueError(f"data.{synthetic[0]} applies to the synthetic task only")
        return self

    @model_validator(mode="after")
    def _fine_tuned_teacher(self) -> RunConfig:
        if self.teacher.fine_tuned and self.teacher.source == "tiny":
            raise ValueError("teacher.fine_tuned needs a fine-tuned checkpoint (a local folder or hub id), not 'tiny'")
        return self

    @model_validator(mode="after")
    def _estimator_applies(self) -> RunConfig:
        """What the estimator's spec can check from the config alone (the task's rows are
        checked in preflight)."""
        spec = ESTIMATORS[self.subnetworks.estimator]
        if spec.check is not None and (why := spec.check(self, None)):
            raise ValueError(f"subnetworks.estimator {spec.name!r} {why}")
        return self
