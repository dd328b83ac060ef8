"""The live pipeline end to end with the bundled demo model, real sources and a real SQLite ledger."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from ledger_support import BACKENDS, database_url

from inspector.line.archive import ArchivePolicy, ImageArchive
from inspector.line.demo import demo_model_path
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import Pipeline, PipelineConfig, RunInfo
from inspector.line.sources.base import SourceDisconnected
from inspector.line.sources.folder_source import FolderSource
from inspector.line.sources.opencv_source import VideoCaptureSource
from inspector.store import Ledger, ResultFilter


@pytest.fixture(scope="module")
def engine():
    return InferenceEngine.load(demo_model_path())


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    """The same pipeline tests on SQLite and on a real PostgreSQL (skipped without a server)."""
    with database_url(request.param, tmp_path) as url, Ledger(url) as opened:
        yield opened


def _accounted(pipeline, ledger=None):
    snap = pipeline.stats.snapshot()
    assert snap.entered == snap.written + snap.dropped, snap
    if ledger is not None:
        assert ledger.count_results(ResultFilter(run_id=pipeline.run_id)) == snap.written
    return snap


def _wait_for(condition, timeout_s: float = 120.0) -> None:
    """Poll ``condition`` until it holds (the test waits for a state, never for a guessed time)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the pipeline"
        time.sleep(0.01)


def test_folder_run_writes_one_row_per_frame_and_counts_corrupt_files(tiny_station, ledger, engine, tmp_path):
    (tiny_station / "ok" / "zz_truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    archive = ImageArchive(tmp_path / "archive", ArchivePolicy(ok_every=1))
    pipeline = Pipeline(
        FolderSource(tiny_station, fps=None),
        engine,
        ledger,
        archive,
        PipelineConfig(drop_policy="block"),
        RunInfo("bench-1", operator="ana", lot="L42"),
    )
    pipeline.run()
    snap = _accounted(pipeline, ledger)
    assert snap.entered == 73 and snap.drops == {"corrupt": 1} and snap.written == 72
    rows = ledger.query_results(ResultFilter(lot="L42"), limit=500)
    assert len(rows) == 72
    assert {r["truth"] for r in rows} == {"ok", "scratch", "spot"}
    assert all(r["verdict"] in ("OK", "NG", "UNSURE") for r in rows)
    assert all(r["latency_total_ms"] >= r["latency_infer_ms"] >= 0 for r in rows)
    assert all(r["image_ref"] and (archive.root / r["image_ref"]).is_file() for r in rows)
    assert ledger.runs()[0]["status"] == "finished"


def test_an_image_over_the_pixel_limit_is_a_counted_drop(tiny_station, ledger, engine):
    """A PNG header claiming 100000x100000 ended a folder run after 0 frames (source_failed)."""
    from tests_support import png_claiming

    (tiny_station / "ok" / "aa_huge.png").write_bytes(png_claiming(100_000, 100_000))
    config = PipelineConfig(drop_policy="block")
    pipeline = Pipeline(FolderSource(tiny_station, fps=None), engine, ledger, config=config)
    pipeline.run()
    snap = _accounted(pipeline, ledger)
    assert pipeline.error is None
    assert snap.drops == {"wrong_size": 1} and snap.written == 72


def test_overload_drops_oldest_and_every_frame_is_accounted_for(tiny_station, ledger, engine):
    pipeline = Pipeline(
        FolderSource(tiny_station, fps=None, loop=True),
        engine,
        ledger,
        config=PipelineConfig(queue_size=2, max_batch=1, max_frames=300),
    )
    pipeline.run()
    snap = _accounted(pipeline, ledger)
    assert snap.entered == 300
    assert snap.drops.get("queue_full", 0) > 0


def test_stop_flushes_what_is_queued(tiny_station, ledger, engine):
    pipeline = Pipeline(
        FolderSource(tiny_station, fps=200, loop=True), engine, ledger, config=PipelineConfig(queue_size=64)
    )
    pipeline.start()
    _wait_for(lambda: pipeline.stats.snapshot().entered >= 20)  # frames in flight, not a fixed sleep
    pipeline.stop()
    assert pipeline.wait(30)
    snap = _accounted(pipeline, ledger)
    assert snap.written > 0


class FlakyVideo(VideoCaptureSource):
    """A real video file whose 'cable' is pulled once after a few frames."""

    reconnectable = True

    def __init__(self, path: str) -> None:
        super().__init__(path, fps=0)
        self.reconnectable = True
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.reads == 5:
            raise SourceDisconnected(f"{self.name}: link down")
        return super().read()


def test_a_lost_camera_reconnects_and_the_run_goes_on(tmp_path, ledger, engine):
    path = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 96))
    for i in range(20):
        writer.write(np.full((96, 96, 3), 100 + i, np.uint8))
    writer.release()
    pipeline = Pipeline(FlakyVideo(str(path)), engine, ledger, config=PipelineConfig(drop_policy="block"))
    pipeline.run()
    snap = _accounted(pipeline, ledger)
    assert snap.reconnects == 1
    kinds = [e.kind for e in pipeline.events]
    assert "camera_lost" in kinds and "reconnected" in kinds
    assert {e["kind"] for e in ledger.events(run_id=pipeline.run_id)} >= {"camera_lost", "reconnected"}
    # The file reopened from its start: frames before the pull are seen again, none is lost.
    assert snap.written == 4 + 20


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full for a real ENOSPC")
def test_full_disk_pauses_archiving_while_results_keep_flowing(tiny_station, ledger, engine, tmp_path):
    archive = ImageArchive(tmp_path / "archive", ArchivePolicy(ok_every=1, retry_s=3600))
    archive.staging.symlink_to("/dev/full")  # every archive write now fails with ENOSPC from the kernel
    pipeline = Pipeline(
        FolderSource(tiny_station, fps=None), engine, ledger, archive, PipelineConfig(drop_policy="block")
    )
    pipeline.run()
    snap = _accounted(pipeline, ledger)
    assert snap.written == 72 and snap.archived == 0
    alarms = [e for e in pipeline.events if e.kind == "archive_paused"]
    assert len(alarms) == 1 and "No space left" in alarms[0].message
    assert archive.staging.is_symlink()


