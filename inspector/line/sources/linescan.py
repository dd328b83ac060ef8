"""Line-scan: a camera that delivers image *lines* as a web or conveyor moves under it.

``LineScanSimulator`` sweeps a long strip built from dataset images (parts separated by a gap of
belt), delivering a block of lines per read as a real line-scan camera's buffer would.
``FrameAssembler`` cuts that endless strip into part frames of a set height with an overlap, so a
defect on a cut is always seen whole in one of the two frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from data.errors import DataError
from data.images import read_image, to_uint8
from data.station import Sample
from inspector.line.sources.base import BadFrame, Frame, FrameSource, Pacer, SourceError


@dataclass(frozen=True)
class Part:
    start: int  # first strip row
    stop: int  # one past the last row
    label: str


class LineScanSimulator:
    """Builds the strip lazily, part by part, so an endless run never holds it all in memory."""

    def __init__(self, samples: list[Sample], width: int = 256, gap: int = 24, loop: bool = True) -> None:
        if not samples:
            raise SourceError("line-scan simulation needs at least one image")
        self.samples, self.width, self.gap, self.loop = samples, width, gap, loop
        self.position = 0
        self.rows_emitted = 0
        self.pending = np.zeros((0, width), np.uint8)
        self.pending_start = 0
        self.parts: list[Part] = []

    def _next_part(self) -> bool:
        if self.position >= len(self.samples):
            if not self.loop:
                return False
            self.position = 0
        sample = self.samples[self.position]
        self.position += 1
        try:
            image = to_uint8(read_image(sample.path))
        except DataError:
            image = np.zeros((self.width, self.width), np.uint8)  # an unreadable part: a blank on the belt
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        height = max(1, round(image.shape[0] * self.width / image.shape[1]))
        image = cv2.resize(image, (self.width, height), interpolation=cv2.INTER_AREA)
        start = self.pending_start + len(self.pending)
        self.parts.append(Part(start, start + height, sample.label))
        belt = np.full((self.gap, self.width), 16, np.uint8)
        self.pending = np.concatenate([self.pending, image, belt])
        return True

    def read_lines(self, count: int) -> np.ndarray | None:
        """The next ``count`` lines (fewer at the very end of a finite sweep; None after it)."""
        while len(self.pending) < count and self._next_part():
            pass
        if len(self.pending) == 0:
            return None
        block, self.pending = self.pending[:count], self.pending[count:]
        self.pending_start += len(block)
        return block

    def label_for(self, start: int, stop: int) -> str | None:
        """The part covering most of strip rows [start, stop) — the frame's ground truth."""
        best, best_overlap = None, 0
        for part in self.parts:
            overlap = min(stop, part.stop) - max(start, part.start)
            if overlap > best_overlap:
                best, best_overlap = part.label, overlap
        # Forget parts far behind: the strip is endless.
        self.parts = [p for p in self.parts if p.stop > start - 4 * (stop - start)]
        return best if best_overlap >= (stop - start) // 4 else None


class FrameAssembler:
    """Cuts a stream of lines into frames of ``height`` rows; consecutive frames share ``overlap``."""

    def __init__(self, height: int, overlap: int = 0) -> None:
        if height <= 0 or not 0 <= overlap < height:
            raise SourceError(
                f"line-scan frame height {height}, overlap {overlap}: need 0 <= overlap < height"
            )
        self.height, self.overlap = height, overlap
        self.buffer: np.ndarray | None = None
        self.buffer_start = 0  # strip row of buffer[0]

    def push(self, lines: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add lines; return every completed frame as (first strip row, frame)."""
        self.buffer = lines if self.buffer is None else np.concatenate([self.buffer, lines])
        frames = []
        step = self.height - self.overlap
        while len(self.buffer) >= self.height:
            frames.append((self.buffer_start, self.buffer[: self.height].copy()))
            self.buffer = self.buffer[step:]
            self.buffer_start += step
        return frames


class LineScanSource(FrameSource):
    """A simulated line-scan camera plus the assembler: delivers part frames to the pipeline."""

    fixed_shape = True

    def __init__(
        self,
        samples: list[Sample],
        name: str = "line-scan",
        width: int = 256,
        frame_height: int = 256,
        overlap: int = 32,
        lines_per_read: int = 64,
        fps: float | None = 10.0,
        loop: bool = True,
    ) -> None:
        super().__init__()
        FrameAssembler(frame_height, overlap)  # a bad height or overlap is refused here, not at open()
        self.name = name
        self.samples = samples
        self.width, self.frame_height, self.overlap = width, frame_height, overlap
        self.lines_per_read = lines_per_read
        self.fps, self.loop = fps, loop
        self.pacer = Pacer(fps)
        self.simulator: LineScanSimulator | None = None
        self.assembler: FrameAssembler | None = None
        self.ready: list[tuple[int, np.ndarray]] = []

    def open(self) -> None:
        self.simulator = LineScanSimulator(self.samples, self.width, loop=self.loop)
        self.assembler = FrameAssembler(self.frame_height, self.overlap)
        self.ready = []

    def read(self) -> Frame | None:
        if self.simulator is None or self.assembler is None:
            raise SourceError(f"{self.name}: not open")
        while not self.ready:
            lines = self.simulator.read_lines(self.lines_per_read)
            if lines is None:
                return None
            self.ready.extend(self.assembler.push(lines))
        start, image = self.ready.pop(0)
        self.pacer.wait()
        if image.size == 0:
            raise BadFrame("empty")
        truth = self.simulator.label_for(start, start + self.frame_height)
        return Frame(self.next_index(), image, meta={"strip_row": start}, truth=truth)
