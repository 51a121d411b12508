"""A smaller encoder as the student: the teacher's base cut to its first layers (the cheap
distilled student), or another encoder altogether (e.g. MiniLM for a BERT-base teacher)."""

from __future__ import annotations

from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from rmc_core.compression.distilled_config import DistilledConfig
from rmc_core.compression.registry import StudentInit
from rmc_core.models import build_base, check_labels, encoder_config, truncate_layers


def prepare(cfg: DistilledConfig, base: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
            init: StudentInit) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if cfg.model is not None:
        return build_base(cfg.model, init.labels, init.texts, init.seed)
    return truncate_layers(base, cfg.num_layers), tokenizer


def check(cfg: DistilledConfig, teacher: PretrainedConfig, labels: tuple[str, ...]) -> PretrainedConfig:
    if cfg.model is not None:
        check_labels(cfg.model, labels, "student")
        return encoder_config(cfg.model)
    if cfg.num_layers > teacher.num_hidden_layers:
        raise ValueError(f"student.compression.num_layers={cfg.num_layers}: the teacher has only "
                         f"{teacher.num_hidden_layers} encoder layers to keep")
    return teacher