def test_archive_keeps_verdict_images_and_evicts_oldest_ok_first(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64), np.uint8) for _ in range(6)]
    size = len(cv2.imencode(".png", images[0])[1])
    archive = ImageArchive(tmp_path / "a", ArchivePolicy(ok_every=1, cap_bytes=int(size * 3.5)))
    refs = [archive.store(images[0], "NG")[0]] + [archive.store(im, "OK")[0] for im in images[1:4]]
    assert refs[0].startswith("ng/") and all(r.startswith("ok/") for r in refs[1:])
    assert not (archive.root / refs[1]).exists()  # the oldest OK went to make room
    assert (archive.root / refs[0]).exists() and (archive.root / refs[3]).exists()
    assert archive.store(images[0], "NG")[0] == refs[0]  # content-addressed: stored once
    again = ImageArchive(tmp_path / "a", archive.policy)  # a restart sees the same tally
    assert again.total_bytes == archive.total_bytes


def test_onnx_backend_gives_the_same_verdicts_as_torch(tiny_station, engine, tmp_path):
    onnx_engine = InferenceEngine.load(demo_model_path(), "onnx", tmp_path / "onnx")
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(tiny_station.rglob("*.png"))[:6]]
    a, b = engine.infer(images), onnx_engine.infer(images)
    assert np.abs(a.probabilities - b.probabilities).max() < 1e-4
    assert np.abs(a.energies - b.energies).max() < 1e-3


def test_a_corrupt_onnx_cache_is_rebuilt(tmp_path, tiny_vit_spec):
    """A damaged cached export broke every ``--backend onnx`` run until deleted by hand."""
    from models.bundle import load_bundle, meta_for, save_bundle
    from models.network import InspectionNet

    net = InspectionNet(tiny_vit_spec, 2, "none")
    bundle = load_bundle(save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "m"))
    cache = tmp_path / "onnx"
    first = InferenceEngine(bundle, "onnx", cache)
    (cached,) = cache.glob("*.onnx")
    image = np.zeros((64, 64), np.uint8)
    expected = first.infer([image]).probabilities
    for damage in (lambda: cached.write_bytes(cached.read_bytes()[:500]), lambda: cached.write_bytes(b"")):
        damage()
        again = InferenceEngine(bundle, "onnx", cache)
        np.testing.assert_allclose(again.infer([image]).probabilities, expected, atol=1e-6)
    stamp = cached.with_name(cached.name + ".sha256")
    stamp.write_text("0" * 64)  # bytes intact, record disagrees: rebuilt too
    before = cached.stat().st_ino
    InferenceEngine(bundle, "onnx", cache)
    assert cached.stat().st_ino != before, "a new file was exported and renamed into place"


KILL_SCRIPT = """
import sys
from inspector.cli import main
sys.argv = ["inspector", "run", "--source", sys.argv[1] + "?fps=0&loop=1", "--model", "demo",
            "--db", sys.argv[2], "--drop", "block", "--no-archive", "--home", sys.argv[3]]
main()
"""


def test_kill_9_leaves_a_sound_database_and_the_next_start_goes_on(tiny_station, tmp_path):
    db = tmp_path / "line.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(tiny_station), url, str(tmp_path / "home")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        rows = 0
        while time.monotonic() < deadline and rows < 40:
            time.sleep(0.3)
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as con:
                        rows = con.execute("select count(*) from results").fetchone()[0]
                except sqlite3.Error:
                    rows = 0
        assert rows >= 40, "the run never got going"
    finally:
        proc.kill()
        proc.wait()
    with sqlite3.connect(db) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        after = con.execute("select count(*) from results").fetchone()[0]
        assert after >= rows  # nothing committed was lost
        partial = con.execute(
            "select count(*) from results where verdict is null or captured_at is null or run_id is null"
        ).fetchone()[0]
        assert partial == 0
    with Ledger(url) as ledger:
        pipeline = Pipeline(
            FolderSource(tiny_station, fps=None),
            InferenceEngine.load(demo_model_path()),
            ledger,
            config=PipelineConfig(drop_policy="block", max_frames=5),
        )
        pipeline.run()
        statuses = {r["id"]: r["status"] for r in ledger.runs()}
        assert statuses[pipeline.run_id] == "finished"
        assert "interrupted" in statuses.values()
        assert ledger.count_results(ResultFilter(run_id=pipeline.run_id)) == 5
