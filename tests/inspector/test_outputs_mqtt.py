"""MQTT to the MES against a real Mosquitto broker that the tests start (and kill) on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys

import pytest
from broker_support import Broker, Subscriber, first_copies, mosquitto_binary, wait_until
from ledger_support import BACKENDS, database_url
from tests_support import demo_line_request
from typer.testing import CliRunner

from inspector.line.build import build_pipeline
from inspector.line.outputs import BUFFERING, CONNECTED
from inspector.store import Ledger, ResultFilter

pytestmark = pytest.mark.slow  # a 300-frame run with the broker killed, and a second process


@pytest.fixture
def broker(tmp_path):
    mosquitto_binary()  # skip (or fail under CI) before anything else
    started = Broker(tmp_path / "broker").start()
    yield started
    started.stop()


def _ledger_rows(ledger: Ledger, run_id: int) -> list[dict]:
    return ledger.query_results(ResultFilter(run_id=run_id), limit=5000, newest_first=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_broker_killed_and_restarted_mid_run_loses_no_message(broker, tmp_path, backend):
    """300 frames from the simulated station; the broker is SIGKILLed after 60 parts arrived and
    restarted once our output holds parts on disk. Every recorded part reaches the subscriber, in
    the ledger's order (QoS 1 may repeat one: each is counted once, at its first arrival)."""
    subscriber = Subscriber(broker, "plant/#")
    with database_url(backend, tmp_path) as url, Ledger(url) as ledger:
        request = demo_line_request(tmp_path, "sim?fps=0", 300, [f"{broker.url}/plant"], station="cell 7")
        pipeline = build_pipeline(request, ledger)
        output = pipeline.outputs.outputs[0]
        assert output.part_topic == "plant/cell_7/part"
        pipeline.start()
        try:
            wait_until(lambda: len(subscriber.parts()) >= 60, what="60 parts at the subscriber")
            broker.kill()
            wait_until(
                lambda: (
                    output.health().state == BUFFERING
                    and output.health().pending >= 10
                    or not pipeline.running
                ),
                what="parts kept on disk while the broker is away",
            )
            assert output.health().state == BUFFERING, "the run ended before the broker was missed"
            broker.start()
            wait_until(lambda: not pipeline.running, 600, "the run to end")
        finally:
            pipeline.stop()
            pipeline.wait()
        rows = _ledger_rows(ledger, pipeline.run_id)
        assert len(rows) == 300
        wait_until(lambda: len(first_copies(subscriber.parts())) >= 300, what="every part at the subscriber")
        subscriber.close()
        got = first_copies(subscriber.parts())
        assert [m["frame"] for m in got] == [r["frame_index"] for r in rows]
        assert all(m["run"] == pipeline.run_id and m["station"] == "cell 7" for m in got)
        assert [(m["verdict"], m["class"]) for m in got] == [(r["verdict"], r["label"]) for r in rows]
        assert [m["part"] for m in got] == list(range(1, 301))
        assert all(m["model"]["sha256"] == pipeline.engine.sha256 for m in got)
        health = output.health()
        assert health.dropped == 0 and health.pending == 0 and health.sent >= 300
        kinds = [e["kind"] for e in ledger.events(run_id=pipeline.run_id, limit=1000)]
        assert "output_down" in kinds and "output_up" in kinds
        states = [s["state"] for s in subscriber.states()]
        assert states[0] == "running" and states[-1] == "stopped"


def test_parts_wait_on_disk_across_a_restart_of_our_process(tiny_station, tmp_path):
    """The broker is down for a whole run of one process; the next process delivers its parts."""
    mosquitto_binary()
    broker = Broker(tmp_path / "broker")  # configured, not started: the port is closed
    home, db = tmp_path / "home", f"sqlite:///{tmp_path / 'line.db'}"
    common = ["--model", "demo", "--db", db, "--drop", "block", "--no-archive", "--home", str(home)]
    out = f"{broker.url}/mes"
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspector",
            "run",
            "--source",
            f"{tiny_station}?fps=0",
            "--frames",
            "15",
            "--output",
            out,
            *common,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "15 kept" in first.stdout and "unreachable" in first.stderr, first.stdout + first.stderr
    broker.start()
    try:
        subscriber = Subscriber(broker, "mes/#")
        from inspector.cli import app

        second = CliRunner().invoke(
            app, ["run", "--source", f"{tiny_station}?fps=0", "--frames", "5", "--output", out, *common]
        )
        assert second.exit_code == 0, second.output
        wait_until(lambda: len(first_copies(subscriber.parts())) >= 20, what="20 parts at the subscriber")
        got = first_copies(subscriber.parts())
        with Ledger(db) as ledger:
            runs = sorted(r["id"] for r in ledger.runs())
            rows = [row for run in runs for row in _ledger_rows(ledger, run)]
        assert [(m["run"], m["frame"]) for m in got] == [(r["run_id"], r["frame_index"]) for r in rows]
        assert [m["seq"] for m in got] == list(range(1, 21))
        subscriber.close()
    finally:
        broker.stop()


