"""Frame sources: real OpenCV video files, folders with bad files, the simulated and line-scan stations."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from inspector.line.sources import BadFrame, SourceError, open_source
from inspector.line.sources.folder_source import FolderSource
from inspector.line.sources.linescan import FrameAssembler, LineScanSimulator, LineScanSource
from inspector.line.sources.opencv_source import VideoCaptureSource


def _write_video(path, frames: int = 12, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 10 * i, np.uint8)
        writer.write(image)
    writer.release()


def test_video_file_replays_every_frame_then_ends(tmp_path):
    path = tmp_path / "line.avi"
    _write_video(path)
    with VideoCaptureSource(str(path), fps=0) as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (48, 64, 3)
    assert not source.reconnectable


def test_missing_camera_and_file_are_one_line_errors(tmp_path):
    with pytest.raises(SourceError, match="no such video file"):
        VideoCaptureSource(str(tmp_path / "none.avi")).open()
    with pytest.raises(SourceError, match="camera 97: cannot open"):
        VideoCaptureSource(97).open()


def test_folder_source_marks_corrupt_files_and_reads_truth(tiny_station):
    (tiny_station / "ok" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    source = FolderSource(tiny_station, fps=None)
    source.open()
    good, bad = 0, 0
    truths = set()
    while True:
        try:
            frame = source.read()
        except BadFrame as exc:
            assert exc.reason == "corrupt" and "zz_broken.png" in str(exc)
            bad += 1
            continue
        if frame is None:
            break
        good += 1
        truths.add(frame.truth)
    assert (good, bad) == (72, 1)
    assert truths == {"ok", "scratch", "spot"}


def test_open_source_understands_the_cli_forms(tmp_path, tiny_station):
    video = tmp_path / "clip.avi"
    _write_video(video, 2)
    assert isinstance(open_source(str(video)), VideoCaptureSource)
    assert isinstance(open_source(str(tiny_station) + "?fps=5&loop=1"), FolderSource)
    assert open_source("3").target == 3
    assert open_source("rtsp://10.0.0.5/stream?x=1").target == "rtsp://10.0.0.5/stream?x=1"
    sim = open_source(f"sim:{tiny_station}?profile=lighting&fps=20")
    assert sim.profile == "lighting" and sim.fps == 20
    with pytest.raises(SourceError, match="no such folder, file or camera"):
        open_source(str(tmp_path / "nothing"))
    with pytest.raises(SourceError, match="not a number"):
        open_source("sim?fps=fast")
    with pytest.raises(SourceError, match="unknown station profile"):
        open_source(f"sim:{tiny_station}?profile=rain")


def test_simulated_station_attaches_truth_and_switches_profile(tiny_station):
    source = open_source(f"sim:{tiny_station}?fps=0&split=all&loop=0")
    source.open()
    first = source.read()
    assert first.truth in {"ok", "scratch", "spot"} and first.meta["profile"] == "none"
    source.set_profile("lighting", 3)
    second = source.read()
    assert second.meta["profile"] == "lighting"
    count = 2
    while source.read() is not None:
        count += 1
    assert count == 72


def test_genicam_without_the_extra_says_how_to_install(tmp_path):
    producer = tmp_path / "vendor.cti"
    producer.write_bytes(b"not a real producer")
    import importlib.util

    source = open_source(f"genicam:{producer}#1234")
    # Without the extra: how to install it; with it: this fake producer cannot be loaded.
    installed = importlib.util.find_spec("harvesters") is not None
    expected = "cannot open" if installed else r"ltm-inspector\[genicam\]"
    with pytest.raises(SourceError, match=expected):
        source.open()


def test_frame_assembler_cuts_with_overlap():
    assembler = FrameAssembler(height=10, overlap=3)
    strip = np.arange(40)[:, None].repeat(4, 1).astype(np.uint8)
    frames = []
    for start in range(0, 40, 6):
        frames += assembler.push(strip[start : start + 6])
    starts = [s for s, _ in frames]
    assert starts == [0, 7, 14, 21, 28]
    for start, image in frames:
        assert image.shape == (10, 4)
        assert image[0, 0] == start and image[-1, 0] == start + 9
    with pytest.raises(SourceError):
        FrameAssembler(10, 10)


def test_line_scan_source_delivers_part_frames_with_truth(tiny_station):
    from data.station import load_station

    samples = load_station(tiny_station).split("all")[:6]
    simulator = LineScanSimulator(samples, width=40, gap=8, loop=False)
    total = 0
    while (lines := simulator.read_lines(16)) is not None:
        total += len(lines)
    assert total == 6 * (40 + 8)
    source = LineScanSource(
        samples, width=40, frame_height=40, overlap=8, lines_per_read=16, fps=None, loop=False
    )
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert len(frames) == (6 * (40 + 24) - 40) // 32 + 1  # default belt gap 24 rows
    assert all(f.image.shape == (40, 40) for f in frames)
    assert frames[0].truth == samples[0].label


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sim?fps=-5", "fps= -5.0: must be a finite number"),
        ("sim?fps=nan", "fps= nan: must be a finite number"),
        ("sim?fps=inf", "fps= inf: must be a finite number"),
        ("linescan:{station}?height=0", "height=0: must be 1 or more"),
        ("linescan:{station}?overlap=-5", "overlap=-5: must be 0 or more"),
        ("linescan:{station}?height=64&overlap=64", "need 0 <= overlap < height"),
        ("sim:{station}?severity=0", "severity=0: must be 1 or more"),
    ],
)
def test_source_options_out_of_range_are_refused_not_defaulted(tiny_station, text, message):
    """``fps=-5|nan|inf`` meant "unpaced" and ``height=0&overlap=-5`` the defaults, silently."""
    with pytest.raises(SourceError, match=re.escape(message)):
        open_source(text.format(station=tiny_station))


@pytest.mark.parametrize("fps", [-5.0, float("nan"), float("inf")])
def test_a_bad_replay_rate_is_refused(tiny_station, fps):
    with pytest.raises(SourceError, match="--fps"):
        open_source(str(tiny_station), fps=fps)
    assert open_source(str(tiny_station), fps=0).fps is None  # 0 stays "unpaced", as documented


def test_a_frame_over_the_pixel_limit_is_wrong_size(tiny_station, monkeypatch):
    from inspector.line.sources.base import check_image

    monkeypatch.setenv("INSPECTOR_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(BadFrame) as info:
        check_image(np.zeros((40, 40), np.uint8))
    assert info.value.reason == "wrong_size"
    source = FolderSource(tiny_station, fps=None)
    source.open()
    with pytest.raises(BadFrame) as info:
        source.read()
    assert info.value.reason == "wrong_size" and "over the 0.001 MP limit" in str(info.value)
