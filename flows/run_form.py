"""The RMC flow's parameters, shaped as the Prefect UI's run form is read.

A run config (`RunConfig`) nests what a person sets most (the task, the teacher, how the
student is compressed, the methods, the seeds) among sections of settings most never
change, and its compression is a union of kinds, which the UI draws as a strip of tabs
wider than the page and validates as one block. `RmcParameters` holds the same settings
in the order a person sets them: the usual fields first, each a plain field with its own
validation; the rest below as sections, the compression's own settings one section per
registered kind. It is built from a `RunConfig` (`RmcParameters(config=...)`) and gives it
back (`.config`), so every caller and every cache key sees the run config alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from rmc_core.compression import COMPRESSIONS
from rmc_core.config import (
    DataConfig,
    Evaluation,
    EvaluationSettings,
    Method,
    MethodSettings,
    Quantize,
    RunConfig,
    StudentConfig,
    SubnetworkConfig,
    Task,
    TrainConfig,
)
from rmc_core.evaluation.registry import default_evaluations
from rmc_core.evaluation.attack import AttackConfig
from rmc_core.evaluation.inference_cost import InferenceCostConfig
from rmc_core.model_spec import ModelSpec
from rmc_core.objectives.methods import MethodConfig
from rmc_core.schema import Form, Seed, Sparsity

SIZE = "sparsity"  # the one setting of a kind the form shows among the usual fields
RUN = RunConfig()


class Reach(NamedTuple):
    """One run a served flow would start, as the serve policy checks it (`label`: the
    experiment's run, '' for a single run)."""

    label: str
    store_root: str
    config: RunConfig
    address: str | None


class RunnerConfig(Form):
    """Where the stages run: threads in this process, or the workers of a Ray or Dask
    cluster (docs/orchestration.md, "Run on a cluster"). Every worker must mount the store at the same
    path and reach the same Prefect server."""

    kind: Literal["local", "ray", "dask"] = Field("local", description="local: threads in the serving process; ray or "
                                                                     "dask: that cluster's workers")
    address: str | None = Field(None, description="ray: the cluster (`auto`, `ray://head:10001`); dask: the scheduler "
                                                  "(`tcp://host:8786`); empty: a cluster started on this machine")
    cpus_per_task: int = Field(1, ge=1, description="CPUs a Ray worker reserves for a stage that runs on CPU")


def _without(definition: dict[str, Any], *names: str) -> dict[str, Any]:
    """A model's JSON schema with some of its properties left out (they are set elsewhere in the form)."""
    out = {k: v for k, v in definition.items() if k not in ("required", "additionalProperties")}
    out["properties"] = {k: v for k, v in definition["properties"].items() if k not in names}
    return out


class _KindSections:
    """One section per registered compression kind, each with that kind's settings but its
    kind and sparsity (usual fields of the form); only the chosen kind's is read."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "object", "properties": {
            kind: _without(handler.resolve_ref_schema(handler(spec.config.__pydantic_core_schema__)), "kind", SIZE)
            | {"description": spec.summary} for kind, spec in COMPRESSIONS.items()}}


class _TeacherSection:
    """The teacher's model settings but its source (a usual field of the form)."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return _without(handler.resolve_ref_schema(handler(ModelSpec.__pydantic_core_schema__)), "source")


def _kind_defaults(kind: str) -> dict[str, Any]:
    """A kind's settings at their defaults, as the form holds them (empty for a kind with required settings)."""
    try:
        return COMPRESSIONS[kind].config().model_dump(mode="json", exclude={"kind", SIZE}, exclude_none=True)
    except ValidationError:
        return {}


def _all_kinds(value: Any) -> Any:
    """Every registered kind's section, at its defaults where not given (the form shows them all)."""
    return {kind: _kind_defaults(kind) for kind in COMPRESSIONS} | value if isinstance(value, dict) else value


KindSections = Annotated[dict[str, dict[str, Any]], BeforeValidator(_all_kinds), _KindSections()]
TeacherSection = Annotated[dict[str, Any], _TeacherSection()]
Kind = Annotated[str, Field(json_schema_extra=lambda schema: schema.update(enum=list(COMPRESSIONS)))]


def _tab_titles(schema: dict[str, Any], *titles: str) -> None:
    """Names for a union's tabs in the form (Prefect labels them by type: `str`, `FileTask`)."""
    for option, title in zip(schema.get("anyOf", []), titles):
        option["title"] = title


def _field(name: str, **override: Any) -> Any:
    """A RunConfig field's default and description, as the form shows it."""
    info = RunConfig.model_fields[name]
    return Field(getattr(RUN, name), **({"title": info.title, "description": info.description} | override))


class RmcParameters(Form):
    """The usual settings first, then the others by section."""

    # What a person sets for a usual run: the first screenful of the form.
    task: Task = _field("task", description="mnli (OOD: HANS), fever, qqp (PAWS), synthetic, or your own task declared "
                                            "in the tab \"your task\" (docs/usage.md, \"Your model, your data\")",
                        json_schema_extra=lambda schema: _tab_titles(schema, "built-in", "your task"))
    teacher: str = Field(RUN.teacher.source, title="Teacher",
                         description="minilm (packaged, offline), a hub name or a checkpoint folder; tiny: a random BERT "
                                     "for tests, which learns nothing (ID dev at chance)")
    compression: Kind = Field(RUN.student.compression.kind, title="Compression",
                              description="how each student is made from the teacher (each kind's settings and what "
                                          "it does: Compression settings, below)")
    sparsity: Sparsity | None = Field(None, title="Sparsity", description="share of the weights removed, in (0, 1), for "
                                      "pruned, masked and spd; empty: the kind's default")
    methods: tuple[Method, ...] = _field("methods")
    seeds: tuple[Seed, ...] = _field("seeds")
    store_root: str = Field("rmc-runs/store", title="Store", description="artifact store and results, shared to share the "
                            f"cache (relative: under {Path.cwd()})")
    # Advanced: every other setting, by section.
    data: DataConfig = _field("data")
    teacher_model: TeacherSection = Field(RUN.teacher.model_dump(mode="json", exclude={"source"}, exclude_none=True),
                                          title="Teacher model (advanced)",
                                          description="the teacher's settings besides its source")
    teacher_train: TrainConfig = _field("teacher_train")
    subnetworks: SubnetworkConfig = _field("subnetworks")
    compression_settings: KindSections = Field(
        default_factory=lambda: _all_kinds({}), title="Compression settings, by kind",
        description="each kind's own settings; only the chosen compression's section is read, and a change in "
                    "another kind's section is refused")
    student_train: TrainConfig = Field(RUN.student.train, title="Student training",
                                       description=StudentConfig.model_fields["train"].description)
    quantize: Quantize = Field(RUN.student.quantize, title="Quantize",
                               description=StudentConfig.model_fields["quantize"].description)
    method: MethodConfig = _field("method")
    method_settings: MethodSettings = _field("method_settings")
    evaluations: tuple[Evaluation, ...] = Field(default_factory=default_evaluations, title="Evaluations",
                                                description=RunConfig.model_fields["evaluations"].description)
    attack: AttackConfig = _field("attack")
    inference: InferenceCostConfig = _field("inference")
    evaluation_settings: EvaluationSettings = _field("evaluation_settings")
    devices: list[str] = Field(default_factory=list, description="e.g. ['cuda:0', 'cuda:1']; empty: every visible GPU, "
                               "else cpu. On a cluster: one entry per GPU stage that may run at once")
    runner: RunnerConfig = Field(RunnerConfig(), title="Task runner", description="where the stages run")
    _config: RunConfig = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _from_run_config(cls, value: Any) -> Any:
        """`RmcParameters(config=RunConfig(...), store_root=...)`: the run config spread over the form's fields."""
        if not isinstance(value, dict) or "config" not in value:
            return value
        rest = {k: v for k, v in value.items() if k != "config"}
        config = value["config"] if isinstance(value["config"], RunConfig) else RunConfig.model_validate(value["config"])
        return {**form_fields(config), **rest}

    @model_validator(mode="after")
    def _to_run_config(self) -> RmcParameters:
        kind = COMPRESSIONS.known(self.compression)
        spec = COMPRESSIONS[kind]
        if self.sparsity is not None and SIZE not in spec.config.model_fields:
            sized = ", ".join(k for k, s in COMPRESSIONS.items() if SIZE in s.config.model_fields)
            raise ValueError(f"sparsity applies to the kinds that have one ({sized}); {kind} is sized in its section "
                             f"of compression settings")
        unknown = sorted(set(self.compression_settings) - set(COMPRESSIONS))
        if unknown:
            raise ValueError(f"compression_settings.{unknown[0]}: no such compression (registered: {', '.join(COMPRESSIONS)})")
        for other, settings in self.compression_settings.items():
            defaults = _kind_defaults(other)
            if other != kind and settings != defaults:
                changed = sorted(k for k, v in settings.items() if defaults.get(k) != v)
                raise ValueError(f"compression_settings.{other} is changed ({', '.join(changed)}) but the compression is "
                                 f"{kind}: change the {kind} section, or choose {other}")
        own = self.compression_settings.get(kind, {})
        compression = {"kind": kind, **own, **({SIZE: self.sparsity} if self.sparsity is not None else {})}
        self._config = RunConfig.model_validate({
            "task": self.task, "data": self.data, "teacher": {"source": self.teacher, **self.teacher_model},
            "teacher_train": self.teacher_train, "subnetworks": self.subnetworks,
            "student": {"compression": compression, "train": self.student_train, "quantize": self.quantize},
            "methods": self.methods, "method": self.method, "method_settings": self.method_settings,
            "evaluations": self.evaluations, "inference": self.inference, "attack": self.attack,
            "evaluation_settings": self.evaluation_settings, "seeds": self.seeds})
        return self

    def reaches(self) -> list[Reach]:
        """What a served run of these parameters reaches, for the serve policy."""
        return [Reach("", self.store_root, self.config, self.runner.address)]

    @property
    def config(self) -> RunConfig:
        """The run config these parameters set (what the DAG, the cache keys and the reports read)."""
        return self._config


def form_fields(config: RunConfig) -> dict[str, Any]:
    """A run config as the form's fields (the inverse of `RmcParameters.config`)."""
    compression = config.student.compression
    sized = SIZE in type(compression).model_fields
    return {
        "task": config.task, "teacher": config.teacher.source,
        "compression": compression.kind, "sparsity": getattr(compression, SIZE) if sized else None,
        "methods": config.methods, "seeds": config.seeds,
        "data": config.data, "teacher_model": config.teacher.model_dump(mode="json", exclude={"source"}, exclude_none=True),
        "teacher_train": config.teacher_train, "subnetworks": config.subnetworks,
        "compression_settings": _all_kinds({compression.kind: compression.model_dump(mode="json", exclude={"kind", SIZE}, exclude_none=True)}),
        "student_train": config.student.train, "quantize": config.student.quantize,
        "method": config.method, "method_settings": config.method_settings, "evaluations": config.evaluations,
        "attack": config.attack, "inference": config.inference, "evaluation_settings": config.evaluation_settings,
    }

