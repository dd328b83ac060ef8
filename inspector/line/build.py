"""Putting a line together from what a person chose: source, model, ledger, archive, settings.

The CLI's ``run``/``demo`` and the app's Live screen both build their pipeline here, so a run
started from either behaves the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inspector.line.archive import GIB, ArchivePolicy, ImageArchive
from inspector.line.drift import DriftConfig, DriftWatch
from inspector.line.inference import InferenceEngine
from inspector.line.outputs import build_outputs, check_output_urls
from inspector.line.pipeline import Pipeline, PipelineConfig, RunInfo
from inspector.line.resolve import resolve_model, resolve_shadow
from inspector.line.shadow import ShadowRunner
from inspector.line.sources import open_source
from inspector.settings import Settings
from inspector.store import Ledger, default_url
from models.bundle import load_bundle

DEMO_STATION = "demo-elpv"


@dataclass
class LineRequest:
    source: str
    home: Path
    model: str | None = None  # a bundle folder, "demo", or None for the deployed version
    db: str | None = None
    frames: int | None = None
    station: str = "station-1"
    lot: str = ""
    operator: str = ""
    backend: str = "auto"
    fps: float | None = None
    archive: bool = True
    queue_size: int = 8
    drop: str = "oldest"
    track_maps: bool = False
    settings: Settings | None = None
    shadow: str | None = None  # a candidate judging beside the line: a version (v3), a bundle, "demo"
    outputs: list[str] | None = None  # line output URLs; None: the settings' list


def ledger_url(db: str | None, home: Path, settings: Settings | None = None) -> str:
    return db or os.environ.get("INSPECTOR_DB") or (settings.db_url if settings else "") or default_url(home)


def build_pipeline(request: LineRequest, ledger: Ledger | None = None) -> Pipeline:
    """A ready-to-start pipeline; opens (and migrates) the ledger unless one is handed in."""
    settings = request.settings or Settings()
    output_urls = settings.outputs if request.outputs is None else request.outputs
    check_output_urls(output_urls)  # a bad URL is refused before anything is opened
    source = open_source(request.source, fps=request.fps)
    path = resolve_model(request.model, request.home)
    bundle = load_bundle(path)
    # The same choice as ``inspector run``, overlay or not: the ONNX graph gives the merge map too.
    backend = request.backend
    engine = InferenceEngine(
        bundle, backend, request.home / "cache" / "onnx", settings.thresholds(bundle.meta.thresholds)
    )
    shadow = None
    if request.shadow:
        shadow_path, shadow_name = resolve_shadow(request.shadow, request.home)
        candidate = load_bundle(shadow_path)
        shadow = ShadowRunner(
            InferenceEngine(
                candidate,
                backend,
                request.home / "cache" / "onnx",
                settings.thresholds(candidate.meta.thresholds),
            ),
            shadow_name,
        )
    if ledger is None:
        ledger = Ledger(ledger_url(request.db, request.home, settings))
    archive = None
    if request.archive:
        policy = ArchivePolicy(
            ok_every=settings.archive_ok_every, cap_bytes=int(settings.archive_cap_gib * GIB)
        )
        archive = ImageArchive(request.home / "archive", policy)
    config = PipelineConfig(
        queue_size=request.queue_size,
        drop_policy=request.drop,
        max_frames=request.frames,
        track_maps=request.track_maps,
        cycle_budget_ms=settings.cycle_budget_ms,
    )
    run = RunInfo(request.station, request.operator, request.lot)
    outputs = build_outputs(output_urls, request.home, request.station)
    watch = DriftWatch(engine, DriftConfig.from_settings(settings, request.home))
    return Pipeline(source, engine, ledger, archive, config, run, outputs, shadow, watch)
