"""Recording a model's training dynamics for dataset cartography (objectives/cartography.py).

Training rows are scored from the training forward passes themselves, as Swayamdipta et
al. log them: free, and each row is visited once per epoch, so a row's k-th score is its
epoch-k score. Dev rows are never trained on, so they are scored by one prediction pass at
the end of each epoch; it runs in eval mode under inference mode and draws no random
numbers, so the weights are bit for bit those of the same training without the recording.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from rmc_core.config import TrainConfig
from rmc_core.training.hooks import Hook
from rmc_core.training.predict import predict_logits, probs_from_logits

Objective = Callable[[Tensor, Tensor, Tensor], Tensor]


class TrainingDynamics(Hook):
    """Gold-label probability per row per finished epoch, on train and dev."""

    def __init__(self, n_train: int, dev: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, cfg: TrainConfig,
                 device: str, desc: str) -> None:
        self.dev, self.tokenizer, self.cfg, self.device, self.desc = dev, tokenizer, cfg, device, desc
        self.train_probs = np.full((math.ceil(cfg.epochs) + 1, n_train), np.nan)
        self.visits = np.zeros(n_train, dtype=np.int64)
        self.dev_probs: list[np.ndarray] = []
        self.dev_seconds = 0.0
        self.model: nn.Module | None = None

    def wrap(self, objective: Objective) -> Objective:
        """`objective` that also records each row's gold-label probability as it trains."""

        def recording(logits: Tensor, labels: Tensor, idx: Tensor) -> Tensor:
            with torch.no_grad():
                gold = logits.softmax(dim=-1).gather(1, labels[:, None]).squeeze(1)
            rows = idx.cpu().numpy()
            self.train_probs[self.visits[rows], rows] = gold.cpu().numpy()
            self.visits[rows] += 1
            return objective(logits, labels, idx)

        return recording

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.model = model

    def on_step_end(self, step: int) -> None:
        while self.visits.min() > len(self.dev_probs):
            self._score_dev()

    def _score_dev(self) -> None:
        start = time.perf_counter()
        logits = predict_logits(self.model, self.tokenizer, self.dev, self.cfg.max_length, self.cfg.eval_batch_size,
                                self.device, desc=f"{self.desc} dev dynamics", precision=self.cfg.precision)
        self.model.train()
        gold = self.dev["label"].to_numpy(dtype=int)
        self.dev_probs.append(probs_from_logits(logits)[np.arange(len(gold)), gold])
        self.dev_seconds += time.perf_counter() - start

    def tables(self) -> dict[str, pd.DataFrame]:
        """dynamics_train and dynamics_dev: one column per finished epoch (epoch_1, ...).
        A last, partial epoch is left out, so every row has the same epochs."""
        epochs = len(self.dev_probs)
        columns = [f"epoch_{e + 1}" for e in range(epochs)]
        return {"dynamics_train": pd.DataFrame(self.train_probs[:epochs].T, columns=columns),
                "dynamics_dev": pd.DataFrame(np.stack(self.dev_probs, axis=1) if epochs else None, columns=columns)}
