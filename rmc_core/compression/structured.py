"""Structured pruning of attention heads and FFN neurons during fine-tuning.

Head importance (Michel et al. 2019; the paper's Appendix A): I(h, l) = E_x |dL(x)/d xi(h, l)|,
xi a gate multiplying head h's output in layer l. The gates here multiply the input of the
attention output projection (each head's slice of the context) and of the FFN output
projection (each intermediate neuron), which is what a head mask does, with transformers 5
having dropped head masks. L is the training objective, so under RMC the smoothed
distillation loss decides which heads go, as Eq. 3 decides IMP's weights.

Importances are |gradient| summed over the steps since the last pruning event, normalised
per layer (L2, as the bertology example) and ranked globally; pruning follows IMP's cubic
ramp, and a pruned unit's gate stays 0. Every layer keeps at least one head and one neuron.
`finish` rebuilds the model without the pruned units (`pruned_bert`), physically smaller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from rmc_core.pruned_bert import PRUNED_OF
from rmc_core.compression.schedule import cubic_ramp
from rmc_core.compression.structured_config import StructuredConfig, targets
from rmc_core.training.hooks import Hook


def head_size(config: PretrainedConfig) -> int:
    return config.hidden_size // config.num_attention_heads


@dataclass
class Gates:
    """One gate per head and per FFN neuron of every layer, each a leaf tensor whose
    gradient is the unit's importance signal; value 1 keeps the unit, 0 prunes it."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]
    handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _scale_input(gate: torch.Tensor, repeat: int):
    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (args[0] * gate.repeat_interleave(repeat).to(args[0].dtype), *args[1:])
    return hook


