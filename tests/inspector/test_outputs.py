"""Line outputs without servers: URL checks (untrusted input), the on-disk spool, the output set."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from inspector.errors import InspectorError
from inspector.line.outputs import (
    BUFFERING,
    CONNECTED,
    FAILING,
    LineInfo,
    Output,
    OutputError,
    OutputSet,
    PartReport,
    check_output_urls,
    parse_output_url,
)
from inspector.line.outputs.spool import DiskSpool, SpoolFull
from inspector.settings import Settings, load_settings, save_settings


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://broker", "unknown scheme 'http'"),
        ("broker:1883", "not a URL"),
        ("mqtt://", "no host"),
        ("mqtt://bro ker", "spaces or control characters"),
        ("mqtt://broker:0", "port must be 1..65535"),
        ("mqtt://broker:65536", "bad port"),
        ("mqtt://broker:http", "bad port"),
        ("mqtt://bad_host!", "not a host name"),
        ("mqtt://broker/a/#", "'#' is not allowed"),
        ("mqtt://broker/a/+/b", "wildcards"),
        ("mqtt://broker/$SYS/x", "must not start with $"),
        ("mqtt://broker/a//b", "empty level"),
        ("mqtt://broker?qos=2", "unknown option 'qos'"),
        ("mqtt://broker?spool_max=10", "spool_max='10': must be 100..10000000"),
        ("mqtt://broker?keepalive=10&keepalive=20", "given twice"),
        ("mqtt://broker#frag", "'#' is not allowed"),
        ("modbus://plc.local:5020", "binds an IP address"),
        ("modbus://127.0.0.1:5020/x", "takes no path"),
        ("modbus://127.0.0.1:5020?reject=BAD", "comma-separated list"),
        ("modbus://user:pw@127.0.0.1:5020", "takes no user name"),
        ("opc.tcp://999.1.1.1:4840", "binds an IP address"),
        (5, "must be a URL text"),
    ],
)
def test_bad_urls_are_one_line_errors(url, problem):
    with pytest.raises(OutputError) as caught:
        parse_output_url(url)
    message = str(caught.value)
    assert problem in message and "\n" not in message


def test_good_urls_and_their_defaults():
    spec = parse_output_url("mqtt://mes.plant.example")
    assert (spec.host, spec.port, spec.path) == ("mes.plant.example", 1883, "inspector")
    spec = parse_output_url("MQTT://user:s3cret@10.0.0.5:1884/plant/line3?keepalive=10")
    assert spec.port == 1884 and spec.path == "plant/line3" and spec.options == {"keepalive": 10}
    assert spec.password == "s3cret" and "s3cret" not in spec.redacted() and "user:***@" in spec.redacted()
    # Listening servers: loopback unless another interface is named.
    assert parse_output_url("modbus://:5020").host == "127.0.0.1"
    assert parse_output_url("modbus://localhost:5020").host == "127.0.0.1"
    assert parse_output_url("opc.tcp://0.0.0.0:4841").host == "0.0.0.0"
    spec = parse_output_url("modbus://127.0.0.1:5020?reject=ng,unsure&pulse_ms=50")
    assert spec.options == {"reject": ("NG", "UNSURE"), "pulse_ms": 50}
    assert parse_output_url("opc.tcp://127.0.0.1").port == 4840


def test_a_password_never_shows_in_the_error():
    with pytest.raises(OutputError) as caught:
        parse_output_url("mqtt://ana:topsecret@broker:99999")
    assert "topsecret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtt://ana:top@secret@broker:1883/line3", "mqtt://ana:***@broker:1883/line3"),
        ("mqtts://ana:top@secret@broker/line3?ca=ca.pem", "mqtts://ana:***@broker/line3?ca=ca.pem"),
        ("opc.tcp://ana:top@secret@127.0.0.1:4840", "opc.tcp://ana:***@127.0.0.1:4840"),
        ("mqtt://ana@plant:topsecret@broker", "mqtt://ana@plant:***@broker"),  # an @ in the user name
        ("mqtt://ana:top:secret@broker", "mqtt://ana:***@broker"),  # the password is after the first ':'
    ],
)
def test_a_password_holding_an_at_sign_is_masked_where_the_parser_ends_it(url, shown):
    """The mask used to stop at the first '@' while the URL parser splits at the last: 'secret' leaked."""
    spec = parse_output_url(url)
    assert "secret" in spec.password and spec.redacted() == shown


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mqtt://ana:top@secret@broker?keepalive=1", "keepalive='1'"),
        ("mqtt://ana:top@secret@broker?qos=2", "unknown option 'qos'"),
        ("opc.tcp://ana:top@secret@127.0.0.1:4840?x=1", "unknown option 'x'"),
        ("mqtt://ana@plant:topsecret@broker:99999", "port"),
        ("mqtt://ana:top/secret@broker", "bad port"),  # a '/' ends the address early: never readable
        ("mqtt://ana:top?secret@broker", "bad port"),
    ],
)
def test_the_refusal_of_a_url_with_an_odd_password_never_shows_it(url, problem):
    with pytest.raises(OutputError) as caught:
        check_output_urls([url])
    message = str(caught.value)
    assert problem in message and "secret" not in message and ":***@" in message, message


def test_an_output_with_an_at_sign_in_its_password_reports_health_without_it():
    class Failing(Output):
        scheme = "mqtt"

        def submit(self, part: PartReport) -> None:
            raise RuntimeError("boom")

    events: list[tuple[str, str, str]] = []
    output = Failing(parse_output_url("mqtt://ana:top@secret@broker/line3"))
    outputs = OutputSet([output])
    outputs.start(LineInfo("s1", 1, "m", "abc"), lambda *e: events.append(e))
    outputs.recorded(_part(1))
    output._update(state=FAILING, detail="broker away")
    outputs.close(0.1)
    assert events and all("secret" not in text for _, _, text in events), events
    assert any("ana:***@broker/line3" in text for _, _, text in events), events


def test_two_servers_on_one_port_are_refused():
    with pytest.raises(OutputError, match="both listen on 127.0.0.1:5020"):
        check_output_urls(["modbus://127.0.0.1:5020", "opc.tcp://localhost:5020"])


def test_settings_with_a_broker_password_are_written_owner_only(tmp_path):
    """Probe (issue 27): settings.json holding an MQTT/OPC UA password was created world-readable."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        path = save_settings(tmp_path, Settings(outputs=["mqtt://line:s3cret@127.0.0.1:1883/plant"]))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(0o400)  # an existing, stricter mode is kept
        save_settings(tmp_path, Settings(outputs=["opc.tcp://admin:s3cret@0.0.0.0:4840"]))
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
    finally:
        os.umask(previous)
    assert load_settings(tmp_path).outputs == ["opc.tcp://admin:s3cret@0.0.0.0:4840"]


