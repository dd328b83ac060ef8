"""``inspector models bench``: what each backend gives this PC for one bundle, batch 1.

All backends are timed in one process, taking turns round by round
(:func:`models.latency.interleaved_rounds`), so a busy moment falls on all of them alike: compare
the rows of one run with each other, not with another run. Every runtime gets the same thread
count. int8 rows time the quantized graph whether or not its gate passed; the gate's verdict is
reported beside them (``gates``), because a fast model that changes verdicts is not an option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inspector.errors import InspectorError
from inspector.line.backends import (
    INT8,
    choose_auto,
    gated_int8,
    int8_path,
    openvino_int8_path,
)
from inspector.line.inference import InferenceEngine
from inspector.line.int8 import GateResult
from models.bundle import load_bundle

BENCH_BACKENDS = ("torch", "onnx", "int8", "openvino", "openvino-int8")
Log = Callable[[str], None]


@dataclass
class BenchResult:
    model: str
    threads: int
    rows: list[dict] = field(default_factory=list)  # {"backend", "p50_ms", "p95_ms"}
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why it has no row
    gates: dict[str, GateResult] = field(default_factory=dict)
    auto: str | None = None  # the line's ``auto`` pick, when asked to measure it again

    def to_json(self) -> dict:
        return {"model": self.model, "threads": self.threads, "rows": self.rows}


def _ort_call(path: Path, threads: int, sample: np.ndarray) -> Callable[[], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: sample})


def _openvino_call(path: Path, threads: int, sample: np.ndarray) -> Callable[[], object]:
    from models.openvino_backend import OpenVinoPredictor

    predictor = OpenVinoPredictor(path, threads)
    return lambda: predictor.run_one(sample)


def _torch_call(net, sample: np.ndarray) -> Callable[[], object]:
    tensor = torch.from_numpy(sample)

    def call() -> None:
        with torch.inference_mode():
            net(tensor)

    return call


def bench(
    model: Path,
    backends: tuple[str, ...],
    threads: int,
    cache: Path,
    data: str | None = None,
    rounds: int = 5,
    runs: int = 20,
    warmup: int = 5,
    remeasure_auto: bool = False,
    log: Log = print,
) -> BenchResult:
    """Time ``backends`` for the bundle at ``model``; int8 graphs are built (and gated) as needed,
    on ``data`` (else the station the bundle was trained on), and judged again when ``data`` is
    given. ``remeasure_auto``: time the line's ``auto`` candidates again and keep the new pick."""
    from models.latency import interleaved_rounds, summarise
    from models.openvino_backend import int8_unavailable, unavailable

    unknown = [b for b in backends if b not in BENCH_BACKENDS]
    if unknown:
        raise InspectorError(f"unknown backend {unknown[0]!r} (choose from {', '.join(BENCH_BACKENDS)}, all)")
    if threads < 1:
        raise InspectorError(f"threads must be at least 1, got {threads}")
    bundle = load_bundle(model)
    result = BenchResult(str(model), threads)
    engine = InferenceEngine(bundle, "torch")
    prep = bundle.meta.preprocessing
    sample = np.random.default_rng(0).standard_normal((1, prep.channels, prep.size, prep.size))
    sample = sample.astype(np.float32)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    calls: dict[str, Callable[[], object]] = {}
    try:
        fp32 = fp32_path = None
        if any(b != "torch" for b in backends):
            try:
                fp32 = engine._onnx_predictor(cache)
                fp32_path = engine.onnx_path
            except InspectorError as exc:
                for name in backends:
                    if name != "torch":
                        result.skipped[name] = str(exc)
        for name in backends:
            if name == "torch":
                calls[name] = _torch_call(bundle.net.eval(), sample)
                continue
            if fp32_path is None:
                continue
            absent = int8_unavailable() if name == "openvino-int8" else unavailable()
            if name.startswith("openvino") and absent:
                result.skipped[name] = absent
                continue
            if name == "onnx":
                calls[name] = _ort_call(fp32_path, threads, sample)
            elif name == "openvino":
                calls[name] = _openvino_call(fp32_path, threads, sample)
            else:
                if data is not None:  # judge again on the station named now
                    _forget(int8_path(fp32_path) if name == "int8" else openvino_int8_path(fp32_path))
                _, gate, why = gated_int8(engine, name, fp32_path, fp32, data, True, log)
                if gate is None:
                    result.skipped[name] = why or "not built"
                    continue
                result.gates[name] = gate
                if name == "int8":
                    calls[name] = _ort_call(int8_path(fp32_path), threads, sample)
                else:
                    calls[name] = _openvino_call(openvino_int8_path(fp32_path), threads, sample)
        samples = interleaved_rounds(calls, rounds, runs, warmup) if calls else {}
        for name in backends:
            if name in samples:
                stats = summarise(samples[name])
                result.rows.append(
                    {"backend": name, "p50_ms": round(stats.p50_ms, 3), "p95_ms": round(stats.p95_ms, 3)}
                )
        if remeasure_auto and fp32 is not None:
            result.auto = choose_auto(engine, fp32, fp32_path, log, remeasure=True).backend
    finally:
        torch.set_num_threads(previous)
    return result


def _forget(path: Path) -> None:
    """Drop a cached int8 graph's stamp so that it is quantized and judged again."""
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)


__all__ = ["BENCH_BACKENDS", "INT8", "BenchResult", "bench"]
