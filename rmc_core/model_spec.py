"""Where an encoder comes from: the settings shared by the teacher, a distilled student's
encoder and the tiny test model (a module of its own, so that compressions can name an
encoder without importing the whole run config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from rmc_core.schema import Frozen, Int


# The encoder families rmc runs, by `config.model_type`: each compression says which of them
# it is built and tested for (CompressionSpec.architectures); preflight refuses the rest.
FAMILIES = ("bert", "roberta", "distilbert", "deberta-v2")


class TinyBertSpec(Frozen):
    """A small randomly initialised BERT, for tests and smoke runs; its WordPiece
    vocabulary is trained on the task's training texts."""

    hidden_size: Int = Field(64, ge=8, le=8192, description="width of every layer")
    num_hidden_layers: Int = Field(2, ge=1, le=96, description="encoder layers")
    num_attention_heads: Int = Field(2, ge=1, le=128, description="heads per layer (must divide hidden_size)")
    intermediate_size: Int = Field(128, ge=8, le=65536, description="FFN width")
    vocab_size: Int = Field(1000, ge=120, le=500_000, description="word-level vocabulary built from the training rows")
    max_position_embeddings: Int = Field(128, ge=16, le=8192, description="longest input in tokens")

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

    source: str = Field("minilm", description="minilm (packaged all-MiniLM-L6-v2, offline), a hub name or a local "
                        f"checkpoint folder (a relative path is read from {Path.cwd()} here), or tiny: a small random "
                        "BERT for tests, which checks that a run goes through but learns nothing with these training "
                        "settings (ID dev at chance, every comparison 0)")
    num_layers: Int | None = Field(None, ge=1, description="keep only the first num_layers encoder layers (empty: all)")
    tiny: TinyBertSpec = Field(TinyBertSpec(), title="Tiny BERT (source \"tiny\", for tests)", description="the tiny BERT's shape")
    fine_tuned: bool = Field(False, description="teacher only: the checkpoint is already fine-tuned on this task's labels "
                                                "and is used as it is (no teacher training); its id2label must name the "
                                                "task's labels, or map them with label_map")
    label_map: dict[str, str] | None = Field(None, description="teacher only, with fine_tuned: the checkpoint's label "
                                                               "name -> the task's label name")
    base: str | None = Field(None, description="teacher only, with fine_tuned: the encoder sub-networks and students "
                                               "start from (a hub name or local folder); empty: the teacher's own weights")
