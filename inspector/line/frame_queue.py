"""The bounded hand-over between capture and inference, with counted drops.

On a line a fresh frame matters more than an old one, so by default a full queue drops its
*oldest* frame; ``newest`` rejects the arriving one instead, and ``block`` makes capture wait
(replays and benchmarks that must judge every frame). Every drop is reported with its reason.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from inspector.line.sources.base import Frame

POLICIES = ("oldest", "newest", "block")


class FrameQueue:
    def __init__(self, maxsize: int, policy: str, on_drop: Callable[[Frame, str], None]) -> None:
        if policy not in POLICIES:
            raise ValueError(f"drop policy {policy!r}: choose from {', '.join(POLICIES)}")
        self.maxsize = max(1, maxsize)
        self.policy = policy
        self.on_drop = on_drop
        self.items: deque[Frame] = deque()
        self.closed = False
        self.cond = threading.Condition()

    def put(self, frame: Frame) -> None:
        dropped = None
        with self.cond:
            if self.policy == "block":
                while len(self.items) >= self.maxsize and not self.closed:
                    self.cond.wait(0.1)
            elif len(self.items) >= self.maxsize:
                if self.policy == "newest":
                    dropped = frame
                else:
                    dropped = self.items.popleft()
            if dropped is not frame:
                self.items.append(frame)
            self.cond.notify_all()
        if dropped is not None:
            self.on_drop(dropped, "queue_full")

    def get_batch(self, max_batch: int, timeout: float) -> list[Frame]:
        """The oldest frame, plus up to ``max_batch - 1`` more only if they are already waiting."""
        with self.cond:
            if not self.items and not self.closed:
                self.cond.wait(timeout)
            batch = []
            while self.items and len(batch) < max_batch:
                batch.append(self.items.popleft())
            if batch:
                self.cond.notify_all()
            return batch

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    @property
    def finished(self) -> bool:
        with self.cond:
            return self.closed and not self.items

    def __len__(self) -> int:
        with self.cond:
            return len(self.items)