def test_settings_keep_outputs_and_refuse_a_bad_one(tmp_path):
    save_settings(tmp_path, Settings(outputs=["mqtt://127.0.0.1:1883/plant"]))
    assert load_settings(tmp_path).outputs == ["mqtt://127.0.0.1:1883/plant"]
    (tmp_path / "settings.json").write_text(json.dumps({"outputs": ["ftp://x"]}))
    with pytest.raises(InspectorError, match="settings.json: output ftp://x: unknown scheme"):
        load_settings(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"outputs": "mqtt://x"}))
    with pytest.raises(Exception, match="outputs must be a list"):
        load_settings(tmp_path)


def test_the_spool_keeps_order_across_a_restart_and_cuts_a_torn_line(tmp_path):
    spool = DiskSpool(tmp_path, max_messages=1000)
    for i in range(10):
        spool.append(json.dumps({"i": i}).encode())
    spool.ack_through(3)
    spool.sync(force=True)
    spool._lock_handle.close()  # the process died: the kernel drops its lock, no close() ran
    # A crash mid-append: half a line at the end of the segment.
    segment = next(tmp_path.glob("seg-*.log"))
    with segment.open("ab") as handle:
        handle.write(b'11 {"i": 10')
    again = DiskSpool(tmp_path, max_messages=1000)
    assert [seq for seq, _ in again.peek(0, 100)] == [4, 5, 6, 7, 8, 9, 10]
    assert again.append(b'{"i":"new"}') == 11
    assert [json.loads(p)["i"] for _, p in again.peek(9, 100)] == [9, "new"]


