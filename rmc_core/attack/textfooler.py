"""TextFooler's search (Jin et al., 2020, Algorithm 1), one row at a time.

1. Word importance by deletion: for each word, the drop in the probability of the
   predicted class when the word is removed, plus, where the removal flips the
   prediction, the gain of the new class (their Eq. 2).
2. In that order, each replaceable word's candidates (candidates.py) are put in its place;
   those whose sentence stays at least `min_similarity` close to the original are
   queried. If any flips the prediction, the closest of those is the adversarial text;
   otherwise the one that lowers the original class's probability most is kept (if it
   lowers it at all) and the next word is tried.
3. The search stops when the prediction flips or the words are used up. At most
   `max_changed` of the sentence's words (at least one) may change: a substitution that
   does not flip the prediction is kept only while the budget leaves room for another,
   so the last word of the budget is tried at every remaining position (TextFooler
   would stop at the first; with a one-word budget this makes the search find every
   single-word flip an exhaustive search finds, which tests/test_attack.py checks).

Every sentence the model scores counts as a query: the original, each deletion, each
candidate that passes the similarity floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rmc_core.attack.words import Words

# Class probabilities of each text (the attacked side of the pair; the other side fixed).
Victim = Callable[[list[str]], np.ndarray]
Candidates = Callable[[str], list[str]]
Similarity = Callable[[str, list[str]], np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """One attacked row. `success`: the model was right and the attack made it wrong;
    `similarity` and `changed` describe the text it ends with (the original when it
    failed); `queries` 1 when the model was already wrong (not attacked)."""

    pred_before: int
    pred_after: int
    success: bool
    queries: int
    changed: int
    words: int
    similarity: float
    adversarial: str

    @property
    def changed_share(self) -> float:
        return self.changed / self.words if self.words else 0.0


def word_budget(words: int, max_changed: float) -> int:
    """Most words one attack may change: a share of the sentence, at least one."""
    return max(1, math.floor(max_changed * words))


def importance(original: np.ndarray, deleted: np.ndarray, label: int) -> np.ndarray:
    """TextFooler's Eq. 2 for each deletion: p_y(x) - p_y(x without w), plus, where the
    deletion makes another class ŷ the prediction, p_ŷ(x without w) - p_ŷ(x)."""
    now = deleted.argmax(axis=1)
    rows = np.arange(len(deleted))
    flip = (now != label) * (deleted[rows, now] - original[now])
    return original[label] - deleted[:, label] + flip


def attack_row(text: str, label: int, victim: Victim, candidates: Candidates, similarity: Similarity,
               max_changed: float, min_similarity: float) -> Outcome:
    """Attack one row whose gold label is `label` (rows the model already gets wrong are
    returned unattacked, as TextAttack skips them)."""
    words = Words.of(text)
    start = victim([text])[0]
    predicted = int(start.argmax())
    if predicted != label or len(words) == 0:
        return Outcome(predicted, predicted, False, 1, 0, len(words), 1.0, text)
    queries = 1
    deleted = victim([words.delete(i) for i in range(len(words))])
    queries += len(words)
    scores = importance(start, deleted, label)
    order = [i for i in np.argsort(-scores, kind="stable") if words.replaceable(int(i))]
    budget = word_budget(len(words), max_changed)
    changes: dict[int, str] = {}
    current = start
    for i in map(int, order):
        options = [c for c in candidates(words.word(i)) if c != words.word(i).lower()]
        texts = [words.replace(changes | {i: c}) for c in options]
        close = similarity(text, texts)
        keep = [k for k, s in enumerate(close) if s >= min_similarity]
        if not keep:
            continue
        probs = victim([texts[k] for k in keep])
        queries += len(keep)
        flipped = [j for j, p in enumerate(probs) if p.argmax() != label]
        if flipped:
            best = max(flipped, key=lambda j: close[keep[j]])
            k = keep[best]
            return Outcome(predicted, int(probs[best].argmax()), True, queries, len(changes) + 1, len(words),
                           float(close[k]), texts[k])
        lowest = int(probs[:, label].argmin())
        if len(changes) + 1 < budget and probs[lowest, label] < current[label]:
            changes[i] = options[keep[lowest]]
            current = probs[lowest]
    final = words.replace(changes)
    kept = float(similarity(text, [final])[0]) if changes else 1.0
    return Outcome(predicted, int(current.argmax()), False, queries, len(changes), len(words), kept, final)
