"""Validated run configuration.

Every value a user can set is checked here, once, before any data is read or any model
trained: a bad alpha found after five sub-network fine-tunes costs hours. Downstream code
trusts these objects and does not re-check them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from rmc_core.methods import METHODS, MethodConfig
from rmc_core.schema import Frozen, Int, Real, Sparsity

# Closed choices are Literals so that the Prefect run form shows them as drop-downs.
# TaskName lists rmc_core.data.registry.TASKS (a test keeps the two equal).
TaskName = Literal["mnli", "fever", "qqp", "synthetic"]
Precision = Literal["auto", "fp32", "bf16"]
Batching = Literal["auto", "grouped", "random"]


def _registered(name: str) -> str:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}")
    return name


# A method name, checked against the registry when the config is validated (so a method
# registered after import is accepted) and offered as a drop-down of the registered ones.
Method = Annotated[str, AfterValidator(_registered),
                   Field(json_schema_extra=lambda schema: schema.update(enum=list(METHODS)))]


class TinyBertSpec(Frozen):
    """A small randomly initialised BERT, for tests and smoke runs; its WordPiece
    vocabulary is trained on the task's training texts."""

    hidden_size: Int = Field(64, ge=8)
    num_hidden_layers: Int = Field(2, ge=1)
    num_attention_heads: Int = Field(2, ge=1)
    intermediate_size: Int = Field(128, ge=8)
    vocab_size: Int = Field(1000, ge=120)
    max_position_embeddings: Int = Field(128, ge=16)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TinyBertSpec:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        return self


class ModelSpec(Frozen):
    """Where an encoder comes from.

    source: "minilm" (the packaged all-MiniLM-L6-v2, works offline), "tiny" (see `tiny`),
    a Hugging Face hub name, or a local directory holding a transformers checkpoint.
    num_layers keeps only the first k encoder layers (a cheap distilled student).
    """

    source: str = "minilm"
    num_layers: Int | None = Field(None, ge=1)
    tiny: TinyBertSpec = Field(TinyBertSpec(), title="Tiny BERT (source \"tiny\")")


class TrainConfig(Frozen):
    """One fine-tuning run: AdamW with a linear schedule and warm-up, and its prediction settings."""

    epochs: Real = Field(1.0, gt=0)
    lr: Real = Field(5e-5, gt=0)
    batch_size: Int = Field(32, ge=1)
    eval_batch_size: Int = Field(128, ge=1)
    warmup_ratio: Real = Field(0.1, ge=0, lt=1)
    weight_decay: Real = Field(0.01, ge=0)
    max_length: Int = Field(128, ge=8)
    seed: Int = 0
    precision: Precision = Field("auto", description="auto: bf16 autocast where the device computes bf16 natively, else fp32")
    batching: Batching = Field(
        "auto", description="grouped: rows of similar length batched together (less padding); auto: grouped unless "
                            "that skews batches' label mix (length predicts the label), then random")


class PruneConfig(Frozen):
    """Iterative magnitude pruning inside fine-tuning, on a cubic schedule (Zhu & Gupta).

    Sparsity ramps from 0 at `start` to the target at `end` (both fractions of the
    training steps) in `events` mask updates; the steps after `end` let the network
    recover at its final sparsity.
    """

    sparsity: Sparsity
    scope: Literal["per_matrix", "global"] = "per_matrix"
    start: Real = Field(0.0, ge=0, lt=1)
    end: Real = Field(0.7, gt=0, le=1)
    events: Int = Field(10, ge=1)

    @model_validator(mode="after")
    def _start_before_end(self) -> PruneConfig:
        if self.start >= self.end:
            raise ValueError(f"prune start ({self.start}) must come before end ({self.end})")
        return self


class StructuredPruneConfig(Frozen):
    """Attention heads and FFN neurons removed during fine-tuning, ranked by the gradient of
    the training loss w.r.t. their gates (rmc_core/structured.py), on IMP's cubic ramp.

    The model that comes out is physically smaller: a checkpoint with per-layer head and
    neuron counts that plain transformers loads with trust_remote_code=True.
    """

    heads: Real = Field(0.2, ge=0, lt=1, description="fraction of all attention heads pruned (paper Table 3: 28 of 144, ~20 %)")
    neurons: Real = Field(0.0, ge=0, lt=1, description="fraction of all FFN intermediate neurons pruned")
    start: Real = Field(0.0, ge=0, lt=1)
    end: Real = Field(0.7, gt=0, le=1)
    events: Int = Field(10, ge=1)

    @model_validator(mode="after")
    def _prunes_something(self) -> StructuredPruneConfig:
        if self.heads == 0 and self.neurons == 0:
            raise ValueError("structured pruning needs heads > 0 or neurons > 0")
        if self.start >= self.end:
            raise ValueError(f"prune start ({self.start}) must come before end ({self.end})")
        return self


