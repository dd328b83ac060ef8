"""The frame-source interface shared by every camera and replay source."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from data.errors import DataError, ImageTooLarge
from data.images import max_pixels, read_image
from inspector.errors import InspectorError


class SourceError(InspectorError):
    """A source that cannot be opened at all (wrong path, unplugged camera, missing driver)."""


class SourceDisconnected(InspectorError):
    """A source that was running and stopped delivering; the pipeline reconnects with back-off."""


class BadFrame(Exception):
    """One unusable frame (empty, corrupt, wrongly sized): counted and skipped, never fatal."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Frame:
    """One image on its way through the line, with the timestamps every stage adds."""

    index: int
    image: np.ndarray
    captured_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    meta: dict[str, Any] = field(default_factory=dict)
    truth: str | None = None
    stamps: dict[str, float] = field(default_factory=lambda: {"captured": time.perf_counter()})


class FrameSource(ABC):
    """A camera or replay. ``read`` returns the next frame, or None when a finite source ends."""

    #: shown in the ledger and the status line
    name: str = "source"
    #: frames per second a replay is paced at (None: as fast as the device delivers)
    fps: float | None = None
    #: a live device that may come back after a disconnect (replays simply end)
    reconnectable: bool = False
    #: every frame must have the first frame's shape (a fixed camera); replays may vary
    fixed_shape: bool = False

    def __init__(self) -> None:
        self._count = 0

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> Frame | None: ...

    def close(self) -> None:  # noqa: B027 - most sources have nothing to release
        """Release the device; safe to call twice."""

    def next_index(self) -> int:
        index = self._count
        self._count += 1
        return index

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Pacer:
    """Holds a replay to a set frame rate without drifting (sleeps to a schedule, not a delay)."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self.next_due: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        if self.next_due is None:
            self.next_due = now
        delay = self.next_due - now
        if delay > 0:
            time.sleep(delay)
        # Never bank more than one period of catch-up after a stall: a replay should not burst.
        self.next_due = max(self.next_due + self.period, time.perf_counter() - self.period)


def read_frame_image(path: str | Path) -> np.ndarray:
    """An image file as a frame: any unreadable file is a counted drop, never the end of the line.

    Over the pixel limit (checked from the header, before decoding) is ``wrong_size``; anything
    else unreadable is ``corrupt``.
    """
    try:
        return read_image(path)
    except ImageTooLarge as exc:
        raise BadFrame("wrong_size", str(exc)) from None
    except DataError as exc:
        raise BadFrame("corrupt", str(exc)) from None


def check_image(image: np.ndarray | None, min_side: int = 8) -> np.ndarray:
    """Reject what no model can use, with the reason the drop counter shows."""
    if image is None or image.size == 0:
        raise BadFrame("empty")
    if image.ndim not in (2, 3) or min(image.shape[:2]) < min_side:
        raise BadFrame("wrong_size", f"shape {tuple(image.shape)}")
    try:
        over = image.shape[0] * image.shape[1] > max_pixels()
    except DataError as exc:  # a malformed INSPECTOR_MAX_IMAGE_PIXELS
        raise BadFrame("wrong_size", str(exc)) from None
    if over:
        raise BadFrame("wrong_size", f"shape {tuple(image.shape)} over the {max_pixels() / 1e6:g} MP limit")
    if image.dtype not in (np.uint8, np.uint16):
        raise BadFrame("corrupt", f"pixel type {image.dtype}")
    return image
