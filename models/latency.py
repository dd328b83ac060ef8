"""Batch-1 latency percentiles after warm-up, for any call and for PyTorch eager (DESIGN §6).

Helpers only: the benchmarks decide what to compare, always in one process on one machine, and
report ratios. Nothing here asserts a speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

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


K = TypeVar("K", bound=Hashable)


def interleaved_rounds(
    calls: Mapping[K, Callable[[], object]],
    rounds: int | Iterable[object],
    runs: int | Mapping[K, int],
    warmup: int | Mapping[K, int] = 0,
    on_round: Callable[[int], None] | None = None,
) -> dict[K, list[float]]:
    """Samples (ms) of every call, the calls taking turns round by round, in ``calls``' order.

    Models compared on one machine are never timed one after the other: a busy moment (the line,
    another job, a turbo step) would fall on one of them only and bend their ratio. Each round
    gives every call ``warmup`` untimed then ``runs`` timed calls (one number for all, or one per
    key); ``rounds`` is a count or any iterable of rounds (a progress bar); ``on_round(index)`` is
    told before each round starts.
    """
    samples: dict[K, list[float]] = {key: [] for key in calls}
    for index, _ in enumerate(range(rounds) if isinstance(rounds, int) else rounds):
        if on_round is not None:
            on_round(index)
        for key, call in calls.items():
            n = runs if isinstance(runs, int) else runs[key]
            w = warmup if isinstance(warmup, int) else warmup[key]
            samples[key] += sample_calls(call, runs=n, warmup=w)
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
