"""The bias-only model of the known-bias methods (objectives/known_bias.py): a classifier
that sees only what the bias is made of, so its confidence in the gold label says how much
a row can be solved by the shortcut alone.

Two kinds, after SRNets' code and the debiasing literature:
- "hypothesis-only": logistic regression on the second text's word uni- and bigrams. For
  NLI the hypothesis-only bias (Gururangan et al. 2018); for FEVER the claim-only bias
  (Schuster et al. 2019); on a task with an injected shortcut it sees the marker word.
- "bag-of-words": logistic regression on the (first) text's word uni- and bigrams: the
  surface bias of a single-text task (sentiment, topic), where there is no pair to split.
- "overlap": logistic regression on hand-made lexical-overlap features of the pair (how
  many of the second text's words the first contains, whether all of them or a contiguous
  run of them, negation words, the length ratio; McCoy et al. 2019's heuristics, the
  features SRNets uses for MNLI and QQP). The synthetic task's planted shortcut is word
  overlap, which this kind sees directly; the hypothesis-only one captures it too, since
  there the hypothesis's own words give it away (the easy rows reuse the premises' nouns
  and verbs, the hard ones synonyms): 0.998 right on the easy dev rows, 0.011 on the hard
  ones (docs/results.md).

Training rows are scored out of fold (5-fold cross-fitting): a model scoring the rows it
was fitted on would be near-certain on all of them, and the known-bias losses would then
treat every row as biased. Dev rows are scored by the model fitted on all training rows.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

BiasModel = Literal["hypothesis-only", "overlap", "bag-of-words"]
# The kinds that read both texts of a pair: refused by name on a single-text task.
PAIR_ONLY: tuple[str, ...] = ("hypothesis-only", "overlap")
NEGATIONS = frozenset({"no", "not", "never", "nobody", "nothing", "none", "neither", "nor", "n't", "nowhere"})
FOLDS = 5
_WORD = re.compile(r"n't|\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _contains_run(long: list[str], short: list[str]) -> bool:
    n = len(short)
    return n > 0 and any(long[i:i + n] == short for i in range(len(long) - n + 1))


def overlap_features(frame: pd.DataFrame) -> np.ndarray:
    """Per row: share of the second text's words in the first, of the first's in the
    second, all of them in it, a contiguous run of them in it, a negation in either text,
    and the log length ratio."""
    rows = []
    for a, b in zip(frame["text_a"], frame["text_b"]):
        wa, wb = _words(a), _words(b)
        sa, sb = set(wa), set(wb)
        in_a = sum(w in sa for w in wb) / max(1, len(wb))
        rows.append([in_a, sum(w in sb for w in wa) / max(1, len(wa)), float(in_a == 1.0), float(_contains_run(wa, wb)),
                     float(bool(sb & NEGATIONS)), float(bool(sa & NEGATIONS)), np.log((len(wb) + 1) / (len(wa) + 1))])
    return np.asarray(rows, dtype=np.float64)


def _classifier(kind: BiasModel) -> Pipeline:
    if kind in ("hypothesis-only", "bag-of-words"):
        side = "text_b" if kind == "hypothesis-only" else "text_a"
        return make_pipeline(FunctionTransformer(lambda f: f[side].tolist()),
                             CountVectorizer(ngram_range=(1, 2), min_df=2), LogisticRegression(max_iter=2000))
    return make_pipeline(FunctionTransformer(overlap_features), StandardScaler(), LogisticRegression(max_iter=2000))


def bias_probabilities(kind: BiasModel, train: pd.DataFrame, dev: pd.DataFrame, n_labels: int,
                       seed: int) -> dict[str, np.ndarray]:
    """Class probabilities of the bias-only model: out of fold on train, fitted on all of
    train for dev. Every label needs at least FOLDS training rows."""
    labels = train["label"].to_numpy(dtype=int)
    counts = np.bincount(labels, minlength=n_labels)
    if counts.min() < FOLDS:
        raise ValueError(f"the bias-only model is cross-fitted over {FOLDS} folds and needs at least {FOLDS} training rows "
                         f"per label; got {counts.tolist()}")
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    train_probs = cross_val_predict(_classifier(kind), train, labels, cv=folds, method="predict_proba")
    dev_probs = _classifier(kind).fit(train, labels).predict_proba(dev)
    return {"train": train_probs, "dev": dev_probs}