def test_the_spool_is_bounded_and_drops_acknowledged_segments(tmp_path, monkeypatch):
    from inspector.line.outputs import spool as spool_module

    monkeypatch.setattr(spool_module, "SEGMENT_MESSAGES", 10)
    monkeypatch.setattr(spool_module, "SYNC_EVERY_S", 0.0)
    spool = DiskSpool(tmp_path, max_messages=25)
    for _ in range(25):
        spool.append(b"{}")
    with pytest.raises(SpoolFull):
        spool.append(b"{}")
    assert len(list(tmp_path.glob("seg-*.log"))) == 3
    spool.ack_through(20)
    spool.sync(force=True)
    assert len(list(tmp_path.glob("seg-*.log"))) == 1 and spool.pending() == 5
    spool.close()
    assert DiskSpool(tmp_path).pending() == 5


class Recording(Output):
    scheme = "test"

    def __init__(self, fail: bool = False) -> None:
        from inspector.output_urls import OutputSpec

        super().__init__(OutputSpec("test://x", "test", "x", 1))
        self.parts: list[PartReport] = []
        self.fail = fail

    def submit(self, part: PartReport) -> None:
        if self.fail:
            raise RuntimeError("boom")
        self.parts.append(part)


def _part(n: int) -> PartReport:
    now = datetime.now(timezone.utc)
    return PartReport(n, n, "OK", "ok", 0.9, "", now, now)


def test_an_output_set_survives_a_broken_output_and_reports_health_as_events():
    good, bad = Recording(), Recording(fail=True)
    events: list[tuple[str, str, str]] = []
    outputs = OutputSet([good, bad])
    outputs.start(LineInfo("s1", 1, "m", "abc"), lambda *e: events.append(e))
    for n in range(1, 4):
        outputs.recorded(_part(n))
        outputs.judged(_part(n))  # fed to "judged" outputs only
    assert [p.part for p in good.parts] == [1, 2, 3]
    assert bad.health().dropped == 3
    bad._update(state=BUFFERING, pending=3, detail="broker away")
    bad._update(state=CONNECTED)
    bad._update(state=FAILING, detail="port taken")
    levels = [(level, kind) for level, kind, _ in events]
    assert levels == [("alarm", "output_down"), ("info", "output_up"), ("alarm", "output_down")]
    outputs.close(0.1)
    assert ("warning", "output_dropped") in [(lvl, kind) for lvl, kind, _ in events]
    assert "port taken" in events[2][2]


def test_output_set_drop_reports_are_throttled():
    bad = Recording(fail=True)
    events: list = []
    outputs = OutputSet([bad])
    outputs.start(LineInfo("s1", 1, "m", "abc"), lambda *e: events.append(e))
    outputs.recorded(_part(1))
    outputs.report_drops(0.0)
    outputs.recorded(_part(2))
    outputs.report_drops(3600.0)
    assert len([e for e in events if e[1] == "output_dropped"]) == 1
    time.sleep(0)  # (no timing involved: the second report is suppressed by its interval)


def test_one_spool_one_process(tmp_path):
    from inspector.line.outputs.spool import SpoolBusy

    first = DiskSpool(tmp_path)
    with pytest.raises(SpoolBusy, match="in use by another running line"):
        DiskSpool(tmp_path)
    first.close()
    DiskSpool(tmp_path).close()


def test_mqtts_needs_its_ca_file(tmp_path):
    from inspector.line.outputs import build_outputs

    assert parse_output_url("mqtts://broker").port == 8883
    with pytest.raises(OutputError, match="ca=/no/such.pem: no such file"):
        build_outputs(["mqtts://broker?ca=/no/such.pem"], tmp_path)


