"""When gradual pruning happens: Zhu & Gupta's cubic ramp, shared by every kind that prunes
during fine-tuning (IMP, structured heads and neurons)."""

from __future__ import annotations

from pydantic import Field, model_validator

from rmc_core.schema import Frozen, Int, Real


class Schedule(Frozen):
    """The ramp from no pruning at `start` to the target at `end` (both fractions of the
    training steps) in `events` updates; the steps after `end` let the network recover at
    its final size."""

    start: Real = Field(0.0, ge=0, lt=1, description="fraction of the training steps before pruning begins")
    end: Real = Field(0.7, gt=0, le=1, description="fraction of the training steps by which the target is reached")
    events: Int = Field(10, ge=1, description="pruning updates between start and end")

    @model_validator(mode="after")
    def _start_before_end(self) -> Schedule:
        if self.start >= self.end:
            raise ValueError(f"prune start ({self.start}) must come before end ({self.end})")
        return self


# Everything pruned at the first step and held: one-shot pruning followed by recovery.
HOLD = Schedule(start=0.0, end=1.0, events=1)


def cubic_ramp(step: int, total_steps: int, schedule: Schedule) -> float:
    """The fraction of the target reached at `step`: 0 before `start`, 1 after `end`, and
    1 - (1 - progress)^3 on the event grid in between, pruning early while weights are
    still plastic and slowly near the target."""
    begin, finish = schedule.start * total_steps, schedule.end * total_steps
    if step < begin:
        return 0.0
    progress = 1.0 if finish <= begin else min(1.0, (step - begin) / (finish - begin))
    event = min(schedule.events, int(progress * schedule.events + 1e-9))
    return 1.0 - (1.0 - event / schedule.events) ** 3
