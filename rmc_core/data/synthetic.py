"""A synthetic NLI task with a planted shortcut, so the robustness effect shows in minutes.

Premise: "the doctor helped the lawyer near the park". Each label has two hypothesis
templates, one with high word overlap with the premise and one with almost none:

| label         | high overlap                 | low overlap (synonyms)            |
|---------------|------------------------------|-----------------------------------|
| entailment    | the doctor helped the lawyer | a physician assisted a attorney   |
| contradiction | the doctor never helped ...  | no physician ever assisted a ...  |
| neutral       | the lawyer helped the doctor | a pupil employed a grower         |

The true rule needs synonyms, negation and word order; the shortcut "high overlap means
entailment" needs only counting. In train and dev the shortcut holds for a fraction
`bias` of the rows; in the OOD split (2 labels, like HANS) it always fails: entailed
hypotheses are paraphrases and non-entailed ones copy the premise's words.
"""

from __future__ import annotations

import random

import pandas as pd

LABELS = ("entailment", "neutral", "contradiction")
OOD_LABELS = ("entailment", "non-entailment")
OOD_NAME = "synthetic-ood"

PEOPLE = (
    ("doctor", "physician"), ("lawyer", "attorney"), ("artist", "painter"), ("pilot", "aviator"),
    ("teacher", "instructor"), ("student", "pupil"), ("farmer", "grower"), ("banker", "financier"),
    ("actor", "performer"), ("senator", "legislator"), ("author", "writer"), ("chef", "cook"),
)
VERBS = (
    ("helped", "assisted"), ("called", "phoned"), ("saw", "noticed"), ("met", "encountered"),
    ("paid", "compensated"), ("followed", "trailed"), ("admired", "respected"), ("warned", "cautioned"),
    ("hired", "employed"), ("chose", "picked"), ("hit", "struck"), ("stopped", "halted"),
)
PLACES = ("park", "station", "museum", "library", "harbor", "market", "office", "bridge", "school", "hotel")


def _pair(rng: random.Random, label: str, high_overlap: bool) -> tuple[str, str, str]:
    a, b, c, d = rng.sample(PEOPLE, 4)
    v, w = rng.sample(VERBS, 2)
    premise = f"the {a[0]} {v[0]} the {b[0]} near the {rng.choice(PLACES)}"
    if label == "entailment":
        hyp = f"the {a[0]} {v[0]} the {b[0]}" if high_overlap else f"a {a[1]} {v[1]} a {b[1]}"
        family = "subsequence" if high_overlap else "paraphrase"
    elif label == "contradiction":
        hyp = f"the {a[0]} never {v[0]} the {b[0]}" if high_overlap else f"no {a[1]} ever {v[1]} a {b[1]}"
        family = "negation" if high_overlap else "paraphrase_negation"
    else:
        hyp = f"the {b[0]} {v[0]} the {a[0]}" if high_overlap else f"a {c[1]} {w[1]} a {d[1]}"
        family = "role_swap" if high_overlap else "unrelated"
    return premise, hyp, family


def generate_split(n: int, seed: int, split: str, bias: float) -> pd.DataFrame:
    """ID splits (train/dev): 3 labels, shortcut holds with probability `bias`.

    `hard` marks rows where the shortcut disagrees with the label (bias-conflicting).
    """
    rng = random.Random(f"rmc-synthetic-{seed}-{split}")
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        aligned = rng.random() < bias
        high = aligned if label == "entailment" else not aligned
        premise, hyp, family = _pair(rng, label, high)
        rows.append((premise, hyp, LABELS.index(label), family, not aligned))
    frame = pd.DataFrame(rows, columns=["text_a", "text_b", "label", "heuristic", "hard"])
    return frame.sample(frac=1.0, random_state=rng.randrange(2**31)).reset_index(drop=True)


def generate_ood(n: int, seed: int) -> pd.DataFrame:
    """OOD split: 2 labels, the shortcut always wrong (half entailed paraphrases, half
    high-overlap contradictions and role swaps)."""
    rng = random.Random(f"rmc-synthetic-{seed}-ood")
    rows = []
    for i in range(n):
        if i % 2 == 0:
            premise, hyp, family = _pair(rng, "entailment", high_overlap=False)
            label = 0
        else:
            premise, hyp, family = _pair(rng, rng.choice(("neutral", "contradiction")), high_overlap=True)
            label = 1
        rows.append((premise, hyp, label, family))
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label", "heuristic"])
