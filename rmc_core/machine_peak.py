"""This machine's own limit: the CPU's features and the FLOP rate one dense matmul reaches.

A speed figure alone says nothing across machines: 21 examples/s is fast on a 2-core AVX2
CPU and slow on an AMX one. MFU (model FLOP utilisation) puts a training or prediction
rate against what this machine does at its best, measured here, in the same process and
dtype: a square matmul large enough to run at the BLAS kernels' peak. GPUs have data-sheet
peaks (benchmarks/throughput.py); on a CPU the data sheet is the clock times the SIMD
width, which few users know and turbo and thermals move, so it is measured instead.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

# The instruction-set features that decide which kernels a CPU runs: AVX2 (fp32), AVX-512,
# native bf16 (AVX-512 BF16, AMX) and int8 dot products (VNNI).
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, bool]:
    """Each feature of CPU_FEATURES, as the kernel reports the first CPU's flags (all False
    where /proc/cpuinfo is absent, as on macOS: torch's own capability is then the guide)."""
    flags: set[str] = set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    return {name: name in flags for name in CPU_FEATURES}


def feature_line(features: dict[str, bool] | None = None) -> str:
    """The features in one line for a table's caption ("avx2 yes, avx512f no, ...") and torch's kernel choice."""
    features = cpu_features() if features is None else features
    listed = ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in features.items())
    return f"{listed}; torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters a token's forward pass multiplies by: all but the embedding tables, which
    are looked up (on MiniLM-L6 they are 11.9M of its 22.7M parameters)."""
    tables = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in tables)


def mfu(params: int, tokens: float, seconds: float, peak: float, trained: bool = True) -> float:
    """Model FLOP utilisation: 6 x params FLOPs per trained token (2 x per predicted one),
    attention's score FLOPs left out, over `seconds`, against `peak` FLOP/s."""
    return (6 if trained else 2) * params * tokens / seconds / peak


def matmul_peak(precision: str = "fp32", device: str = "cpu", size: int = 1024, rounds: int = 5,
                min_seconds: float = 0.2) -> float:
    """FLOP/s of a `size` x `size` matmul in `precision` on `device`: the median of `rounds`
    timed rounds, each repeating the product for at least `min_seconds`, after a warm-up
    (2 size^3 FLOPs a product). 1024 is past where the BLAS kernels reach their plateau on
    the CPUs measured here; a bf16 matmul on a CPU without native bf16 measures its emulation."""
    dtype = DTYPES[precision]
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    flops = 2 * size**3

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(torch.device(device))

    torch.mm(a, b)
    sync()
    rates = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            n += 1
            if n % 4 == 0:
                sync()
                elapsed = time.perf_counter() - start
                if elapsed >= min_seconds:
                    break
        rates.append(n * flops / elapsed)
    return statistics.median(rates)
