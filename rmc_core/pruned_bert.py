"""BERT with a different number of attention heads and FFN neurons in every layer.

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
from transformers import BertConfig, BertForSequenceClassification


class PrunedBertConfig(BertConfig):
    """BertConfig plus the heads and FFN neurons each layer keeps.

    `hidden_size / num_attention_heads` stays the head size, as in the unpruned model.
    """

    model_type = "rmc_pruned_bert"

    def __init__(self, heads_per_layer: list[int] | None = None, intermediate_per_layer: list[int] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        layers = self.num_hidden_layers
        self.heads_per_layer = list(heads_per_layer or [self.num_attention_heads] * layers)
        self.intermediate_per_layer = list(intermediate_per_layer or [self.intermediate_size] * layers)
        if len(self.heads_per_layer) != layers or len(self.intermediate_per_layer) != layers:
            raise ValueError(f"heads_per_layer and intermediate_per_layer need one entry per layer ({layers})")
        if min(self.heads_per_layer) < 1 or min(self.intermediate_per_layer) < 1:
            raise ValueError("every layer keeps at least one head and one FFN neuron")


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig) -> None:
        super().__init__(config)
        head_size = config.hidden_size // config.num_attention_heads
        for layer, heads, neurons in zip(self.bert.encoder.layer, config.heads_per_layer, config.intermediate_per_layer):
            attention = layer.attention.self
            width = heads * head_size
            attention.query = nn.Linear(config.hidden_size, width)
            attention.key = nn.Linear(config.hidden_size, width)
            attention.value = nn.Linear(config.hidden_size, width)
            attention.num_attention_heads, attention.all_head_size = heads, width
            layer.attention.output.dense = nn.Linear(width, config.hidden_size)
            layer.intermediate.dense = nn.Linear(config.hidden_size, neurons)
            layer.output.dense = nn.Linear(neurons, config.hidden_size)
        self.post_init()


PrunedBertConfig.register_for_auto_class()
PrunedBertForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