def test_a_line_that_fails_to_start_releases_its_outputs(tmp_path, tiny_station):
    """A source that cannot open, then Start again (the app's retry): the MQTT spool is free."""
    import shutil

    from tests_support import demo_line_request

    from inspector.line.build import build_pipeline
    from inspector.line.sources.base import SourceError

    folder = tmp_path / "frames"
    shutil.copytree(tiny_station, folder)
    request = demo_line_request(tmp_path, str(folder), 2, ["mqtt://127.0.0.1:1/plant"])
    pipeline = build_pipeline(request)
    shutil.rmtree(folder)  # the source disappears between Start and open
    with pytest.raises(SourceError):
        pipeline.start()
    with pytest.raises(OutputError, match="ca=/nope: no such file"):  # the second one fails to build
        from inspector.line.outputs import build_outputs

        build_outputs(["mqtt://127.0.0.1:1/plant", "mqtts://127.0.0.1:2/x?ca=/nope"], tmp_path / "home")
    shutil.copytree(tiny_station, folder)
    again = build_pipeline(request)  # no "in use by another running line"
    again.run()
    assert again.outputs.outputs[0].health().pending == 2


def test_a_hung_plug_in_output_is_counted_and_the_line_goes_on(tmp_path, tiny_station, monkeypatch):
    """A third-party output registered at run time, whose thread hangs on its first part: its
    queue fills, what does not fit is counted as dropped, and every frame is still judged and
    written."""
    import threading

    from tests_support import demo_line_request

    from inspector.line.build import build_pipeline
    from inspector.line.outputs import registry
    from inspector.line.outputs.base import ThreadedOutput
    from inspector.output_urls import SchemeInfo

    release = threading.Event()

    class Hung(ThreadedOutput):
        scheme = "hung"
        feed = "judged"
        queue_size = 5

        def __init__(self, spec, home=None, station=""):
            super().__init__(spec)

        def serve(self) -> None:
            self._update(state="connected")
            while not (self.stopping.is_set() and self.items.empty()):
                if isinstance(self.next_item(0.05), PartReport):
                    release.wait()  # the PLC never answers (until the test lets go)
                    self._count("sent")

    monkeypatch.setitem(registry.SCHEMES, "hung", SchemeInfo("hung", 1, listens=False))
    monkeypatch.setitem(registry._IMPLEMENTATIONS, "hung", Hung)
    request = demo_line_request(tmp_path, f"{tiny_station}?fps=0", 30, ["hung://127.0.0.1"])
    pipeline = build_pipeline(request)
    output = pipeline.outputs.outputs[0]
    pipeline.start()
    while pipeline.stats.snapshot().written < 30:  # every frame judged and written, output hung
        time.sleep(0.05)
    assert output.health().sent == 0
    release.set()
    pipeline.wait()
    health = output.health()
    assert pipeline.stats.snapshot().written == 30
    assert health.dropped > 0 and health.sent + health.dropped == 30
    assert any(e.kind == "output_dropped" and "parts not delivered" in e.message for e in pipeline.events)


def test_the_spool_keeps_only_the_oldest_in_memory_and_reads_the_rest_back(tmp_path, monkeypatch):
    from inspector.line.outputs import spool as spool_module

    monkeypatch.setattr(spool_module, "MEMORY", 4)
    monkeypatch.setattr(spool_module, "SEGMENT_MESSAGES", 3)
    spool = DiskSpool(tmp_path, max_messages=100)
    for i in range(1, 21):
        spool.append(b'{"i":%d}' % i)
    assert len(spool._mem) == 4 and spool.pending() == 20

    def drain(upto: int) -> list[int]:
        got = []
        while spool.pending() and (not got or got[-1] < upto):
            batch = spool.peek(spool.acked(), min(3, upto - (got[-1] if got else 0)))
            got += [seq for seq, _ in batch]
            spool.ack_through(batch[-1][0])
        return got

    assert drain(9) == list(range(1, 10))
    spool.sync(force=True)
    spool.close()
    again = DiskSpool(tmp_path, max_messages=100)  # a restart: memory empty, all read back from disk
    assert again.pending() == 11 and again.append(b'{"i":21}') == 21
    spool = again
    assert drain(21) == list(range(10, 22))
    assert [json.loads(p) for _, p in again.peek(0, 5)] == []


def test_every_allowed_scheme_has_a_class_that_serves_it():
    """The allow-list (inspector.output_urls, read by the settings) and the classes that serve each
    scheme (inspector.line.outputs.registry) are two tables: a scheme the settings accept must
    never fail to build on the line."""
    from inspector.line.outputs import registry
    from inspector.output_urls import SCHEMES

    assert set(SCHEMES) == set(registry._IMPLEMENTATIONS)
