"""An on-disk FIFO of messages not yet acknowledged: what MQTT keeps while the broker is away.

Layout of the folder: ``seg-<first seq>.log`` files of lines ``<seq> <payload>\\n`` (the payload is
one line of JSON), and ``acked`` holding the last sequence number the broker acknowledged, every
earlier one included. Appends are flushed to the OS at once (so they survive a crash of our
process) and fsynced every ``SYNC_EVERY_S`` (power loss); a line torn by a crash is cut off when
the spool is opened again. ``acked`` is rewritten atomically; if our process dies before it is
updated, the last messages are sent once more on restart (at-least-once, as MQTT QoS 1 is).

Bounded: past ``max_messages`` unacknowledged messages (on disk; at most ``MEMORY`` of them in
memory, the oldest, the rest read back as those are acknowledged), new ones are refused (and counted by the
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
MEMORY = 10_000  # pending messages also kept in memory; the rest are read back from disk


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
    def __init__(self, folder: Path, max_messages: int = 1_000_000) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_handle = _lock(self.folder / "lock")
        self.max_messages = max_messages
        self._lock = threading.Lock()
        # The oldest unacknowledged messages, at most MEMORY of them; the rest stay on disk only
        # and are read back as these are acknowledged (a weekend's parts need no weekend of RAM).
        self._mem: deque[tuple[int, bytes]] = deque()
        self._acked = self._read_acked()
        self._segment: Path | None = None
        self._segment_count = 0
        self._handle = None
        self._dirty = False
        self._synced_at = time.monotonic()
        self._next = self._load_tail()
        self._disk_from = self._acked + 1  # the first pending message not in memory

    # -- opening --------------------------------------------------------------------------------

    def _read_acked(self) -> int:
        try:
            return int((self.folder / "acked").read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _segments(self) -> list[Path]:
        found = []
        for path in self.folder.glob("seg-*.log"):
            try:
                found.append((int(path.stem[4:]), path))
            except ValueError:
                continue
        return [path for _, path in sorted(found)]

    @staticmethod
    def _lines(data: bytes):  # (seq, payload, end offset) of each whole line
        offset = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                return  # torn by a crash mid-write
            seq_text, _, payload = line[:-1].partition(b" ")
            try:
                seq = int(seq_text)
            except ValueError:
                return
            offset += len(line)
            yield seq, payload, offset

    def _load_tail(self) -> int:
        """The next sequence number, from the last segment (a torn last line is cut off)."""
        segments = self._segments()
        last_seq = self._acked
        if segments:
            path = segments[-1]
            data = path.read_bytes()
            good_end, count = 0, 0
            for seq, _, end in self._lines(data):
                last_seq, good_end, count = max(last_seq, seq), end, count + 1
            if good_end < len(data):
                with path.open("r+b") as handle:
                    handle.truncate(good_end)
            self._segment, self._segment_count = path, count
            if count == 0:
                last_seq = max(last_seq, int(path.stem[4:]) - 1)
        self._drop_acked_segments()
        return last_seq + 1

    def _refill(self) -> None:
        """Read pending messages back from disk into memory, up to MEMORY (call with the lock held)."""
        if self._disk_from >= self._next or len(self._mem) >= MEMORY:
            return
        if self._handle is not None:
            self._handle.flush()
        segments = self._segments()
        firsts = [int(path.stem[4:]) for path in segments]
        for path, first, following in zip(segments, firsts, [*firsts[1:], None], strict=False):
            if following is not None and following <= self._disk_from:
                continue
            if first > self._disk_from:
                return  # a gap cannot happen (sequence numbers are consecutive); stop, not guess
            for seq, payload, _ in self._lines(path.read_bytes()):
                if seq < self._disk_from:
                    continue
                if seq != self._disk_from or len(self._mem) >= MEMORY:
                    return
                self._mem.append((seq, payload))
                self._disk_from += 1

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
            pending = self._next - 1 - self._acked
            if pending >= self.max_messages:
                raise SpoolFull(f"{pending} messages waiting (the most kept)")
            seq = self._next
            if self._handle is None or self._segment_count >= SEGMENT_MESSAGES:
                self._roll(seq)
            assert self._handle is not None
            self._handle.write(b"%d %s\n" % (seq, payload))
            self._handle.flush()
            self._next += 1
            self._segment_count += 1
            if self._disk_from == seq and len(self._mem) < MEMORY:
                self._mem.append((seq, payload))
                self._disk_from += 1
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
            return self._next - 1 - self._acked

    def peek(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` unacknowledged messages with a sequence number above ``after``, in order."""
        with self._lock:
            if len(self._mem) < MEMORY // 2:
                self._refill()
            out = []
            for seq, payload in self._mem:
                if seq > after:
                    out.append((seq, payload))
                    if len(out) >= limit:
                        break
            return out

    def ack_through(self, seq: int) -> None:
        """Every message up to ``seq`` is acknowledged."""
        with self._lock:
            while self._mem and self._mem[0][0] <= seq:
                self._mem.popleft()
            if seq > self._acked:
                self._acked = seq
                self._disk_from = max(self._disk_from, seq + 1)
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
