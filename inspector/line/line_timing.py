"""Time per part on the backend the line runs: the speed figures of the fine-tune wizard, the
roll-out gate's latency margin and the shift report's cost per part (issue 25, item 6).

The line judges under ``--backend auto`` (ONNX Runtime, or a faster backend that passed its gate on
this PC, where the bundle exports; PyTorch otherwise), the CLI's ``run`` and the app's Live screen
alike. Those screens used to time PyTorch eager, a runtime that judges no part when the line runs
ONNX, and where LTM's saving is smaller (BENCHMARKS.md: 0.87x of the unmerged model in eager
against 0.68x in ONNX Runtime): a gate could pass or block a model on a speed the line never sees.

Every model is timed through :class:`~inspector.line.inference.InferenceEngine` as the line builds
it, one raw frame per call (preprocessing included, as on the line), the models taking turns round
by round (:func:`models.latency.interleaved_rounds`) so a busy moment falls on all alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from inspector.line.inference import BACKEND_NAMES, InferenceEngine
from inspector.registry import registry_holding
from models.bundle import Bundle
from models.latency import LatencyStats, interleaved_rounds, summarise

LINE_BACKEND = "auto"  # what ``inspector run`` and the Live screen ask for (LineRequest.backend)


def line_cache(bundle_path: Path | None, home: Path | None = None) -> Path | None:
    """The ONNX cache the line uses (``<home>/cache/onnx``, as :func:`inspector.line.build.build_pipeline`
    opens it), so the export and ``auto``'s pick made for the line are the ones timed, and a timing's
    export serves the line later. Without ``home``, a registered version's own home; None for a
    bundle outside a registry (a staged fine-tune, a folder given by path)."""
    if home is None and bundle_path is not None:
        root = registry_holding(bundle_path)  # <home>/models
        home = None if root is None else root.parent
    return None if home is None else home / "cache" / "onnx"


@contextmanager
def line_engines(
    bundles: Mapping[str, Bundle], backend: str = LINE_BACKEND
) -> Iterator[dict[str, InferenceEngine]]:
    """An engine per bundle, each on the backend the line would run it on; exports of bundles
    outside a registry go to a temporary cache that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="inspector-timing-") as tmp:
        engines = {}
        for index, (name, bundle) in enumerate(bundles.items()):
            cache = line_cache(bundle.path) or Path(tmp) / str(index)
            engines[name] = InferenceEngine(bundle, backend, cache)
        yield engines


def backend_name(engine: InferenceEngine) -> str:
    """What a person reads: ``ONNX Runtime``, ``PyTorch``, ..."""
    return BACKEND_NAMES.get(engine.backend, engine.backend)


def time_per_part(
    engines: Mapping[str, InferenceEngine],
    rounds: int,
    runs: int,
    warmup: int = 1,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, LatencyStats]:
    """Batch-1 wall time per part of each engine, interleaved: ``rounds`` × ``runs`` samples each."""
    rng = np.random.default_rng(0)
    calls = {}
    for name, engine in engines.items():
        size = engine.meta.preprocessing.size
        frame = rng.integers(0, 256, (size, size), dtype=np.uint8)
        engine.warm_up()
        calls[name] = lambda engine=engine, frame=frame: engine.infer([frame])
    samples = interleaved_rounds(calls, rounds, runs, warmup=warmup, on_round=on_round)
    return {name: summarise(values) for name, values in samples.items()}
