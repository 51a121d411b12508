"""Events of the training loop, for what runs alongside an objective.

The loop (loop.py) knows seeding, batching, precision, the optimizer and the schedule;
everything else that acts during training is a `Hook` (the design of HF's
`TrainerCallback` and composer's algorithm events): IMP's masks, structured gates,
progress bars and the cooperative stop. A compression that needs a new event adds it
here once, instead of a branch in the loop.

Order within one step: on_step_begin -> forward -> on_loss -> backward ->
on_after_backward -> gradient clipping -> optimizer step -> on_step_end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ContextManager

import torch
from torch import nn

from rmc_core.training.stopping import check, stoppable


class Hook:
    """A no-op for every event; a hook overrides the events it needs."""

    def running(self) -> ContextManager[Any]:
        """A context held while the loop runs (also when it raises)."""
        return contextlib.nullcontext()

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        """Before the optimizer is built: a hook may freeze parameters or attach gates here."""

    def on_step_begin(self, step: int) -> None:
        """Before the forward of step `step` (0-based)."""

    def on_loss(self, step: int, batch: dict[str, torch.Tensor], outputs: Any, loss: torch.Tensor) -> torch.Tensor:
        """The loss to back-propagate: a hook may add terms computed from the batch and outputs."""
        return loss

    def on_after_backward(self, step: int) -> None:
        """Gradients are in, not yet clipped or applied."""

    def on_step_end(self, step: int) -> None:
        """After the optimizer and schedule stepped; `step` counts finished steps."""

    def on_train_end(self, model: nn.Module) -> nn.Module:
        """The model to keep (a hook may return a rebuilt one, e.g. physically smaller)."""
        return model

    def report(self) -> dict[str, float]:
        """Figures for the training record (achieved sparsity, units pruned)."""
        return {}

    def lr_schedule(self, total_steps: int) -> Callable[[int], float] | None:
        """The learning-rate multiplier per step, for a hook that owns the schedule (one per
        training stage, in sparse progressive distillation); None: the loop's linear
        warm-up and decay."""
        return None


class StopCheck(Hook):
    """Leave at the next step once a stop was requested (Ctrl-C, SIGTERM)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc

    def running(self) -> ContextManager[Any]:
        return stoppable()

    def on_step_begin(self, step: int) -> None:
        check(self.desc, step)


class Progress(Hook):
    """Report the finished fraction about every 5 % of the steps (a UI progress bar)."""

    def __init__(self, report: Callable[[float], None]) -> None:
        self.report_fraction, self.total = report, 1

    def on_train_begin(self, model: nn.Module, total_steps: int) -> None:
        self.total = total_steps

    def on_step_end(self, step: int) -> None:
        if step % max(1, self.total // 20) == 0 or step == self.total:
            self.report_fraction(step / self.total)


def standard_hooks(desc: str, on_progress: Callable[[float], None] | None = None) -> list[Hook]:
    """What every stage's training has: the cooperative stop and, under a UI, progress."""
    return [StopCheck(desc), *([Progress(on_progress)] if on_progress else [])]
