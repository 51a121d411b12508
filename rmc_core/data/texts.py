"""The texts of a canonical frame: one text (`text_a`) or a pair (`text_a`, `text_b`).

A single-text task's frame has no `text_b` column; every tokenizer call and every reader of
the texts goes through these helpers, so that one text is encoded as one text (a pair with
an empty second half would add a separator the model never saw in fine-tuning).
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

# How a file's texts were word-tokenized, when they were: "treebank" is the Penn Treebank
# style of robust-nli's hard subsets ("do n't", "child 's", " ." and `` quotes).
Detokenize = Literal["treebank"]


def is_pair(frame: pd.DataFrame) -> bool:
    return "text_b" in frame.columns


def second_texts(frame: pd.DataFrame) -> list[str] | None:
    """The second texts, or None for single-text rows (what tokenizers take as `text_pair`)."""
    return frame["text_b"].tolist() if is_pair(frame) else None


def all_texts(frame: pd.DataFrame) -> list[str]:
    """Every text of the rows (both sides of a pair): a vocabulary's training material."""
    return frame["text_a"].tolist() + (frame["text_b"].tolist() if is_pair(frame) else [])


def detokenized(texts: pd.Series, style: Detokenize) -> pd.Series:
    """Word-tokenized texts joined back into raw text, so that a subword tokenizer sees them
    as it saw the training rows ("don't", not "do n't": BERT's tokenizer splits the two
    differently). NLTK's Treebank detokenizer inverts the Treebank tokenizer's rules."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    join = TreebankWordDetokenizer().detokenize
    return texts.map(lambda text: join(text.split()))
