"""Batched inference in row order, and what the pipeline derives from logits."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.special import log_softmax, softmax
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from rmc_core.data.texts import second_texts
from rmc_core.training.precision import autocast, resolve_precision
from rmc_core.training.stopping import check, stoppable


def encode_pairs(frame: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int) -> list[dict]:
    """Each row's token ids as its own dict, unpadded, for a collator to batch in any order."""
    encoded = tokenizer(frame["text_a"].tolist(), second_texts(frame), truncation=True, max_length=max_length)
    return [dict(zip(encoded.keys(), values)) for values in zip(*encoded.values())]


@dataclass
class PredictTally:
    """What predictions computed, summed over calls: rows, seconds, tokens with and without
    each batch's padding, and the precision taken (a stage's MFU: rmc_core/costs.py)."""

    rows: int = 0
    seconds: float = 0.0
    tokens: int = 0
    padded_tokens: int = 0
    precision: str = "fp32"


@torch.inference_mode()
def predict_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    frame: pd.DataFrame,
    max_length: int,
    batch_size: int,
    device: str = "cpu",
    desc: str = "predict",
    precision: str = "auto",
    progress: bool = True,
    tally: PredictTally | None = None,
) -> np.ndarray:
    """Logits for every row, in row order; batches are formed by length to pad less.
    `progress` False: no bar of its own (a caller that predicts many small sets keeps one);
    `tally`: adds this call's rows, seconds and tokens to it."""
    start_time = time.perf_counter()
    precision = resolve_precision(precision, device)
    rows = encode_pairs(frame, tokenizer, max_length)
    lengths = np.array([len(r["input_ids"]) for r in rows])
    order = np.argsort(lengths, kind="stable")
    collate = DataCollatorWithPadding(tokenizer)
    model.to(device).eval()
    out = np.empty((len(frame), model.config.num_labels), dtype=np.float32)
    with stoppable():
        for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", dynamic_ncols=True,
                          disable=not progress):
            check(desc, start // batch_size)
            idx = order[start : start + batch_size]
            batch = collate([rows[i] for i in idx])
            with autocast(precision, device):
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            out[idx] = logits.float().cpu().numpy()
    if tally is not None:
        batches = [lengths[order[s : s + batch_size]] for s in range(0, len(rows), batch_size)]
        tally.rows += len(rows)
        tally.seconds += time.perf_counter() - start_time
        tally.tokens += int(lengths.sum())
        tally.padded_tokens += sum(int(b.max()) * len(b) for b in batches)
        tally.precision = precision
    return out


def probs_from_logits(logits: np.ndarray) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64), axis=1)


def per_sample_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row's gold label: the l of Eq. 1 when the model is a sub-network."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    return -logp[np.arange(len(labels)), np.asarray(labels, dtype=int)]
