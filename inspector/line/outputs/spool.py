"""An on-disk FIFO of messages not yet acknowledged: what MQTT keeps while the broker is away.

Layout of the folder: ``seg-<first seq>.log`` files of lines ``<seq> <payload>\\n`` (the payload is
one line of JSON), and ``acked`` holding the last sequence number the broker acknowledged, every
earlier one included. Appends are flushed to the OS at once (so they survive a crash of our
process) and fsynced every ``SYNC_EVERY_S`` (power loss); a line torn by a crash is cut off when
the spool is opened again. ``acked`` is rewritten atomically; if our process dies before it is
updated, the last messages are sent once more on restart (at-least-once, as MQTT QoS 1 is).

Bounded: past ``max_messages`` unacknowledged messages, new ones are refused (and counted by the
caller), the oldest are never overwritten. One process at a time: a second one opening the same
spool (two lines with the same broker, prefix and station) is refused with :class:`SpoolBusy`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path

SEGMENT_MESSAGES = 5_000
SYNC_EVERY_S = 1.0


class SpoolFull(Exception):
    pass


class SpoolBusy(OSError):
    pass


def _lock(path: Path):  # an open file holding an exclusive lock, or None
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (one line per station is the rule there)
        return None
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SpoolBusy(f"{path.parent}: in use by another running line") from None
    return handle


class DiskSpool:
    def __init__(self, folder: Path, max_messages: int = 100_000) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_handle = _lock(self.folder / "lock")
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._pending: deque[tuple[int, bytes]] = deque()
        self._acked = self._read_acked()
        self._next = self._acked + 1
        self._segment: Path | None = None
        self._segment_count = 0
        self._handle = None
        self._dirty = False
        self._synced_at = time.monotonic()
        self._load()

    # -- opening --------------------------------------------------------------------------------

    def _read_acked(self) -> int:
        try:
            return int((self.folder / "acked").read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            return 0

    def _segments(self) -> list[Path]:
        found = []
        for path in self.folder.glob("seg-*.log"):
            try:
                found.append((int(path.stem[4:]), path))
            except ValueError:
                continue
        return [path for _, path in sorted(found)]

    def _load(self) -> None:
        segments = self._segments()
        last_seq = self._acked
        for index, path in enumerate(segments):
            data = path.read_bytes()
            good_end = 0
            seqs_here = 0
            for line in data.splitlines(keepends=True):
                if not line.endswith(b"\n"):
                    break  # torn by a crash mid-write
                seq_text, _, payload = line[:-1].partition(b" ")
                try:
                    seq = int(seq_text)
                except ValueError:
                    break
                good_end += len(line)
                seqs_here += 1
                last_seq = max(last_seq, seq)
                if seq > self._acked:
                    self._pending.append((seq, payload))
            if good_end < len(data):
                with path.open("r+b") as handle:
                    handle.truncate(good_end)
            if index == len(segments) - 1:
                self._segment, self._segment_count = path, seqs_here
        self._next = last_seq + 1
        self._drop_acked_segments()

    def _drop_acked_segments(self) -> None:
        """Delete segments whose every message is acknowledged (never the one being written)."""
        segments = self._segments()
        for path, following in zip(segments, segments[1:], strict=False):
            if int(following.stem[4:]) - 1 <= self._acked and path != self._segment:
                path.unlink(missing_ok=True)

    # -- writing (the line's writer thread) -----------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Add a message; its sequence number. Raises :class:`SpoolFull` or OSError."""
        if b"\n" in payload:
            raise ValueError("a spooled message is one line")
        with self._lock:
            if len(self._pending) >= self.max_messages:
                raise SpoolFull(f"{len(self._pending)} messages waiting (the most kept)")
            seq = self._next
            if self._handle is None or self._segment_count >= SEGMENT_MESSAGES:
                self._roll(seq)
            assert self._handle is not None
            self._handle.write(b"%d %s\n" % (seq, payload))
            self._handle.flush()
            self._next += 1
            self._segment_count += 1
            self._pending.append((seq, payload))
            self._dirty = True
            return seq

    def _roll(self, seq: int) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
        if self._segment is None or self._segment_count >= SEGMENT_MESSAGES:
            self._segment = self.folder / f"seg-{seq:012d}.log"
            self._segment_count = 0
        self._handle = self._segment.open("ab")

    # -- reading and acknowledging (the output's thread) ----------------------------------------

    def acked(self) -> int:
        """The last sequence number acknowledged (every earlier one too)."""
        with self._lock:
            return self._acked

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def peek(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` unacknowledged messages with a sequence number above ``after``, in order."""
        with self._lock:
            out = []
            for seq, payload in self._pending:
                if seq > after:
                    out.append((seq, payload))
                    if len(out) >= limit:
                        break
            return out

    def ack_through(self, seq: int) -> None:
        """Every message up to ``seq`` is acknowledged."""
        with self._lock:
            while self._pending and self._pending[0][0] <= seq:
                self._pending.popleft()
            if seq > self._acked:
                self._acked = seq
                self._dirty = True

    def sync(self, force: bool = False) -> None:
        """fsync the segment and store the acknowledged position (every SYNC_EVERY_S, or now)."""
        with self._lock:
            if not self._dirty or (not force and time.monotonic() - self._synced_at < SYNC_EVERY_S):
                return
            if self._handle is not None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            tmp = self.folder / "acked.tmp"
            with tmp.open("w") as handle:
                handle.write(f"{self._acked}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / "acked")
            self._dirty = False
            self._synced_at = time.monotonic()
            self._drop_acked_segments()

    def close(self) -> None:
        self.sync(force=True)
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
            if self._lock_handle is not None:
                self._lock_handle.close()
                self._lock_handle = None
