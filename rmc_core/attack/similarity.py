"""How close a changed sentence stays to the original: the cosine of their mean-pooled
reference-encoder embeddings (how all-MiniLM-L6-v2 is meant to be used as a sentence
encoder), in place of TextFooler's Universal Sentence Encoder. The attacked sentences
(a hypothesis, a claim, a question) are short, so the whole sentence is compared rather
than TextFooler's 15-word window around the change."""

from __future__ import annotations

import numpy as np
import torch


class SentenceSimilarity:
    """similarity(original, texts) -> cosine of each text to the original."""

    def __init__(self, model: torch.nn.Module, tokenizer, batch_size: int = 64, max_length: int = 128) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        self._originals: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1))
        return torch.cat(out)

    def __call__(self, original: str, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty(0)
        if original not in self._originals:
            self._originals = {original: self.embed([original])[0]}
        return (self.embed(texts) @ self._originals[original]).numpy().astype(np.float64)
