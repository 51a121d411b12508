"""The compressions: each way of making a student is one `CompressionSpec`, registered once.

A spec says everything the rest of rmc needs to know about its kind: its settings (a
`CompressionConfig` subclass, selected in `StudentConfig.compression` by `kind`), how
the student's starting model is made from the teacher's base (`prepare`; none: the base
itself), the training hooks that compress it (`hooks`), what preflight checks before any
training (`check`), and how its students are named and described in tables (`label`,
`sparsity`). The pipeline, preflight, the run form, the reports, the experiments and
the cache keys read this registry; nothing outside a spec branches on its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from rmc_core.registry import Registry
from rmc_core.schema import Frozen

if TYPE_CHECKING:  # the run config imports this registry and stays torch-free
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from rmc_core.training.hooks import Hook


class CompressionConfig(Frozen):
    """The settings of one compression; a subclass fixes `kind` and adds its own fields."""

    model_config = ConfigDict(title="Compression")
    kind: str


@dataclass(frozen=True)
class StudentInit:
    """What `prepare` may use besides the base model: the task's labels, the training
    texts (a tiny model's vocabulary is trained on them) and the training seed."""

    labels: tuple[str, ...]
    texts: list[str]
    seed: int


Prepare = Callable[[Any, "PreTrainedModel", "PreTrainedTokenizerBase", StudentInit],
                   tuple["PreTrainedModel", "PreTrainedTokenizerBase"]]


@dataclass(frozen=True)
class CompressionSpec:
    """One way of making a student.

    label(cfg): the model-name prefix (imp40, h20n40, L3); names are for people, tables
    carry `compression` and `sparsity` columns. sparsity(cfg): the nominal fraction of the
    teacher's encoder weights removed (what a user asked for; achieved figures come from
    training). check(cfg, teacher_config, task_labels) -> the student's model config,
    raising ValueError for settings that cannot work with this teacher or task.
    """

    kind: str
    summary: str
    config: type[CompressionConfig]
    label: Callable[[Any], str]
    sparsity: Callable[[Any], float]
    hooks: Callable[[Any], list["Hook"]] = lambda cfg: []
    prepare: Prepare | None = None
    # Which model training starts from: "base" (the pre-trained encoder with the task's
    # head, or what `prepare` makes of it) or "teacher" (the fine-tuned teacher: masks
    # searched on it, SRNets' scenario 1).
    starts_from: Callable[[Any], str] = lambda cfg: "base"
    # A compression whose mask is searched by another one first (SRNets' scenario 2: the
    # scenario-1 mask, by the same method), then put on the starting model.
    mask_from: Callable[[Any], CompressionConfig | None] = lambda cfg: None
    check: Callable[[Any, "PretrainedConfig", tuple[str, ...]], "PretrainedConfig"] = lambda cfg, teacher, labels: teacher
    # The teacher architectures (`config.model_type`) this kind is built and tested for;
    # preflight refuses any other by name before anything trains.
    architectures: tuple[str, ...] = ("bert",)

    def __post_init__(self) -> None:
        declared = self.config.model_fields["kind"].default
        if declared != self.kind:
            raise ValueError(f"compression {self.kind!r}: its config's kind defaults to {declared!r}")


COMPRESSIONS: Registry[CompressionSpec] = Registry("compression kind")


def register(spec: CompressionSpec) -> CompressionSpec:
    return COMPRESSIONS.add(spec.kind, spec)


def validate_compression(value: Any) -> CompressionConfig:
    """A compression's settings, validated by the config of the kind they name (default
    "pruned"), so that a kind registered after import is accepted like the built-in ones."""
    if isinstance(value, CompressionConfig):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"student.compression must be an object with a `kind`, got {value!r}")
    return COMPRESSIONS[COMPRESSIONS.known(value.get("kind", "pruned"))].config.model_validate(value)


def spec_of(cfg: CompressionConfig) -> CompressionSpec:
    return COMPRESSIONS[cfg.kind]
