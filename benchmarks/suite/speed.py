"""Speed and memory of the finished models, all in one process: PyTorch and ONNX Runtime latency
with the models interleaved round by round, batch throughput, peak memory and a matmul peak."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.suite.profiles import Profile
from models.bundle import load_bundle
from models.latency import interleaved_rounds, summarise
from models.network import InspectionNet


def _status_mib(key: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) / 1024


def peak_memory(calls: list[Callable[[], object]], repeats: int = 2) -> list[float | None]:
    """Peak RSS growth (MiB) during each call, the least of ``repeats``; Linux + glibc only, else None.

    For the measurement glibc is told to mmap every block over 64 KiB, so that freed tensors leave
    RSS and each call starts from its own baseline; afterwards the thresholds are set to the values
    glibc's dynamic tuning settles at (32 MiB mmap, 64 MiB trim), not to the small start values.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
        _status_mib("VmHWM")
    except (OSError, AttributeError):
        return [None] * len(calls)
    m_trim, m_mmap = -1, -3
    libc.mallopt(m_mmap, 64 * 1024)
    libc.mallopt(m_trim, 128 * 1024)
    out: list[float | None] = []
    try:
        for call in calls:
            growth = []
            for _ in range(repeats):
                libc.malloc_trim(0)
                Path("/proc/self/clear_refs").write_text("5")
                before = _status_mib("VmRSS")
                call()
                growth.append(_status_mib("VmHWM") - before)
            out.append(min(growth))
    finally:
        libc.mallopt(m_mmap, 32 * 1024 * 1024)
        libc.mallopt(m_trim, 64 * 1024 * 1024)
    return out


def matmul_peak(sizes: tuple[int, ...] = (1024, 1536, 2048), seconds: float = 0.6) -> float:
    """Best single-precision GFLOP/s of ``torch.mm`` on square matrices, with torch's threads."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        calls, tic = 0, time.perf_counter()
        while time.perf_counter() - tic < seconds:
            start = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
            calls += 1
    return best


@dataclass
class _Model:
    dataset: str
    arch: str
    net: InspectionNet
    gmacs: float
    torch_ms: list[float] = field(default_factory=list)
    ort_ms: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)


def measure_speed(
    entries: list[tuple[str, str, Path, float]], profile: Profile, workdir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Interleaved speed of every entry in this process (see the module docstring)."""
    import onnxruntime

    from models.onnx_export import _session, export_onnx

    models = [_Model(d, a, load_bundle(p).net.eval(), g) for d, a, p, g in entries]
    onnx = {
        i: export_onnx(m.net, workdir / f"{m.dataset}-{m.arch}.onnx", overwrite=True).path
        for i, m in enumerate(models)
        if m.net.merge_mode != "tome"
    }
    gc.collect()  # the exports' parity sessions must be gone before PyTorch is timed
    peaks = [matmul_peak(seconds=profile.matmul_seconds)]
    per_round = max(1, profile.latency_runs // profile.rounds)
    batch_per_round = max(1, profile.batch_runs // profile.rounds)
    # Phases: PyTorch batch 1, PyTorch batch 16, then ONNX Runtime; models interleaved round by
    # round inside each phase. No ORT session is alive while PyTorch is timed: ORT's worker threads
    # spin after each run and compete with PyTorch's threads for the same few cores.
    # A PyTorch round: every model at batch 1, then every model at the batch (inputs drawn once).
    calls: dict[tuple[str, int], Callable[[], object]] = {}
    runs: dict[tuple[str, int], int] = {}
    warmup: dict[tuple[str, int], int] = {}
    phases = (("one", 1, per_round, profile.warmup), ("batch", profile.batch, batch_per_round, 1))
    for phase, batch, count, untimed in phases:
        for i, m in enumerate(models):
            spec = m.net.spec
            x = torch.randn(batch, spec.in_chans, spec.img_size, spec.img_size)
            calls[phase, i] = lambda m=m, x=x: m.net(x)
            runs[phase, i], warmup[phase, i] = count, untimed
    with torch.inference_mode():
        samples = interleaved_rounds(
            calls,
            profile.rounds,
            runs,
            warmup,
            on_round=lambda index: log(f"    PyTorch round {index + 1}/{profile.rounds}"),
        )
    for i, m in enumerate(models):
        m.torch_ms += samples["one", i]
        m.batch_ms += samples["batch", i]
    peaks.append(matmul_peak(seconds=profile.matmul_seconds))
    sessions = {key: _session(path) for key, path in onnx.items()}
    ort_calls: dict[int, Callable[[], object]] = {}
    for i in sessions:
        m = models[i]
        shape = (1, m.net.spec.in_chans, m.net.spec.img_size, m.net.spec.img_size)
        feed = {"images": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        ort_calls[i] = lambda i=i, f=feed: sessions[i].run(None, f)
    ort_samples = interleaved_rounds(
        ort_calls,
        profile.rounds,
        per_round,
        profile.warmup,
        on_round=lambda index: log(f"    ONNX Runtime round {index + 1}/{profile.rounds}"),
    )
    for i, values in ort_samples.items():
        models[i].ort_ms += values
    ort_calls.clear()
    sessions.clear()  # ORT's threads end with their sessions
    gc.collect()
    peak = max(peaks)

    def forward(m: _Model) -> Callable[[], object]:
        spec = m.net.spec
        many = torch.randn(profile.batch, spec.in_chans, spec.img_size, spec.img_size)

        def call() -> None:
            with torch.inference_mode():
                m.net(many)

        return call

    memory = peak_memory([forward(m) for m in models])
    rows = []
    for m, peak_mib in zip(models, memory, strict=True):
        t, b = summarise(m.torch_ms), summarise(m.batch_ms)
        row: dict[str, Any] = {
            "dataset": m.dataset,
            "arch": m.arch,
            "gmacs": m.gmacs,
            "torch_p50_ms": t.p50_ms,
            "torch_p95_ms": t.p95_ms,
            "batch": profile.batch,
            "batch_p50_ms": b.p50_ms,
            "throughput_ips": profile.batch / (b.p50_ms / 1000),
            "peak_mib": peak_mib,
            "torch_gflops": 2 * m.gmacs / (t.p50_ms / 1000),
            "ort_p50_ms": None,
            "ort_p95_ms": None,
            "ort_gflops": None,
        }
        if m.ort_ms:
            o = summarise(m.ort_ms)
            row.update(ort_p50_ms=o.p50_ms, ort_p95_ms=o.p95_ms, ort_gflops=2 * m.gmacs / (o.p50_ms / 1000))
        rows.append(row)
    return {
        "rows": rows,
        "matmul_gflops": peak,
        "matmul_gflops_runs": peaks,
        "latency_runs": per_round * profile.rounds,
        "batch_runs": batch_per_round * profile.rounds,
        "rounds": profile.rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "machine": machine(),
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }


def machine() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        cpu = name.group(1).strip() if name else platform.processor()
    except OSError:
        cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}"
