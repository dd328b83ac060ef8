"""Cameras, video files and network streams through OpenCV's ``VideoCapture``."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from inspector.line.sources.base import BadFrame, Frame, FrameSource, Pacer, SourceDisconnected, SourceError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


def _describe(target: int | str) -> str:
    return f"camera {target}" if isinstance(target, int) else str(target)


class VideoCaptureSource(FrameSource):
    """A device index, a video file or a stream URL.

    Devices and streams are live: a failed read means the link dropped, so the pipeline reconnects.
    A video file simply ends (or loops, for a soak test). Frames arrive BGR from OpenCV and leave
    RGB (or gray), the same convention as images read from disk.
    """

    def __init__(self, target: int | str, fps: float | None = None, loop: bool = False) -> None:
        super().__init__()
        self.target = target
        self.is_file = isinstance(target, str) and not target.startswith(STREAM_PREFIXES)
        self.name = _describe(target)
        self.fps = fps
        self.loop = loop
        self.reconnectable = not self.is_file
        self.fixed_shape = True
        self.capture: cv2.VideoCapture | None = None
        self.pacer = Pacer(fps)

    def open(self) -> None:
        if self.is_file and not Path(str(self.target)).is_file():
            raise SourceError(f"{self.target}: no such video file")
        # OpenCV prints its own warnings for missing devices; the error below says it in one line.
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            if isinstance(self.target, int):
                raise SourceError(f"{self.name}: cannot open (unplugged, in use elsewhere, or no permission)")
            raise SourceError(f"{self.name}: cannot open (unreachable stream or unreadable video)")
        self.capture = capture
        if self.fps is None and self.is_file:
            # A recorded video replays at the rate it was recorded at.
            rate = capture.get(cv2.CAP_PROP_FPS)
            self.fps = float(rate) if rate and 0 < rate < 1000 else None
            self.pacer = Pacer(self.fps)

    def read(self) -> Frame | None:
        if self.capture is None:
            raise SourceDisconnected(f"{self.name}: not open")
        self.pacer.wait()
        ok, image = self.capture.read()
        if not ok:
            if not self.is_file:
                raise SourceDisconnected(f"{self.name}: no frame (connection lost)")
            if not self.loop:
                return None
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.capture.read()
            if not ok:
                return None
        if image is None or image.size == 0:
            raise BadFrame("empty")
        return Frame(self.next_index(), _to_rgb(image), meta={"source": self.name})

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    return image
