"""The attack's fixed reference encoder: the packaged all-MiniLM-L6-v2, not fine-tuned.

Its input embeddings propose the substitutes and its mean-pooled sentence embedding judges
how close a changed sentence stays. Neither comes from the model under attack, so every
model of a run (teacher, students, int8 copies) meets the same candidates and the same
similarity floor, and differences in accuracy under attack are the models', not the
attack's. It is a sentence-transformers model trained for sentence similarity, which is
why it can stand in for TextFooler's Universal Sentence Encoder offline.
"""

from __future__ import annotations

from functools import lru_cache

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rmc_core.models import packaged_minilm


@lru_cache(maxsize=1)
def reference_encoder() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Loaded once per process (about a second), in eval mode on the CPU."""
    path = packaged_minilm()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