def attach_gates(model: PreTrainedModel) -> Gates:
    """Gates on every head and FFN neuron of a BERT encoder, as forward pre-hooks."""
    config, layers = model.config, model.base_model.encoder.layer
    like = {"device": next(model.parameters()).device, "dtype": next(model.parameters()).dtype, "requires_grad": True}
    gates = Gates(
        heads=[torch.ones(layer.attention.self.query.out_features // head_size(config), **like) for layer in layers],
        neurons=[torch.ones(layer.intermediate.dense.out_features, **like) for layer in layers],
    )
    for layer, heads, neurons in zip(layers, gates.heads, gates.neurons):
        gates.handles.append(layer.attention.output.dense.register_forward_pre_hook(_scale_input(heads, head_size(config))))
        gates.handles.append(layer.output.dense.register_forward_pre_hook(_scale_input(neurons, 1)))
    return gates


def prune_lowest(gates: list[torch.Tensor], importance: list[torch.Tensor], count: int) -> None:
    """Close gates until `count` are closed in all, lowest importance first.

    Importance is L2-normalised within each layer over its open units, then ranked across
    layers; ties go to the lower layer and index, so a run is reproducible. The last open
    unit of a layer is never closed."""
    closed = sum(int((g == 0).sum()) for g in gates)
    candidates = []
    for layer, (gate, score) in enumerate(zip(gates, importance)):
        open_ = gate.detach() != 0
        scaled = score * open_ / score[open_].norm().clamp_min(1e-20)
        candidates += [(float(scaled[i]), layer, i) for i in torch.nonzero(open_).flatten().tolist()]
    left = [int((g != 0).sum()) for g in gates]
    with torch.no_grad():
        for _, layer, i in sorted(candidates):
            if closed >= count:
                break
            if left[layer] > 1:
                gates[layer][i] = 0.0
                left[layer] -= 1
                closed += 1


def compact(model: PreTrainedModel, gates: Gates) -> PreTrainedModel:
    """The model without its closed heads and neurons: each layer's Q/K/V rows and output
    projection columns of the kept heads, and the kept rows/columns of the FFN."""
    config = model.config
    size = head_size(config)
    kept_heads = [torch.nonzero(g.detach()).flatten().cpu() for g in gates.heads]
    kept_neurons = [torch.nonzero(g.detach()).flatten().cpu() for g in gates.neurons]
    fields = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures", "auto_map", "transformers_version")}
    pruned_config, pruned_model = PRUNED_OF[config.model_type]
    small_config = pruned_config(**{**fields, "heads_per_layer": [len(k) for k in kept_heads],
                                    "intermediate_per_layer": [len(k) for k in kept_neurons]})
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    prefix = model.base_model_prefix
    for i, (heads, neurons) in enumerate(zip(kept_heads, kept_neurons)):
        columns = (heads[:, None] * size + torch.arange(size)).flatten()
        layer = f"{prefix}.encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            state[f"{layer}{name}.weight"] = state[f"{layer}{name}.weight"][columns]
            state[f"{layer}{name}.bias"] = state[f"{layer}{name}.bias"][columns]
        state[f"{layer}attention.output.dense.weight"] = state[f"{layer}attention.output.dense.weight"][:, columns]
        state[f"{layer}intermediate.dense.weight"] = state[f"{layer}intermediate.dense.weight"][neurons]
        state[f"{layer}intermediate.dense.bias"] = state[f"{layer}intermediate.dense.bias"][neurons]
        state[f"{layer}output.dense.weight"] = state[f"{layer}output.dense.weight"][:, neurons]
    small = pruned_model(small_config)
    small.load_state_dict(state, strict=True)
    return small.to(next(model.parameters()).device).eval()


def prunable_params(config: PretrainedConfig, heads: list[int], neurons: list[int]) -> int:
    """Weights and biases of the encoder's linear maps at the given per-layer sizes."""
    hidden, size = config.hidden_size, head_size(config)
    return sum(3 * (hidden + 1) * h * size + (h * size + 1) * hidden + (hidden + 1) * n + (n + 1) * hidden
               for h, n in zip(heads, neurons))


class StructuredPruning(Hook):
    """Gradual head/neuron pruning as training events, the structured counterpart of IMP's
    hook: gates attached at the start, importances read after each optimizer step, the
    model rebuilt physically smaller at the end."""

    def __init__(self, cfg: StructuredConfig) -> None:
        self.cfg = cfg
        self.applied, self.figures = 0.0, {}

    def on_train_begin(self, model: PreTrainedModel, total_steps: int) -> None:
        self.model, self.total_steps = model, total_steps
        self.gates = attach_gates(model)
        self.head_target, self.neuron_target = targets(model.config, self.cfg)
        self.head_score = [torch.zeros_like(g) for g in self.gates.heads]
        self.neuron_score = [torch.zeros_like(g) for g in self.gates.neurons]

    @torch.no_grad()
    def on_step_end(self, step: int) -> None:
        for gates, scores in ((self.gates.heads, self.head_score), (self.gates.neurons, self.neuron_score)):
            for gate, score in zip(gates, scores):
                if gate.grad is not None:
                    score += gate.grad.abs()
                    gate.grad = None
        progress = cubic_ramp(step, self.total_steps, self.cfg.schedule)
        if progress > self.applied:
            self._prune(progress)

    def _prune(self, progress: float) -> None:
        prune_lowest(self.gates.heads, self.head_score, round(progress * self.head_target))
        prune_lowest(self.gates.neurons, self.neuron_score, round(progress * self.neuron_target))
        for score in (*self.head_score, *self.neuron_score):
            score.zero_()
        self.applied = progress

    def on_train_end(self, model: PreTrainedModel) -> PreTrainedModel:
        """Reach the target if the schedule has not, and rebuild the model without the
        pruned units; the report counts them and the encoder weights removed."""
        if self.applied < 1.0:
            self._prune(1.0)
        self.gates.remove()
        small = compact(model, self.gates)
        config = model.config
        heads, neurons = small.config.heads_per_layer, small.config.intermediate_per_layer
        layers = config.num_hidden_layers
        dense = prunable_params(config, [config.num_attention_heads] * layers, [config.intermediate_size] * layers)
        self.figures = {
            "sparsity": 1.0 - prunable_params(config, heads, neurons) / dense,
            "heads_pruned": float(layers * config.num_attention_heads - sum(heads)),
            "heads_total": float(layers * config.num_attention_heads),
            "neurons_pruned": float(layers * config.intermediate_size - sum(neurons)),
            "neurons_total": float(layers * config.intermediate_size),
            "prunable_params": float(dense),
        }
        return small

    def report(self) -> dict[str, float]:
        return self.figures
