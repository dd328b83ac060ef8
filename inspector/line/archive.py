"""The image archive: what QA needs to see again, within a size cap, never at the cost of results.

Policy: NG and UNSURE (and ERROR) images always, OK images sampled (one in ``ok_every``).
Files are content-addressed (``<verdict>/<ab>/<sha256>.png``) so a part seen twice is stored once
and a reference in the ledger can never point at the wrong picture. Over the size cap, the oldest
OK images go first; verdict images are only ever removed by a person. A full disk (or a cap that
only verdict images fill) pauses archiving with an alarm while results keep flowing; archiving
retries after ``retry_s``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data.images import to_uint8

GIB = 1024**3


@dataclass(frozen=True)
class ArchivePolicy:
    ok_every: int = 50  # keep one OK image in this many (0: none)
    cap_bytes: int = 2 * GIB
    retry_s: float = 30.0


class ImageArchive:
    def __init__(self, root: Path, policy: ArchivePolicy = ArchivePolicy()) -> None:
        self.root = Path(root)
        self.policy = policy
        self.root.mkdir(parents=True, exist_ok=True)
        self.staging = self.root / ".incoming.png.tmp"
        self.ok_files: deque[tuple[float, Path, int]] = deque()
        self.total_bytes = 0
        self.ok_seen = 0
        self.paused_until = 0.0
        self.pause_reason = ""
        self._scan()

    def _scan(self) -> None:
        """Rebuild the size tally and the OK eviction order from what is on disk (restart-safe)."""
        ok = []
        for path in self.root.rglob("*.png"):
            try:
                stat = path.stat()
            except OSError:
                continue
            self.total_bytes += stat.st_size
            if path.relative_to(self.root).parts[0] == "ok":
                ok.append((stat.st_mtime, path, stat.st_size))
        self.ok_files = deque(sorted(ok))

    @property
    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def wants(self, verdict: str) -> bool:
        if verdict != "OK":
            return True
        self.ok_seen += 1
        return self.policy.ok_every > 0 and (self.ok_seen - 1) % self.policy.ok_every == 0

    def store(self, image: np.ndarray, verdict: str) -> tuple[str | None, str | None]:
        """Archive ``image``; returns (reference, alarm). An alarm means archiving just paused."""
        if self.paused or not self.wants(verdict):
            return None, None
        ok, encoded = cv2.imencode(".png", _to_bgr(image))
        if not ok:
            return None, None
        data = encoded.tobytes()
        digest = hashlib.sha256(data).hexdigest()
        relative = Path(verdict.lower()) / digest[:2] / f"{digest}.png"
        target = self.root / relative
        if target.exists():
            return str(relative), None
        if not self._make_room(len(data)):
            return None, self._pause(
                f"image archive at its cap ({self.policy.cap_bytes / GIB:.1f} GiB) "
                "with no OK images left to remove"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(self.staging, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(self.staging, target)
        except OSError as exc:
            self._discard_staging()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
                return None, self._pause(f"image archive {self.root}: {exc.strerror or exc}")
            raise
        self.total_bytes += len(data)
        if verdict == "OK":
            self.ok_files.append((time.time(), target, len(data)))
        return str(relative), None

    def _make_room(self, needed: int) -> bool:
        while self.total_bytes + needed > self.policy.cap_bytes and self.ok_files:
            _, path, size = self.ok_files.popleft()
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            self.total_bytes -= size
        return self.total_bytes + needed <= self.policy.cap_bytes

    def _pause(self, reason: str) -> str:
        self.paused_until = time.monotonic() + self.policy.retry_s
        self.pause_reason = reason
        return f"{reason}; archiving paused for {self.policy.retry_s:.0f} s, results keep flowing"

    def _discard_staging(self) -> None:
        try:
            if self.staging.is_file():  # never unlink a link someone put there
                self.staging.unlink()
        except OSError:
            pass


def _to_bgr(image: np.ndarray) -> np.ndarray:
    image = to_uint8(image) if image.dtype != np.uint16 else image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return image
