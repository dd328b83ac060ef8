"""Which runtime judges the parts: ONNX Runtime fp32 or int8, OpenVINO fp32 or int8, and ``auto``.

An int8 backend is used only once its gate passed (:mod:`inspector.line.int8`); otherwise the line
runs the same runtime in fp32 and keeps the gate's one-line reason as ``fallback``. OpenVINO is an
optional extra: asked for without it installed, the request is refused in one line.

``auto`` is the fastest backend *that is ready and gated* on this PC: ONNX Runtime fp32 always,
OpenVINO fp32 where installed, and each int8 graph whose gate record says it passed (the gate runs
when a person asks for ``--backend int8`` / ``openvino-int8`` or ``inspector models bench --data``:
calibrating and judging takes a minute, never a surprise at a shift's start). The candidates are
timed once per bundle and PC, interleaved, and the pick is kept beside the cache
(``<sha>.auto.json``, keyed by the PC and the candidate set); ``inspector models bench --auto``
measures again.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inspector.errors import InspectorError
from inspector.line.int8 import GateResult, build_and_gate, open_station_for, read_gate
from models.errors import ModelError
from models.files import atomic_write_text, read_json, stamp_matches, write_stamp

INT8 = {"int8": "onnx", "openvino-int8": "openvino"}  # each int8 backend and its fp32 fallback
Log = Callable[[str], None]


@dataclass
class Opened:
    predictor: object | None  # None: PyTorch
    backend: str
    fallback: str | None = None  # why the line does not run what was asked (one line)
    gate: GateResult | None = None
    timings: dict[str, float] = field(default_factory=dict)  # auto's p50 per candidate, ms


def int8_path(fp32: Path) -> Path:
    return fp32.with_name(fp32.name.removesuffix(".onnx") + ".int8.onnx")


def openvino_int8_path(fp32: Path) -> Path:
    return fp32.with_name(fp32.name.removesuffix(".onnx") + ".ov-int8.xml")


def auto_record(fp32: Path) -> Path:
    return fp32.with_name(fp32.name.removesuffix(".onnx") + ".auto.json")


def measured_here(engine, cache: Path) -> list[tuple[str, str]]:
    """What this PC has recorded for the bundle, in words: each int8 gate judged on it (for the
    exact int8 bytes in the cache) and the backend ``--backend auto`` picked, with its timings.
    Reads only; nothing is built or measured (``inspector models bench`` does that)."""
    fp32 = engine.onnx_target(cache)
    rows = []
    for backend, path in (("int8", int8_path(fp32)), ("openvino-int8", openvino_int8_path(fp32))):
        gate = read_gate(path) if path.is_file() else None
        if gate is not None:
            verdict = "passed" if gate.passed else "refused, the line runs fp32"
            rows.append((f"{backend} gate", f"{verdict}: {gate.reason} ({gate.measured_at})"))
    try:
        record = read_json(auto_record(fp32))
        if record["pc"] == pc_identity():
            timings = ", ".join(f"{name} {float(ms):.2f}" for name, ms in dict(record["p50_ms"]).items())
            rows.append(("--backend auto", f"runs {record['choice']} (batch-1 p50 ms: {timings})"))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # never measured here, or a record this PC did not write: nothing to say
    return rows


def pc_identity() -> dict[str, str]:
    """What makes a timing belong to this PC: the CPU, its core count and the runtimes' versions."""
    import onnxruntime

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    identity = {
        "host": platform.node(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "onnxruntime": onnxruntime.__version__,
    }
    try:
        import openvino

        identity["openvino"] = openvino.__version__
    except ImportError:
        pass
    return identity


def _ort(path: Path, preprocessing):
    from models.onnx_export import OnnxPredictor

    try:
        return OnnxPredictor(path, preprocessing)
    except ModelError as exc:
        raise InspectorError(str(exc)) from None


def _openvino(path: Path):
    from models.openvino_backend import OpenVinoPredictor, unavailable

    reason = unavailable()
    if reason:
        raise InspectorError(f"the openvino backend is absent: {reason}")
    try:
        return OpenVinoPredictor(path)
    except ModelError as exc:
        raise InspectorError(str(exc)) from None


def _ov_stamped(xml: Path) -> bool:
    from models.openvino_backend import ir_stamp

    return stamp_matches(xml, ir_stamp)


def _quantize_ov(src: Path, dst: Path, calibration: np.ndarray) -> None:
    from models.openvino_backend import ir_stamp, quantize_openvino

    quantize_openvino(src, dst, calibration)
    write_stamp(dst, ir_stamp)


def gated_int8(
    engine,
    backend: str,
    fp32_path: Path,
    fp32_predictor,
    data=None,
    build: bool = True,
    log: Log = print,
) -> tuple[object | None, GateResult | None, str | None]:
    """The int8 predictor of ``backend`` if its gate passed, the gate, and why not otherwise.

    A verified int8 file with a gate record for its exact bytes is reused; anything else (missing,
    corrupt, never judged) is quantized and judged again when ``build``, which needs the station.
    """
    if backend == "int8":
        path, ok, make = int8_path(fp32_path), stamp_matches, lambda p: _ort(p, engine.meta.preprocessing)
        quantize = None
    else:
        path, ok, make, quantize = openvino_int8_path(fp32_path), _ov_stamped, _openvino, _quantize_ov
    gate = read_gate(path) if ok(path) else None
    if gate is None:
        if not build:
            return None, None, f"{backend}: not gated on this PC yet"
        try:
            station = open_station_for(engine.bundle, data)
            gate = build_and_gate(
                engine.bundle, engine.rules, fp32_path, path, station, fp32_predictor, make, quantize, log
            )
        except InspectorError as exc:
            return None, None, f"{backend} not used: {exc}"
    if not gate.passed:
        return None, gate, gate.reason
    try:
        return make(path), gate, None
    except InspectorError as exc:
        return None, gate, f"{backend} not used: {exc}"


def open_backend(engine, backend: str, cache: Path | None, data=None, log: Log = print) -> Opened:
    """The predictor for ``backend`` (not ``torch``) and what actually runs."""
    fp32 = engine._onnx_predictor(cache)  # InspectorError when it does not export: callers decide
    fp32_path: Path = engine.onnx_path
    if backend == "onnx":
        return Opened(fp32, "onnx")
    if backend == "openvino":
        return Opened(_openvino(fp32_path), "openvino")
    if backend in INT8:
        reference = fp32 if backend == "int8" else _openvino(fp32_path)
        predictor, gate, why = gated_int8(engine, backend, fp32_path, fp32, data, True, log)
        if predictor is not None:
            return Opened(predictor, backend, None, gate)
        return Opened(reference, INT8[backend], why, gate)
    if backend == "auto":
        return choose_auto(engine, fp32, fp32_path, log)
    raise InspectorError(f"unknown backend {backend!r}")


def _candidates(engine, fp32, fp32_path: Path, log: Log) -> tuple[dict[str, object], dict[str, GateResult]]:
    from models.openvino_backend import unavailable

    candidates: dict[str, object] = {"onnx": fp32}
    gates: dict[str, GateResult] = {}
    names = ["int8"] + ([] if unavailable() else ["openvino", "openvino-int8"])
    for name in names:
        try:
            if name == "openvino":
                candidates[name] = _openvino(fp32_path)
                continue
            predictor, gate, _ = gated_int8(engine, name, fp32_path, fp32, build=False, log=log)
        except InspectorError:
            continue
        if gate is not None:
            gates[name] = gate
        if predictor is not None:
            candidates[name] = predictor
    return candidates, gates


def time_predictors(
    predictors: dict[str, object], shape, rounds: int = 3, runs: int = 10
) -> dict[str, float]:
    """p50 ms of each predictor at batch 1 on one input, interleaved round by round."""
    from models.latency import interleaved_rounds, summarise

    sample = np.zeros(shape, np.float32)
    calls = {name: (lambda p=p: p.run_outputs(sample)) for name, p in predictors.items()}
    samples = interleaved_rounds(calls, rounds, runs, warmup=3)
    return {name: round(summarise(values).p50_ms, 3) for name, values in samples.items()}


def choose_auto(engine, fp32, fp32_path: Path, log: Log = print, remeasure: bool = False) -> Opened:
    """The fastest gated candidate, timed once per bundle and PC (kept in ``<sha>.auto.json``)."""
    candidates, gates = _candidates(engine, fp32, fp32_path, log)
    if len(candidates) == 1:
        return Opened(fp32, "onnx")
    record_path = auto_record(fp32_path)
    identity = pc_identity()
    try:
        record = read_json(record_path)
        fresh = (
            not remeasure
            and record["pc"] == identity
            and sorted(record["candidates"]) == sorted(candidates)
            and record["choice"] in candidates
        )
    except (OSError, ValueError, KeyError, TypeError):
        fresh = False
    if fresh:
        choice, timings = record["choice"], dict(record.get("p50_ms", {}))
    else:
        size = engine.meta.preprocessing
        timings = time_predictors(candidates, (1, size.channels, size.size, size.size))
        choice = min(timings, key=timings.__getitem__)
        record = {"pc": identity, "candidates": sorted(candidates), "choice": choice, "p50_ms": timings}
        try:
            atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
        except OSError:
            pass  # an unwritable cache: measured again next time, nothing else lost
    return Opened(candidates[choice], choice, None, gates.get(choice), timings)
