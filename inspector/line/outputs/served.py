"""Outputs that are servers the PLC polls (Modbus TCP, OPC UA): an asyncio server on the output's
own thread, woken as soon as the line hands it a part.

The line's thread only queues a part and pokes the server's event loop; the loop owns every value
a client reads. A port already taken is the output's failure (counted as dropped parts, shown in
the line's health), never the line's.
"""

from __future__ import annotations

import asyncio

from inspector.line.outputs.base import FAILING, PartReport, ThreadedOutput, check_port_free
from inspector.output_urls import OutputSpec


class ServedOutput(ThreadedOutput):
    """Subclasses implement ``_serve_async`` and wait on ``self._wake`` for new parts."""

    def __init__(self, spec: OutputSpec) -> None:
        super().__init__(spec)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def _put(self, item) -> None:
        super()._put(item)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop has closed
                pass

    def serve(self) -> None:
        problem = check_port_free(self.spec.host, self.spec.port)
        if problem:
            self._update(state=FAILING, detail=problem)
            self._drain_as_dropped()
            return
        asyncio.run(self._run_async())

    async def _run_async(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        await self._serve_async()

    async def _serve_async(self) -> None:
        raise NotImplementedError

    def _drain_as_dropped(self) -> None:
        while not self.stopping.is_set() or not self.items.empty():
            item = self.next_item(0.2)
            if isinstance(item, PartReport):
                self._count("dropped")
