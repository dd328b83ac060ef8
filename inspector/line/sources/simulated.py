"""A simulated inspection station: a dataset's test split replayed at line rate, truth attached.

The station *profile* models what changes on a real line after the model was trained: a lamp
ageing (``lighting``), a camera knocked off its mount (``angle``), dirty optics (``optics``).
Switching it on mid-run shows the model drifting, which is what the demo does.
"""

from __future__ import annotations

import threading

import numpy as np

from data.augment import PRESETS, apply, build_augmentation
from data.errors import DataError
from data.station import Sample, Station
from inspector.line.sources.base import Frame, FrameSource, Pacer, SourceError, read_frame_image


class SimulatedStation(FrameSource):
    def __init__(
        self,
        station: Station,
        split: str = "test",
        fps: float | None = 10.0,
        loop: bool = True,
        profile: str | None = None,
        severity: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.station = station
        self.split = split
        self.name = f"simulated {station.source} station ({split} split)"
        self.fps = fps
        self.loop = loop
        self.seed = seed
        self.severity = severity
        self.samples: list[Sample] = []
        self.position = 0
        self.pacer = Pacer(fps)
        self._lock = threading.Lock()
        self._profile: str | None = None
        self._transform = None
        self.set_profile(profile)

    @property
    def profile(self) -> str | None:
        return self._profile

    def set_profile(self, profile: str | None, severity: int | None = None) -> None:
        """Switch the station's condition live (thread-safe: the UI calls this while frames flow)."""
        if profile is not None and profile not in PRESETS:
            raise SourceError(f"unknown station profile {profile!r} (choose from {', '.join(PRESETS)})")
        try:
            transform = (
                build_augmentation([profile], severity or self.severity, seed=self.seed) if profile else None
            )
        except DataError as exc:
            raise SourceError(str(exc)) from None
        with self._lock:
            self._profile, self._transform = profile, transform
            if severity:
                self.severity = severity

    def open(self) -> None:
        try:
            samples = self.station.split(self.split)
        except DataError as exc:
            raise SourceError(str(exc)) from None
        if not samples:
            raise SourceError(f"{self.station.root}: the {self.split} split is empty")
        order = np.random.default_rng(self.seed).permutation(len(samples))
        self.samples = [samples[i] for i in order]
        self.position = 0

    def read(self) -> Frame | None:
        if self.position >= len(self.samples):
            if not self.loop:
                return None
            self.position = 0
        sample = self.samples[self.position]
        self.position += 1
        self.pacer.wait()
        index = self.next_index()
        image = read_frame_image(sample.path)
        with self._lock:
            transform, profile = self._transform, self._profile
        if transform is not None:
            image = apply(transform, image if image.dtype == np.uint8 else (image // 257).astype(np.uint8))
        meta = {"path": str(sample.path), "profile": profile or "none"}
        return Frame(index, image, meta=meta, truth=sample.label)
