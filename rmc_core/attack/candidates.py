"""Substitutes for a word: its nearest whole words in the reference encoder's input embeddings.

TextFooler takes the 50 nearest neighbours in counter-fitted word vectors (cosine >= 0.5),
which cannot be downloaded here. The input embeddings of the packaged MiniLM are the
closest offline stand-in: their neighbours are synonyms and inflections ("doctor":
physician, doctors; "lawyer": attorney, barrister), but, not counter-fitted, also some
antonyms ("good": bad; "outside": inside). The stopword list keeps negations and
quantifiers out of both sides, and the sentence-similarity floor and attack_examples.md
are there to catch the rest; docs/attack.md says so.
"""

from __future__ import annotations

import re

import torch

from rmc_core.attack.word_role import keeps_role
from rmc_core.attack.words import STOPWORDS

_WHOLE_WORD = re.compile(r"[a-z]{2,}")


class EmbeddingNeighbours:
    """word -> up to `k` substitutes, nearest first, each with cosine >= `min_cosine` and,
    with `keep_role`, the word's part of speech and inflection (word_role.py). Only whole
    lower-case words of the vocabulary (no "##" pieces, no stopwords) are candidates; a
    word the vocabulary holds only as pieces gets none, as a word missing from TextFooler's
    embeddings does."""

    def __init__(self, embeddings: torch.Tensor, vocabulary: list[str], k: int, min_cosine: float,
                 keep_role: bool = True) -> None:
        keep = [i for i, w in enumerate(vocabulary) if _WHOLE_WORD.fullmatch(w) and w not in STOPWORDS]
        self.words = [vocabulary[i] for i in keep]
        self.index = {w: j for j, w in enumerate(self.words)}
        self.vectors = torch.nn.functional.normalize(embeddings[keep].detach().float(), dim=1)
        self.k, self.min_cosine, self.keep_role = k, min_cosine, keep_role
        self._known: dict[str, list[str]] = {}

    def __call__(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self._known:
            self._known[key] = self._nearest(key)
        return self._known[key]

    def _nearest(self, word: str) -> list[str]:
        if word not in self.index:
            return []
        me = self.index[word]
        cosine = self.vectors @ self.vectors[me]
        cosine[me] = -2.0
        values, found = cosine.topk(min(self.k, len(self.words) - 1))
        near = [self.words[j] for v, j in zip(values.tolist(), found.tolist(), strict=True) if v >= self.min_cosine]
        return [w for w in near if keeps_role(word, w)] if self.keep_role else near

    @classmethod
    def of_encoder(cls, model: torch.nn.Module, tokenizer, k: int, min_cosine: float,
                   keep_role: bool = True) -> EmbeddingNeighbours:
        vocabulary = tokenizer.convert_ids_to_tokens(list(range(model.get_input_embeddings().weight.shape[0])))
        return cls(model.get_input_embeddings().weight, vocabulary, k, min_cosine, keep_role)