class DataConfig(Frozen):
    """Which rows to use. Limits exist to fit a CPU budget; the benchmark documents them."""

    source: Literal["local", "hub"] = "local"
    data_root: Path = Path("../shared/data")
    max_train: Int | None = Field(None, ge=1)
    max_dev: Int | None = Field(None, ge=1)
    max_ood: Int | None = Field(None, ge=1, description="per OOD set, stratified by label (and heuristic)")
    seed: Int = 0
    synthetic_train: Int = Field(2000, ge=10)
    synthetic_dev: Int = Field(1500, ge=10)
    synthetic_ood: Int = Field(1000, ge=10)
    synthetic_bias: Real = Field(0.9, ge=0.5, le=1.0, description="shortcut strength: P(word overlap agrees with the label) "
                                                                  "on entailment and neutral rows of train/dev")
    synthetic_order: Real = Field(0.0, ge=0.0, le=1.0, description="rule difficulty: share of the hard non-entailed rows "
                                                                    "that need word order (role swaps) rather than a lexical check")


class SubnetworkConfig(Frozen):
    """The pruned sub-networks whose loss variance measures difficulty.

    estimator "imp" (the paper): each sub-network is fine-tuned from the base encoder with
    IMP to its sparsity, five extra fine-tunes. "oneshot" (cheap): the trained teacher is
    pruned by magnitude to each sparsity, then fine-tuned `recovery_epochs` at that
    sparsity (0: none). Variance is only informative while every sub-network still works
    (docs/method.md, deviations), so a run reports the agreement of whatever estimator it used.
    """

    sparsities: tuple[Sparsity, ...] = (0.2, 0.4, 0.6, 0.7, 0.85)
    scope: Literal["per_matrix", "global"] = "per_matrix"
    estimator: Literal["imp", "oneshot"] = "imp"
    recovery_epochs: Real = Field(0.0, ge=0)
    train: TrainConfig = Field(TrainConfig(epochs=2), title="Sub-network training")

    @field_validator("sparsities")
    @classmethod
    def _at_least_two(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) < 2:
            raise ValueError("a variance needs at least two sub-networks")
        if len({round(x * 100) for x in v}) != len(v):
            raise ValueError(f"sub-network sparsities must differ (in whole percent): {v}")
        return v


class StudentConfig(Frozen):
    """The compressed model: the teacher architecture pruned by IMP ("pruned"), by heads and
    neurons ("structured"), or a smaller encoder ("distilled")."""

    kind: Literal["pruned", "structured", "distilled"] = "pruned"
    sparsity: Sparsity = 0.4
    structured: StructuredPruneConfig = Field(StructuredPruneConfig(), title="Structured pruning (kind \"structured\")")
    model: ModelSpec | None = Field(None, title="Distilled student's encoder",
                                    description="default: the teacher's base truncated to num_layers")
    num_layers: Int = Field(3, ge=1)
    train: TrainConfig = Field(TrainConfig(epochs=2), title="Student training")


class InferenceCostConfig(Frozen):
    """The size and CPU-speed table measured once every model of a run is trained
    (rmc_core/inference_cost.py): on the first `rows` dev rows, the median of `repeats`
    rounds in which every model runs in turn."""

    rows: Int = Field(64, ge=1)
    batch_size: Int = Field(32, ge=1)
    repeats: Int = Field(9, ge=1, description="rounds; speed-up intervals need at least 6")


class RunConfig(Frozen):
    """Everything one RMC run needs; the unit that is validated, hashed and reported.

    The defaults are the demo: the synthetic task's sweep design (benchmarks/synthetic_sweep.py)
    at shortcut strength 0.9, one seed, Vanilla and RMC. The teacher trains 3 epochs because
    that is what the MiniLM teacher needs to learn the synthetic task's rule, not only its
    shortcut (docs/results.md).
    """

    task: TaskName = "synthetic"
    data: DataConfig = Field(DataConfig(), title="Data")
    teacher: ModelSpec = Field(ModelSpec(), title="Teacher model")
    teacher_train: TrainConfig = Field(TrainConfig(epochs=3), title="Teacher training")
    subnetworks: SubnetworkConfig = Field(SubnetworkConfig(), title="Sub-networks (difficulty estimation)")
    student: StudentConfig = Field(StudentConfig(), title="Student (compressed model)")
    methods: tuple[Method, ...] = ("vanilla", "rmc")
    method: MethodConfig = Field(MethodConfig(), title="Method hyper-parameters")
    inference: InferenceCostConfig = Field(InferenceCostConfig(), title="Inference cost measurement")
    seeds: tuple[Annotated[Int, Field(ge=0)], ...] = Field(
        (0,), description="one cached branch of the DAG per seed, added to every training seed; the data sample stays "
                          "fixed, so methods and seeds are compared on the same rows")

    @field_validator("methods", "seeds")
    @classmethod
    def _listed_once(cls, v: tuple, info: ValidationInfo) -> tuple:
        if not v:
            raise ValueError(f"at least one {info.field_name.removesuffix('s')} is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"{info.field_name} listed twice: {v}")
        return v
