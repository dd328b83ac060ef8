"""The inference step of the live pipeline: a bundle's exact preprocessing, PyTorch or ONNX Runtime.

``InferenceEngine.infer`` takes a batch of raw frames and returns logits, probabilities, energies
and (on request) merge maps — the same numbers training and evaluation see, because the same
``preprocess`` contract runs here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inspector.errors import InspectorError
from inspector.line.verdicts import VerdictRules
from models.bundle import Bundle, load_bundle
from models.errors import ModelError
from models.families.base import image_importance
from models.preprocess import map_on_image, preprocess
from models.scoring import energy, softmax

# ``auto``: the fastest backend that is ready and gated on this PC (inspector/line/backends.py), ONNX
# Runtime fp32 at least when the bundle exports with parity (LTM's saving shows there: 0.68x of the
# unmerged model against 0.87x in PyTorch eager, BENCHMARKS.md), else PyTorch. The int8 backends run
# only behind their accuracy gate (inspector/line/int8.py); OpenVINO only where installed.
BACKENDS = ("auto", "torch", "onnx", "int8", "openvino", "openvino-int8")
# What the run summary calls each backend.
BACKEND_NAMES = {
    "torch": "PyTorch",
    "onnx": "ONNX Runtime",
    "int8": "ONNX Runtime int8",
    "openvino": "OpenVINO",
    "openvino-int8": "OpenVINO int8",
}


@dataclass
class BatchOutput:
    logits: np.ndarray  # (B, K)
    probabilities: np.ndarray  # (B, K)
    energies: np.ndarray | None  # (B,)
    maps: list[np.ndarray] | None  # per image, (h, w) importance of each input region


class InferenceEngine:
    def __init__(
        self,
        bundle: Bundle,
        backend: str = "torch",
        onnx_cache: Path | None = None,
        thresholds: dict | None = None,
        data=None,  # str | data.station.Station: where an int8 backend calibrates and is gated
        log=None,  # progress lines while an int8 graph is built and judged
    ) -> None:
        if backend not in BACKENDS:
            raise InspectorError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
        self.bundle = bundle
        self.meta = bundle.meta
        self.backend = backend
        # ``thresholds``: the station's overrides merged over the bundle's calibration (Settings).
        self.thresholds = thresholds if thresholds is not None else dict(self.meta.thresholds)
        self.rules = VerdictRules.from_bundle(self.meta.classes, self.meta.normal_class, self.thresholds)
        self.onnx = None  # any predictor with run_with_map/run_outputs: ORT or OpenVINO, fp32 or int8
        self.onnx_path: Path | None = None  # the cached fp32 export
        self.fallback: str | None = None  # why the line does not run what was asked (one line)
        self.gate = None  # inspector.line.int8.GateResult of the int8 graph, where one was judged
        if backend != "torch":
            from inspector.line.backends import open_backend

            try:
                opened = open_backend(self, backend, onnx_cache, data, log or (lambda _line: None))
            except InspectorError as exc:
                if backend != "auto":
                    raise
                self.backend, self.fallback = "torch", f"auto: ONNX export unavailable: {exc}"
            else:
                self.onnx, self.backend, self.fallback = opened.predictor, opened.backend, opened.fallback
                self.gate = opened.gate

    @classmethod
    def load(
        cls, path: str | Path, backend: str = "torch", onnx_cache: Path | None = None
    ) -> InferenceEngine:
        return cls(load_bundle(path), backend, onnx_cache)

    @property
    def sha256(self) -> str:
        from models.bundle import read_meta

        return read_meta(self.bundle.path)[1] if self.bundle.path else "in-memory"

    @property
    def graph_key(self) -> str:
        """What the exported graph depends on: the weights and the fields of ``model.json`` that
        shape the network (backbone, merge schedule, classes, preprocessing). The weights alone
        are not enough: a bundle with the same weights and another schedule (an unmerged twin, a
        re-budgeted export) would be handed the other's cached graph, and its int8 gate."""
        import hashlib
        import json

        if self.bundle.path:
            weights = self.sha256
        else:
            digest = hashlib.sha256()
            for name, tensor in sorted(self.bundle.net.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            weights = digest.hexdigest()
        record = self.meta.to_json(weights)
        shape = {key: record.get(key) for key in ("backbone", "merge", "classes", "preprocessing")}
        text = json.dumps({"weights": weights, **shape}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def onnx_target(self, cache: Path) -> Path:
        """Where this bundle's fp32 export lives in ``cache``; its int8 files and the PC's records
        (gates, ``auto``'s choice) sit beside it. The export format is in the name: a file cached
        before the graph gave the merge map (``<sha>.onnx``) is not reused, so the Live screen's
        overlay works on ONNX too."""
        from models.onnx_export import EXPORT_FORMAT

        return cache / f"{self.graph_key[:16]}.f{EXPORT_FORMAT}.onnx"

    def _onnx_predictor(self, cache: Path | None):  # models.onnx_export.OnnxPredictor
        """The bundle's ONNX export from the cache, verified by hash; rebuilt when missing or corrupt.

        :func:`models.onnx_export.cached_predictor` re-exports a file that does not match its
        ``.sha256`` stamp (truncated, edited, half-copied) or that ONNX Runtime will not load,
        instead of breaking every ``--backend onnx`` run until someone deletes it by hand.
        """
        from models.onnx_export import cached_predictor

        if cache is None:
            raise InspectorError("the ONNX backend needs a cache folder for the exported model")
        target = self.onnx_target(cache)
        self.onnx_path = target
        try:
            return cached_predictor(self.bundle.net, target, self.meta.preprocessing)
        except ModelError as exc:
            raise InspectorError(str(exc)) from None
        except OSError as exc:  # an unwritable cache, say: one line (and ``auto`` falls back)
            raise InspectorError(f"ONNX cache {exc.filename or target}: {exc.strerror or exc}") from None

    def backend_line(self) -> str:
        """The run's first status line: which runtime judges, and why not the one asked for."""
        return f"inference: {BACKEND_NAMES[self.backend]}" + (f" ({self.fallback})" if self.fallback else "")

    def backend_record(self) -> dict:
        """What ran and why, for the run's ledger row (``runs.stats["backend"]``)."""
        record: dict = {"backend": self.backend}
        if self.fallback:
            record["fallback"] = self.fallback
        if self.gate is not None:
            record["gate"] = self.gate.to_json()
        return record

    def warm_up(self) -> None:
        """One throw-away batch so the first real part is not slowed by lazy initialisation."""
        size = self.meta.preprocessing.size
        self.infer([np.zeros((size, size), np.uint8)])

    def infer(self, images: Sequence[np.ndarray], track_maps: bool = False) -> BatchOutput:
        batch = preprocess(images, self.meta.preprocessing)
        maps = None
        resize = self.meta.preprocessing.resize
        if self.onnx is not None:
            probabilities, logits, grids = self.onnx.run_with_map(batch.numpy(), want_map=track_maps)
            energies = energy(logits) if logits is not None else None
            return BatchOutput(
                logits if logits is not None else np.log(probabilities + 1e-12),
                probabilities,
                energies,
                None if grids is None else _on_images(grids, images, resize),
            )
        with torch.inference_mode():
            out = self.bundle.net.run(batch, track_maps=track_maps)
        logits = out.logits.float().numpy()
        if track_maps:
            grids = image_importance(out.merge_maps, len(images))
            maps = None if grids is None else _on_images(grids.float().numpy(), images, resize)
        return BatchOutput(logits, softmax(logits), energy(logits), maps)


def _on_images(grids: np.ndarray, images: Sequence[np.ndarray], resize: str) -> list[np.ndarray]:
    """Per-image importance over the token grid (:func:`models.network.image_importance`, from
    PyTorch or the ONNX graph) in each image's own frame (a letterboxed part's padding dropped),
    so an overlay lines up with the part."""
    return [
        map_on_image(grid, image.shape[0], image.shape[1], resize)
        for grid, image in zip(grids, images, strict=True)  # one map per image of the batch
    ]
