"""Batch-1 latency percentiles after warm-up, in PyTorch eager and in ONNX Runtime (DESIGN §6).

Helpers only: the benchmarks decide what to compare, always in one process on one machine, and
report ratios. Nothing here asserts a speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.network import InspectionNet


@dataclass(frozen=True)
class LatencyStats:
    p50_ms: float
    p95_ms: float
    runs: int


def sample_calls(call: Callable[[], object], runs: int = 50, warmup: int = 10) -> list[float]:
    """Wall time in ms of ``runs`` calls of ``call`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def summarise(samples: list[float]) -> LatencyStats:
    p50, p95 = np.percentile(samples, [50, 95])
    return LatencyStats(float(p50), float(p95), len(samples))


def time_calls(call: Callable[[], object], runs: int = 50, warmup: int = 10) -> LatencyStats:
    """p50/p95 of ``call`` over ``runs`` timed calls after ``warmup`` untimed ones."""
    return summarise(sample_calls(call, runs, warmup))


def torch_latency(net: InspectionNet, runs: int = 50, warmup: int = 10) -> LatencyStats:
    """Eager PyTorch, batch 1, inference mode."""
    net.eval()
    sample = torch.randn(1, net.spec.in_chans, net.spec.img_size, net.spec.img_size)

    def call() -> None:
        with torch.inference_mode():
            net(sample)

    return time_calls(call, runs, warmup)


def onnx_latency(path: str | Path, runs: int = 50, warmup: int = 10) -> LatencyStats:
    """ONNX Runtime on the CPU, batch 1, default threading."""
    from models.onnx_export import _session

    session = _session(Path(path))
    meta = session.get_inputs()[0]
    sample = np.random.default_rng(0).standard_normal([int(d) for d in meta.shape]).astype(np.float32)
    return time_calls(lambda: session.run(None, {meta.name: sample}), runs, warmup)
