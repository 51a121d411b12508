"""A synthetic NLI task with a planted shortcut, built so that RMC's premise can hold.

Premise: "the doctor helped the lawyer near the park". The hypothesis restates, changes or
negates its clause (agent, verb, patient):

| label         | shortcut-aligned (easy)         | bias-conflicting (hard)                       |
|---------------|---------------------------------|-----------------------------------------------|
| entailment    | the doctor helped the lawyer    | a physician assisted a attorney (synonyms)    |
| neutral       | a pupil employed a grower       | the doctor helped the pilot (substitution)    |
|               |                                 | or the lawyer helped the doctor (role swap)   |
| contradiction | the doctor never helped ... / no physician ever assisted ... (never hard) |

The shortcut is word overlap: "copies the premise's words means entailment". In train and
dev it holds on a fraction `bias` (the shortcut strength) of the entailment and neutral
rows; `hard` marks the others. Contradictions carry their own cue (a negation) whatever
their overlap, so they are never marked hard: a row is hard only where the shortcut is the
cue a model would have to unlearn.

The rule behind the hard rows is lexical for paraphrases (which word is a synonym of which,
knowledge the pretrained encoder brings and pruning removes first) and for substitutions
(which word is missing from the premise); for role swaps it is word order. `order` (the
rule's difficulty) is the share of hard non-entailed rows that are role swaps. Measured
with the packaged MiniLM teacher (docs/results.md): trained 3 epochs on 2,000 rows it gets
98.9-99.8 % of the paraphrases and substitutions right; role swaps it got all wrong, on
2,000 and on 6,000 rows (200 role swaps among them). IMP sub-networks lose the hard rows as
sparsity grows (0-48 % right at 60-85 %) while keeping most easy rows (71-100 %).

The OOD split (2 labels, like HANS) holds only rows where the shortcut fails: entailed
paraphrases and non-entailed high-overlap hypotheses (substitutions / role swaps by `order`).
"""

from __future__ import annotations

import random

import pandas as pd

LABELS = ("entailment", "neutral", "contradiction")
OOD_LABELS = ("entailment", "non-entailment")
OOD_NAME = "synthetic-ood"
COLUMNS = ["text_a", "text_b", "label", "heuristic", "hard"]

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


def _row(rng: random.Random, label: str, aligned: bool, order: float) -> tuple[str, str, int, str, bool]:
    """One (premise, hypothesis, label, heuristic, hard) row; `aligned`: the shortcut holds."""
    a, b, c, d = rng.sample(PEOPLE, 4)
    v, w = rng.sample(VERBS, 2)
    premise = f"the {a[0]} {v[0]} the {b[0]} near the {rng.choice(PLACES)}"
    if label == "entailment":
        hyp, family = (f"the {a[0]} {v[0]} the {b[0]}", "subsequence") if aligned else (f"a {a[1]} {v[1]} a {b[1]}", "paraphrase")
    elif label == "neutral":
        if aligned:
            hyp, family = f"a {c[1]} {w[1]} a {d[1]}", "unrelated"
        elif rng.random() < order:
            hyp, family = f"the {b[0]} {v[0]} the {a[0]}", "role_swap"
        else:
            hyp, family = f"the {a[0]} {v[0]} the {c[0]}", "substitution"
    else:
        high = rng.random() < 0.5
        hyp, family = (f"the {a[0]} never {v[0]} the {b[0]}", "negation") if high else \
            (f"no {a[1]} ever {v[1]} a {b[1]}", "paraphrase_negation")
        aligned = True
    return premise, hyp, LABELS.index(label), family, not aligned


def generate_split(n: int, seed: int, split: str, bias: float, order: float = 0.0) -> pd.DataFrame:
    """ID split (train/dev): 3 balanced labels; on entailment and neutral rows the shortcut
    holds with probability `bias`."""
    rng = random.Random(f"rmc-synthetic-{seed}-{split}")
    rows = [_row(rng, LABELS[i % 3], rng.random() < bias, order) for i in range(n)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sample(frac=1.0, random_state=rng.randrange(2**31)).reset_index(drop=True)


def generate_ood(n: int, seed: int, order: float = 0.0, split: str = "ood") -> pd.DataFrame:
    """OOD split: 2 labels, the shortcut always wrong (half entailed paraphrases, half
    non-entailed high-overlap hypotheses). `split` "ood-train": rows of the same kind from
    another random stream, for the OOD-information upper bound."""
    rng = random.Random(f"rmc-synthetic-{seed}-{split}")
    rows = [_row(rng, "entailment" if i % 2 == 0 else "neutral", False, order) for i in range(n)]
    frame = pd.DataFrame(rows, columns=COLUMNS).drop(columns="hard")
    return frame.assign(label=(frame["label"] != 0).astype(int))
