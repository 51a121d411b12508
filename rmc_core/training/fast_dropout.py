"""Dropout whose random mask takes half torch's random draws on a CPU.

torch's CPU dropout draws one 32-bit number per element through a scalar generator
(`aten::bernoulli_`), and a BERT step draws 20 masks (embeddings, each layer's attention
probabilities and two hidden outputs, the classifier): on a 2-core AVX2 CPU, the largest
cost of a MiniLM step beside its matmuls. This mask gave 1.08x on such a step
(`python -m rmc.benchmarks.train_step_variants`, docs/results.md). The mask here is drawn
as 64-bit words, each cut into two 31-bit uniform integers compared with p * 2^31: half
the generator calls, and the same Bernoulli(1 - p) per element (p within 2^-31), scaled by
1 / (1 - p) as `nn.Dropout` is. The draws come from torch's seeded CPU generator, so
seeded runs stay identical run to run; they are not the draws `nn.Dropout` would make.

`faster_dropout(model)` applies it for the length of a training run on a CPU: every
`nn.Dropout` of the model draws this way, and attention (whose dropout sits inside
`scaled_dot_product_attention`, which draws through bernoulli too) runs
transformers' own math path with this dropout. On exit the model is as it was, its config
included: a saved or exported model never names this attention. On a GPU nothing changes
(its generator is fast).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "rmc_cpu_dropout"
_HALF = 2**31


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Bool mask, each element True with probability 1 - p (to within 2^-31)."""
    n = shape.numel()
    words = torch.empty((n + 1) // 2, dtype=torch.int64, device=device).random_()  # uniform on [0, 2^63)
    halves = words.view(torch.int32)[:n] & (_HALF - 1)  # two uniform 31-bit integers per word
    return (halves >= round(p * _HALF)).view(shape)


def apply_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout: zero with probability p, scale the rest by 1 / (1 - p)."""
    if p <= 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    return torch.where(keep_mask(x.shape, p, x.device), x * (1.0 / (1.0 - p)), 0.0)


class FastDropout(nn.Dropout):
    """`nn.Dropout` drawing its mask with `keep_mask` (an `nn.Dropout`, with its `p`, to
    anything that inspects it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_dropout(x, self.p) if self.training else x


def _attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
               **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """transformers' eager attention (scores, mask, softmax, dropout, values) with this
    module's dropout while training; sdpa otherwise (evaluation is untouched)."""
    if not (module.training and dropout > 0.0):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # sdpa's form: True where attending is allowed
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask
    weights = apply_dropout(torch.softmax(weights, dim=-1), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None




@contextlib.contextmanager
def faster_dropout(model: PreTrainedModel, device: str) -> Iterator[None]:
    """While training `model` on a CPU: its dropouts draw with `keep_mask`; restored on exit."""
    if torch.device(device).type != "cpu":
        yield
        return
    # Registered where used (idempotent), so that the code a training runs names `_attention`.
    AttentionInterface.register(ATTENTION, _attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the mask sdpa gets: bool, True where a query may attend
    swapped = [(model.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2], m)
               for name, m in model.named_modules() if type(m) is nn.Dropout]
    configs = [c for c in {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}.values()
               if getattr(c, "_attn_implementation", None) == "sdpa"]
    for parent, child, m in swapped:
        setattr(parent, child, FastDropout(m.p, m.inplace).train(m.training))
    for c in configs:
        c._attn_implementation = ATTENTION
    try:
        yield
    finally:
        for parent, child, m in swapped:
            setattr(parent, child, m)
        for c in configs:
            c._attn_implementation = "sdpa"
