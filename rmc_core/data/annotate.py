"""Metadata that a file does not carry in its own columns but that the analysis needs.

HANS: the stored copy has no heuristic column, but it keeps the official row order, in
blocks of 5,000 rows per (heuristic, label) and 1,000 per subcase (see the data README).
MNLI dev-matched: the Gururangan hard subset comes as a separate index-aligned file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rmc_core.data.sources import DataError

HANS_BLOCKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("lexical_overlap", "non-entailment", ("ln_subject/object_swap", "ln_preposition", "ln_relative_clause", "ln_passive", "ln_conjunction")),
    ("lexical_overlap", "entailment", ("le_relative_clause", "le_around_prepositional_phrase", "le_around_relative_clause", "le_conjunction", "le_passive")),
    ("subsequence", "non-entailment", ("sn_NP/S", "sn_PP_on_subject", "sn_relative_clause_on_subject", "sn_past_participle", "sn_NP/Z")),
    ("subsequence", "entailment", ("se_conjunction", "se_adjective", "se_understood_object", "se_relative_clause_on_obj", "se_PP_on_obj")),
    ("constituent", "non-entailment", ("cn_embedded_under_if", "cn_after_if_clause", "cn_embedded_under_verb", "cn_disjunction", "cn_adverb")),
    ("constituent", "entailment", ("ce_embedded_under_since", "ce_after_since_clause", "ce_embedded_under_verb", "ce_conjunction", "ce_adverb")),
)
HANS_LABELS = ("entailment", "non-entailment")
MNLI_HARDNESS = "mnli/hardness_annotations/mnli_validation_matched_hardness.csv"


def hans_blocks(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Add `heuristic` and `subcase` from the official row order, checking each block's label."""
    if len(frame) != 30_000:
        raise ValueError(f"HANS annotation needs the full 30,000-row file in official order, got {len(frame)} rows")
    heuristic, subcase = [], []
    for block, (name, label, subcases) in enumerate(HANS_BLOCKS):
        rows = frame.iloc[block * 5000 : (block + 1) * 5000]
        if set(rows["label"]) != {HANS_LABELS.index(label)}:
            raise ValueError(f"HANS rows {block * 5000}-{block * 5000 + 4999} should all be {label}: the file is not in official order")
        heuristic += [name] * 5000
        subcase += [s for s in subcases for _ in range(1000)]
    return frame.assign(heuristic=heuristic, subcase=subcase)


def mnli_hardness(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Add `hard` (Gururangan et al. 2018 hypothesis-only hard subset), aligned by GLUE index."""
    path = root / MNLI_HARDNESS
    try:
        hard = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:  # e.g. a row with an extra column
        raise DataError(f"{path} is not a CSV of idx,pairID,hardness: {str(err).strip()}") from err
    missing = [c for c in ("idx", "pairID", "hardness") if c not in hard.columns]
    if missing:
        raise DataError(f"{path} has no {', '.join(missing)} column (it has {', '.join(map(str, hard.columns[:5]))})")
    if len(hard) != len(frame) or not (hard["idx"].to_numpy() == [str(i) for i in range(len(frame))]).all():
        raise ValueError(f"{MNLI_HARDNESS} is not index-aligned with the {len(frame)}-row dev set")
    flags = hard["hardness"].str.strip()
    bad = ~flags.isin(("0", "1"))
    if bad.any():  # a blank read as NaN would have been True: "hard" without a word
        rows = ", ".join(f"line {i + 2}: {v!r}" for i, v in flags[bad].head(5).items())
        raise DataError(f"{root / MNLI_HARDNESS}: {int(bad.sum())} hardness values are neither 0 nor 1 ({rows}); "
                        "every dev row needs its annotation")
    return frame.assign(hard=(flags == "1").to_numpy(), pair_id=hard["pairID"].to_numpy())


HARD_VALUES = {"1": True, "true": True, "hard": True, "0": False, "false": False, "easy": False}


def hardness_column(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """A declared task's hardness column (1/0, true/false, hard/easy) as `hard`; any other
    value (a blank included) is an error, never read as hard or easy."""
    flags = frame["hardness"].astype(str).str.strip().str.lower()
    bad = ~flags.isin(HARD_VALUES)
    if bad.any():
        rows = ", ".join(f"row {i}: {v!r}" for i, v in frame["hardness"][bad].head(5).items())
        raise DataError(f"{int(bad.sum())} hardness values are none of {sorted(HARD_VALUES)} ({rows})")
    return frame.drop(columns="hardness").assign(hard=flags.map(HARD_VALUES).astype(bool).to_numpy())


ANNOTATORS: dict[str, Callable[[pd.DataFrame, Path], pd.DataFrame]] = {
    "hans_blocks": hans_blocks,
    "mnli_hardness": mnli_hardness,
    "hardness_column": hardness_column,
}
# Local files an annotator reads (relative to the data root), checked before any data is read.
ANNOTATION_FILES: dict[str, str] = {"mnli_hardness": MNLI_HARDNESS}
