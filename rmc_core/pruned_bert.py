"""BERT and RoBERTa with a different number of attention heads and FFN neurons in every layer.

transformers 5 dropped `prune_heads`, and its BertConfig has one head count for all
layers (head size = hidden / heads), so a structurally pruned encoder cannot be saved as
a plain BertConfig. This module is the smallest extension that can: a config with
per-layer counts, and a model that builds each layer's linear maps at those sizes. The
attention forward is transformers' own (it infers the head count from the query width).

The file is self-contained (torch and transformers only) because `save_pretrained` copies
it into every structured checkpoint, so that plain transformers loads one with
`AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)`, or
`pipeline("text-classification", model=path, trust_remote_code=True)`, without rmc.
"""

from __future__ import annotations

from torch import nn
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification


def _per_layer_counts(config: BertConfig | RobertaConfig, heads_per_layer: list[int] | None,
                      intermediate_per_layer: list[int] | None) -> None:
    layers = config.num_hidden_layers
    config.heads_per_layer = list(heads_per_layer or [config.num_attention_heads] * layers)
    config.intermediate_per_layer = list(intermediate_per_layer or [config.intermediate_size] * layers)
    if len(config.heads_per_layer) != layers or len(config.intermediate_per_layer) != layers:
        raise ValueError(f"heads_per_layer and intermediate_per_layer need one entry per layer ({layers})")
    if min(config.heads_per_layer) < 1 or min(config.intermediate_per_layer) < 1:
        raise ValueError("every layer keeps at least one head and one FFN neuron")


def _resize(layers: nn.ModuleList, config: BertConfig | RobertaConfig) -> None:
    """Each layer's linear maps at its kept heads' and neurons' sizes (BERT and RoBERTa
    layers have the same layout)."""
    head_size = config.hidden_size // config.num_attention_heads
    for layer, heads, neurons in zip(layers, config.heads_per_layer, config.intermediate_per_layer):
        attention = layer.attention.self
        width = heads * head_size
        attention.query = nn.Linear(config.hidden_size, width)
        attention.key = nn.Linear(config.hidden_size, width)
        attention.value = nn.Linear(config.hidden_size, width)
        attention.num_attention_heads, attention.all_head_size = heads, width
        layer.attention.output.dense = nn.Linear(width, config.hidden_size)
        layer.intermediate.dense = nn.Linear(config.hidden_size, neurons)
        layer.output.dense = nn.Linear(neurons, config.hidden_size)


class PrunedBertConfig(BertConfig):
    """BertConfig plus the heads and FFN neurons each layer keeps.

    `hidden_size / num_attention_heads` stays the head size, as in the unpruned model.
    """

    model_type = "rmc_pruned_bert"

    def __init__(self, heads_per_layer: list[int] | None = None, intermediate_per_layer: list[int] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        _per_layer_counts(self, heads_per_layer, intermediate_per_layer)


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig) -> None:
        super().__init__(config)
        _resize(self.bert.encoder.layer, config)
        self.post_init()


class PrunedRobertaConfig(RobertaConfig):
    """RobertaConfig plus the heads and FFN neurons each layer keeps."""

    model_type = "rmc_pruned_roberta"

    def __init__(self, heads_per_layer: list[int] | None = None, intermediate_per_layer: list[int] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        _per_layer_counts(self, heads_per_layer, intermediate_per_layer)


class PrunedRobertaForSequenceClassification(RobertaForSequenceClassification):
    config_class = PrunedRobertaConfig

    def __init__(self, config: PrunedRobertaConfig) -> None:
        super().__init__(config)
        _resize(self.roberta.encoder.layer, config)
        self.post_init()


# The structured student of each encoder family, by the teacher's model_type.
PRUNED_OF = {"bert": (PrunedBertConfig, PrunedBertForSequenceClassification),
             "roberta": (PrunedRobertaConfig, PrunedRobertaForSequenceClassification)}

for _config, _model in PRUNED_OF.values():
    _config.register_for_auto_class()
    _model.register_for_auto_class("AutoModelForSequenceClassification")
