"""Modbus TCP for the reject gate: our server, a real pymodbus client playing the PLC, on 127.0.0.1."""

from __future__ import annotations

import socket
import threading

from broker_support import wait_until
from ledger_support import free_port
from tests_support import demo_line_request

from inspector.line.build import build_pipeline
from inspector.line.outputs import CONNECTED, FAILING
from inspector.store import ResultFilter


def _u32(registers, at):
    return (registers[at] << 16) | registers[at + 1]


class Plc(threading.Thread):
    """Polls the reject coil as fast as it can; in handshake mode writes 0 back after each reject."""

    def __init__(self, port: int, handshake: bool) -> None:
        super().__init__(daemon=True)
        from pymodbus.client import ModbusTcpClient

        self.client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
        wait_until(self.client.connect, 30, "the Modbus server")
        self.handshake = handshake
        self.rejects = 0
        self.done = threading.Event()

    def run(self) -> None:
        from pymodbus.exceptions import ConnectionException

        try:
            while not self.done.is_set():
                bits = self.client.read_coils(0, count=2, device_id=1).bits
                if bits[0] and self.handshake:
                    self.rejects += 1
                    assert not self.client.write_coil(0, False, device_id=1).isError()
        except (ConnectionException, OSError):
            pass  # the line stopped and its server closed

    def registers(self) -> list[int]:
        return self.client.read_holding_registers(0, count=20, device_id=1).registers


def test_the_reject_coil_pulses_once_per_ng_part_and_the_counters_match_the_ledger(tmp_path):
    handshake_port, pulse_port = free_port(), free_port()
    outputs = [
        f"modbus://127.0.0.1:{handshake_port}?reject=NG&pulse_ms=0",
        f"modbus://127.0.0.1:{pulse_port}?pulse_ms=10",
    ]
    request = demo_line_request(tmp_path, "sim?fps=0", 60, outputs)
    pipeline = build_pipeline(request)
    pipeline.config.outputs_close_s = 120.0  # the PLC below acknowledges every reject before we stop
    handshake, pulsed = pipeline.outputs.outputs
    assert handshake.feed == "judged"
    pipeline.start()
    wait_until(lambda: handshake.health().state == CONNECTED, what="the Modbus server")
    plc = Plc(handshake_port, handshake=True)
    plc.start()
    reader = Plc(pulse_port, handshake=False)  # a second PLC connection, polling nothing
    try:
        wait_until(lambda: not pipeline.running, 600, "the run to end")
    finally:
        pipeline.stop()
        pipeline.wait()
    ledger = pipeline.ledger
    count = {
        v: ledger.count_results(ResultFilter(run_id=pipeline.run_id, verdicts=(v,)))
        for v in ("OK", "NG", "UNSURE", "ERROR")
    }
    assert sum(count.values()) == 60 and count["NG"] > 0, count
    # Handshake mode: the PLC saw (and acknowledged) the coil once per NG part.
    assert plc.rejects == count["NG"] == handshake.pulses
    # Pulse mode, default rule: one rising edge per NG, UNSURE or ERROR part.
    assert pulsed.pulses == count["NG"] + count["UNSURE"] + count["ERROR"]
    plc.done.set()
    plc.join(30)
    reader.client.close()
    assert pulsed.health().dropped == handshake.health().dropped == 0


def test_registers_hold_the_counters_and_refuse_the_plcs_writes(tmp_path, tiny_station):
    port = free_port()
    request = demo_line_request(
        tmp_path, f"{tiny_station}?fps=0", 12, [f"modbus://127.0.0.1:{port}?reject=OK"]
    )
    pipeline = build_pipeline(request)
    output = pipeline.outputs.outputs[0]
    pipeline.start()
    wait_until(lambda: output.health().state == CONNECTED, what="the Modbus server")
    plc = Plc(port, handshake=False)
    wait_until(lambda: not pipeline.running, 600, "the run to end")
    wait_until(lambda: output.health().pending == 0, what="every reject pulsed")
    regs = plc.registers()
    ledger = pipeline.ledger
    ok = ledger.count_results(ResultFilter(run_id=pipeline.run_id, verdicts=("OK",)))
    assert _u32(regs, 0) == 12 and _u32(regs, 8) == ok and _u32(regs, 2) == ok
    assert regs[4] in (1, 2, 3, 4) and 0 <= regs[6] <= 1000
    assert plc.client.read_input_registers(0, count=2, device_id=1).registers == regs[:2]
    assert plc.client.write_register(0, 7, device_id=1).isError()  # read-only for the PLC
    assert plc.client.write_coil(0, True, device_id=1).isError()
    plc.client.close()
    pipeline.stop()
    pipeline.wait()


def test_a_taken_port_is_a_failing_output_and_an_alarm_not_a_stopped_line(tmp_path, tiny_station):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        request = demo_line_request(tmp_path, f"{tiny_station}?fps=0", 5, [f"modbus://127.0.0.1:{port}"])
        pipeline = build_pipeline(request)
        pipeline.run()
    output = pipeline.outputs.outputs[0]
    assert pipeline.stats.snapshot().written == 5 and output.health().state == FAILING
    assert "cannot listen on 127.0.0.1" in output.health().detail
    assert output.health().dropped == 5
    alarms = [e for e in pipeline.ledger.events(run_id=pipeline.run_id) if e["kind"] == "output_down"]
    assert alarms and alarms[0]["level"] == "alarm"
