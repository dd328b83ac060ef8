"""Modbus TCP for the reject gate: our process is a Modbus TCP *server* (slave) that the PLC polls.

That is how smart cameras and vision PCs usually sit on a PLC's network (the PLC is the master
and already polls its other devices); the PLC needs no new driver and nothing on our side knows
the PLC's memory map. The server binds 127.0.0.1 unless the URL names another interface.

Layout (0-based addresses; every point is read-only except the handshake write below):

- Coil 0 — REJECT: set on a part whose verdict is in the ``reject`` rule (default NG, UNSURE,
  ERROR: anything not confidently OK leaves the line). With ``pulse_ms=N`` (default 200) it stays
  on N ms, then off at least N ms before the next reject's pulse, so every reject is one rising
  edge. With ``pulse_ms=0`` it is a handshake: it stays on until the PLC writes 0 to it.
- Coil 1 — RUNNING.
- Holding registers (the same values as input registers, for function 3 or 4; 32-bit values
  are two registers, high word first):

  ====  =====================================================
  0-1   part counter (parts judged in this run)
  2-3   reject counter (rejects signalled in this run)
  4     last verdict: 0 none, 1 OK, 2 NG, 3 UNSURE, 4 ERROR
  5     last class: its index in the model's classes + 1 (0: none)
  6     last confidence in ‰ (0-1000)
  7     running (0/1)
  8-9   OK count     10-11 NG count     12-13 UNSURE count     14-15 ERROR count
  16-17 last frame index (low 32 bits)
  18    heartbeat: +1 every second while the server runs (a PLC watchdog)
  19    rejects waiting for their pulse
  ====  =====================================================

A PLC that must not miss a reject under bursts reads the reject counter (2-3) rather than the
coil's edges: the counter never merges two parts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from inspector.line.outputs.base import (
    CONNECTED,
    FAILING,
    LineInfo,
    LineState,
    PartReport,
)
from inspector.line.outputs.served import ServedOutput
from inspector.output_urls import OutputSpec

log = logging.getLogger(__name__)

VERDICT_CODES = {"OK": 1, "NG": 2, "UNSURE": 3, "ERROR": 4}
DEFAULT_REJECT = ("NG", "UNSURE", "ERROR")
DEFAULT_PULSE_MS = 200
REGISTERS = 32
COIL_REJECT, COIL_RUNNING = 0, 1
HR_PARTS, HR_REJECTS, HR_VERDICT, HR_CLASS, HR_CONFIDENCE, HR_RUNNING = 0, 2, 4, 5, 6, 7
HR_COUNTS = {"OK": 8, "NG": 10, "UNSURE": 12, "ERROR": 14}
HR_FRAME, HR_HEARTBEAT, HR_WAITING = 16, 18, 19


def _u32(value: int) -> list[int]:
    value &= 0xFFFFFFFF
    return [value >> 16, value & 0xFFFF]


class ModbusOutput(ServedOutput):
    scheme = "modbus"
    feed = "judged"  # the gate wants the verdict now, not after the ledger's commit

    def __init__(self, spec: OutputSpec, home: Path | None = None, station: str = "") -> None:
        super().__init__(spec)
        self.reject = tuple(spec.options.get("reject", DEFAULT_REJECT))  # type: ignore[arg-type]
        self.pulse_s = int(spec.options.get("pulse_ms", DEFAULT_PULSE_MS)) / 1000.0  # type: ignore[arg-type]
        self.unit = int(spec.options.get("unit", 0))  # type: ignore[arg-type]
        self.registers = [0] * REGISTERS
        self.coils = [False, False]
        self.classes: tuple[str, ...] = ()
        self.waiting = 0  # rejects not yet signalled
        self.pulses = 0  # rising edges made on the reject coil
        self.clients = 0
        self._since = 0.0  # when the coil last changed
        self._plc_released = False

    def start(self, line: LineInfo, listener=None) -> None:
        self.classes = line.classes
        super().start(line, listener)

    # -- the output's thread -------------------------------------------------------------------

    async def _serve_async(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        regs = [SimData(0, count=REGISTERS, values=0, datatype=DataType.REGISTERS)]
        device = SimDevice(id=self.unit, simdata=(bits, list(bits), regs, list(regs)), action=self._action)
        self.server = ModbusTcpServer(
            device, address=(self.spec.host, self.spec.port), trace_connect=self._connection
        )
        try:
            await self.server.serve_forever(background=True)
        except RuntimeError:
            self._update(state=FAILING, detail=f"cannot listen on {self.spec.host}:{self.spec.port}")
            self._drain_as_dropped()
            return
        self._update(state=CONNECTED, detail=self._detail())
        heartbeat_at = time.monotonic()
        try:
            while True:
                self._take_items()
                now = time.monotonic()
                if now - heartbeat_at >= 1.0:
                    heartbeat_at = now
                    self.registers[HR_HEARTBEAT] = (self.registers[HR_HEARTBEAT] + 1) & 0xFFFF
                self._step_coil(now)
                await self._publish()
                if self.stopping.is_set() and (
                    (self.waiting == 0 and not self.coils[COIL_REJECT])
                    or (self.deadline is not None and now >= self.deadline)
                ):
                    break
                await self._sleep(self._next_change(now, heartbeat_at))
        finally:
            self.coils[COIL_RUNNING] = False
            self.registers[HR_RUNNING] = 0
            await self._publish()
            await self.server.shutdown()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        if not self.items.empty():
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.001, seconds))
        except asyncio.TimeoutError:
            pass

    def _next_change(self, now: float, heartbeat_at: float) -> float:
        soon = heartbeat_at + 1.0 - now
        if self.pulse_s > 0 and (self.coils[COIL_REJECT] or self.waiting):
            soon = min(soon, self._since + self.pulse_s - now)
        if self.stopping.is_set():
            soon = min(soon, 0.05)
        return soon

    def _take_items(self) -> None:
        while True:
            item = self.next_item(0.0)
            if item is None:
                return
            if isinstance(item, LineState):
                self.coils[COIL_RUNNING] = item.running
                self.registers[HR_RUNNING] = int(item.running)
                if item.running:  # a new run: its own counters
                    self.registers[HR_PARTS : HR_PARTS + 4] = [0, 0, 0, 0]
                    for address in HR_COUNTS.values():
                        self.registers[address : address + 2] = [0, 0]
            elif isinstance(item, PartReport):
                self._part(item)

    def _part(self, part: PartReport) -> None:
        r = self.registers
        r[HR_PARTS : HR_PARTS + 2] = _u32(part.part)
        r[HR_VERDICT] = VERDICT_CODES.get(part.verdict, 0)
        r[HR_CLASS] = self.classes.index(part.label) + 1 if part.label in self.classes else 0
        r[HR_CONFIDENCE] = 0 if part.confidence is None else max(0, min(1000, round(part.confidence * 1000)))
        r[HR_FRAME : HR_FRAME + 2] = _u32(part.frame)
        count_at = HR_COUNTS.get(part.verdict)
        if count_at is not None:
            r[count_at : count_at + 2] = _u32(((r[count_at] << 16) | r[count_at + 1]) + 1)
        if part.verdict in self.reject:
            total = ((r[HR_REJECTS] << 16) | r[HR_REJECTS + 1]) + 1
            r[HR_REJECTS : HR_REJECTS + 2] = _u32(total)
            self.waiting += 1
        self._count("sent")

    def _step_coil(self, now: float) -> None:
        """The reject coil's state machine: off (≥ pulse) → on (pulse, or until the PLC's 0) → off."""
        on = self.coils[COIL_REJECT]
        if on and self.pulse_s > 0 and now - self._since >= self.pulse_s:
            self.coils[COIL_REJECT], self._since = False, now
        elif on and self.pulse_s == 0 and self._plc_released:
            self.coils[COIL_REJECT], self._since = False, now
        elif not on and self.waiting and now - self._since >= self.pulse_s:
            self.coils[COIL_REJECT], self._since = True, now
            self.waiting -= 1
            self.pulses += 1
            self._plc_released = False
        self.registers[HR_WAITING] = min(self.waiting, 0xFFFF)
        self._update(pending=self.waiting)

    async def _publish(self) -> None:
        """Copy our state into the server's store (through its own write path)."""
        self._writing = True
        try:
            for func, values in ((16, self.registers), (15, self.coils)):
                await self.server.async_setValues(self.unit, func, 0, list(values))
            # input registers (function 4) mirror the holding registers
            await self.server.async_setValues(self.unit, 4, 0, list(self.registers))
        finally:
            self._writing = False

    _writing = False

    async def _action(self, function_code, start_address, address, count, registers, set_values):
        """Refuse the PLC's writes, except the handshake's 0 on the reject coil."""
        from pymodbus.constants import ExcCodes

        if set_values is None or self._writing:
            return None
        if (
            self.pulse_s == 0
            and function_code in (5, 15)
            and address == COIL_REJECT
            and count == 1
            and not any(set_values)
        ):
            self._plc_released = True
            self.coils[COIL_REJECT] = False  # what the PLC reads back at once
            if self._wake is not None:
                self._wake.set()
            return None
        return ExcCodes.ILLEGAL_ADDRESS

    def _connection(self, connected: bool) -> None:
        self.clients = max(0, self.clients + (1 if connected else -1))
        if self.health().state == CONNECTED:
            self._update(detail=self._detail())

    def _detail(self) -> str:
        n = self.clients
        return f"listening on {self.spec.host}:{self.spec.port}, {n} PLC connection{'s' if n != 1 else ''}"