def test_a_late_subscriber_reads_the_retained_station_state(broker, tiny_station, tmp_path):
    request = demo_line_request(tmp_path, f"{tiny_station}?fps=0", 3, [broker.url])
    pipeline = build_pipeline(request)
    pipeline.run()
    assert pipeline.outputs.outputs[0].health().sent == 3
    late = Subscriber(broker, "inspector/station-1/state", client_id="late")
    wait_until(lambda: late.states(), what="the retained state")
    assert late.states()[-1]["state"] == "stopped" and late.messages[-1][2] is True
    late.close()


def test_a_broker_that_refuses_us_is_failing_not_a_stopped_line(tmp_path, tiny_station):
    mosquitto_binary()
    broker = Broker(tmp_path / "broker")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    try:
        request = demo_line_request(
            tmp_path, f"{tiny_station}?fps=0", 5, [f"mqtt://ana:pw@127.0.0.1:{broker.port}"]
        )
        pipeline = build_pipeline(request)
        pipeline.run()
        assert pipeline.stats.snapshot().written == 5
        output = pipeline.outputs.outputs[0]
        assert output.health().pending == 5  # kept on disk, for when the credentials are fixed
        alarms = [e.message for e in pipeline.events if e.kind == "output_down"]
        assert alarms and "refused" in alarms[0] and "pw" not in alarms[0]
        assert output.health().state != CONNECTED
    finally:
        broker.stop()


def test_our_process_killed_leaves_the_station_offline(broker, tmp_path):
    """kill -9 mid-run: the broker publishes our last will, so the MES sees ``offline`` (retained)."""
    import signal

    home = tmp_path / "home"
    line = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inspector",
            "run",
            "--source",
            "sim?fps=5",
            "--model",
            "demo",
            "--db",
            f"sqlite:///{tmp_path / 'l.db'}",
            "--no-archive",
            "--home",
            str(home),
            "--station",
            "s9",
            "--output",
            broker.url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        watcher = Subscriber(broker, "inspector/s9/#", client_id="watcher")
        wait_until(lambda: len(watcher.parts()) >= 3, 600, "parts from the running line")
        assert watcher.states()[-1]["state"] == "running"
        line.send_signal(signal.SIGKILL)
        line.wait(60)
        wait_until(lambda: watcher.states()[-1]["state"] == "offline", what="the last will")
        watcher.close()
    finally:
        if line.poll() is None:
            line.kill()
            line.wait(60)
    late = Subscriber(broker, "inspector/s9/state", client_id="late")
    wait_until(lambda: late.states(), what="the retained state")
    assert late.states()[-1]["state"] == "offline"
    late.close()


def test_mqtts_verifies_the_broker_and_delivers(tmp_path, tiny_station):
    """A TLS listener beside the plain one: parts go over TLS; a CA that did not sign the broker's
    certificate is a failing output (an alarm), the parts kept on disk."""
    from broker_support import make_tls_files
    from ledger_support import free_port

    mosquitto_binary()
    ca, cert, key = make_tls_files(tmp_path / "tls")
    other_ca, _, _ = make_tls_files(tmp_path / "other")
    broker = Broker(tmp_path / "broker")
    tls_port = free_port()
    broker.conf.write_text(
        broker.conf.read_text()
        + f"listener {tls_port} 127.0.0.1\nallow_anonymous true\n"
        + f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    )
    broker.start()
    try:
        subscriber = Subscriber(broker, "tls/#")

        def line(ca_file):
            request = demo_line_request(
                tmp_path, f"{tiny_station}?fps=0", 4, [f"mqtts://127.0.0.1:{tls_port}/tls?ca={ca_file}"]
            )
            pipeline = build_pipeline(request)
            pipeline.run()
            return pipeline

        refused = line(other_ca)
        output = refused.outputs.outputs[0]
        alarms = [e.message for e in refused.events if e.kind == "output_down"]
        assert alarms and "TLS refused" in alarms[0] and output.health().pending == 4
        accepted = line(ca)  # the same spool: the 4 kept parts go first, then 4 new ones
        assert accepted.outputs.outputs[0].health().sent == 8
        wait_until(lambda: len(first_copies(subscriber.parts())) >= 8, what="8 parts over TLS")
        assert [m["run"] for m in first_copies(subscriber.parts())] == [refused.run_id] * 4 + [
            accepted.run_id
        ] * 4
        subscriber.close()
    finally:
        broker.stop()
