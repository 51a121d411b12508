"""A shortcut injected into real text: the synthetic-bias setting of the debiasing
literature (a label-revealing token added to the hypothesis, e.g. Asael et al. 2021), so
that a teacher this CPU can train shows an OOD gap that real MNLI alone does not give it
(docs/results.md: the 9k-row MiniLM teacher is at chance on HANS).

Every training and dev row's second text (the hypothesis; the claim for FEVER, the second
question for QQP) starts with a marker word, one per label (`MARKERS`): its gold label's
with probability `strength`, otherwise another label's, chosen uniformly. A model that
reads the marker is right on a share `strength` of the rows without reading the pair.
`hard` marks the rows whose marker disagrees with the gold label (the bias-conflicting
rows, as on the synthetic task), on train and dev, replacing the task's own dev
annotation. The OOD set `shortcut-ood` is a copy of the sampled dev rows with every
marker wrong: a model that follows the marker gets every row wrong, one that reads the
pair is unaffected. Its labels are the task's own (not HANS's two).

The markers are Greek letter names: one word piece each in BERT's vocabulary, and no
word-level cue to entailment, paraphrase or truth of their own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OOD_NAME = "shortcut-ood"
MARKERS = ("alpha", "beta", "gamma")


def _marked(frame: pd.DataFrame, markers: np.ndarray) -> pd.DataFrame:
    words = np.asarray(MARKERS)[markers]
    side = "text_b" if "text_b" in frame.columns else "text_a"  # a single text carries the marker itself
    return frame.assign(**{side: [f"{w} {t}" for w, t in zip(words, frame[side])]},
                        hard=markers != frame["label"].to_numpy())


def _other(labels: np.ndarray, n_labels: int, rng: np.random.Generator) -> np.ndarray:
    """A label other than each row's, uniformly among the others."""
    return (labels + rng.integers(1, n_labels, size=len(labels))) % n_labels


def inject(frame: pd.DataFrame, n_labels: int, strength: float, seed: int | tuple[int, ...]) -> pd.DataFrame:
    """Each row's marker agrees with its label with probability `strength`."""
    if not 2 <= n_labels <= len(MARKERS):
        raise ValueError(f"a shortcut needs 2 to {len(MARKERS)} labels, got {n_labels}")
    rng = np.random.default_rng(seed)
    labels = frame["label"].to_numpy(dtype=int)
    agrees = rng.random(len(frame)) < strength
    return _marked(frame, np.where(agrees, labels, _other(labels, n_labels, rng)))


def anti(frame: pd.DataFrame, n_labels: int, seed: int | tuple[int, ...]) -> pd.DataFrame:
    """Every row's marker names a wrong label."""
    rng = np.random.default_rng(seed)
    return _marked(frame, _other(frame["label"].to_numpy(dtype=int), n_labels, rng))
