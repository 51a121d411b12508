"""Which device each parallel job runs on.

Devices are passed explicitly (`cuda:1`), never through CUDA_VISIBLE_DEVICES: once CUDA
is initialised in a worker thread or process, changing that variable has no effect.
"""

from __future__ import annotations

import os
import re

DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


def available_devices() -> list[str]:
    """Every visible GPU, or the CPU."""
    import torch

    n = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]


def default_devices(here: bool = True) -> list[str]:
    """The devices a run uses when none are named: this machine's (every GPU, else the
    CPU); for stages on a cluster's workers, whose GPUs this process cannot see, the CPU."""
    return available_devices() if here else ["cpu"]


def assign_devices(n_jobs: int, devices: list[str]) -> list[str]:
    """Round-robin: job i runs on devices[i % len(devices)]."""
    if not devices:
        raise ValueError("no devices to assign")
    return [devices[i % len(devices)] for i in range(n_jobs)]


def default_concurrency(devices: list[str], cpu_count: int | None = None) -> int:
    """How many sub-networks to train at once: one per GPU; on CPU, as many as fit without
    oversubscribing the cores (each torch job already uses several threads), at least 1."""
    gpus = [d for d in devices if d.startswith("cuda")]
    if gpus:
        return len(gpus)
    return max(1, (cpu_count or os.cpu_count() or 1) // 4)


def check_devices(devices: list[str], here: bool = True) -> None:
    """Every device is spelled as torch spells it and, when the stages run in this process
    (`here`), is present on this machine; a cluster's workers have their own devices."""
    import torch

    for d in devices:
        if not DEVICE.fullmatch(d):
            raise ValueError(f"device {d!r} is not a device name (cpu, cuda, cuda:N, mps)")
        if not here:
            continue
        if d.startswith("cuda"):
            n = torch.cuda.device_count()
            index = int(d.partition(":")[2] or 0)
            if index >= n:
                raise ValueError(f"device {d!r} is not present: this machine has {n} CUDA device(s)")
        if d == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' is not available on this machine")
