"""MQTT to the MES: one JSON message per part, QoS 1, kept on disk while the broker is away.

Topics (``PREFIX`` is the URL's path, ``inspector`` by default; ``STATION`` the station name with
``/``, ``+``, ``#`` and spaces made ``_``):

- ``PREFIX/STATION/part``: one message per recorded part, QoS 1, not retained (see README).
- ``PREFIX/STATION/state``: retained, QoS 1: ``running`` / ``stopped``, and ``offline`` as the
  last will when our process dies or loses the broker without saying goodbye.

Every part is appended to a :class:`~inspector.line.outputs.spool.DiskSpool` in the line's writer
thread right after the ledger recorded it (a file append, never the network); this output's own
thread publishes from the spool's head in order, a window of messages in flight, and removes a
message only when the broker acknowledged it (PUBACK). A lost connection sends again from the
first unacknowledged message, so the MES may see a message twice (QoS 1's at-least-once), each
with its ``seq`` and ``run``/``frame`` to recognise it, but never loses one and never sees them
out of order among the first copies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import ssl
import time
import uuid
from pathlib import Path

from inspector.line.outputs.base import (
    BUFFERING,
    CONNECTED,
    FAILING,
    LineInfo,
    LineState,
    PartReport,
    ThreadedOutput,
    utc_now,
)
from inspector.line.outputs.spool import DiskSpool, SpoolFull
from inspector.output_urls import OutputError, OutputSpec, topic_level

log = logging.getLogger(__name__)

SCHEMA = 1
WINDOW = 32  # messages in flight before the broker acknowledges
DEFAULT_SPOOL_MAX = 1_000_000  # ~11 h of parts at 25 per second, about 0.5 GB of disk
BACKOFF_MAX_S = 10.0


def _iso(moment) -> str | None:  # datetime | None
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def part_payload(part: PartReport, line: LineInfo) -> bytes:
    """The JSON of one part (without ``seq``, added when it is published)."""
    return json.dumps(
        {
            "schema": SCHEMA,
            "station": line.station,
            "run": line.run_id,
            "part": part.part,
            "frame": part.frame,
            "verdict": part.verdict,
            "class": part.label,
            "confidence": None if part.confidence is None else round(part.confidence, 5),
            "reason": part.reason,
            "model": {"name": line.model_name, "sha256": line.model_sha256},
            "lot": line.lot,
            "captured_at": _iso(part.captured_at),
            "judged_at": _iso(part.judged_at),
            "recorded_at": _iso(part.recorded_at),
        },
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")


def with_seq(seq: int, payload: bytes) -> bytes:
    return b'{"seq":%d,%s' % (seq, payload[1:])


def spool_folder(home: Path, spec: OutputSpec, station: str) -> Path:
    """One spool per broker, topic and station, so two configurations never share a queue."""
    key = f"{spec.host}:{spec.port}/{spec.path}/{station}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return home / "outputs" / f"mqtt-{topic_level(spec.host)}-{spec.port}-{digest}"


class MqttOutput(ThreadedOutput):
    """``mqtt://`` (plain TCP) or ``mqtts://`` (TLS: the broker's certificate and host name are
    verified against the system's CAs, or the ``ca=`` file)."""

    scheme = "mqtt"
    feed = "recorded"

    def __init__(self, spec: OutputSpec, home: Path | None = None, station: str = "") -> None:
        super().__init__(spec)
        if home is None:
            raise OutputError(f"output {self.name}: needs a home folder for its on-disk queue")
        self.station = station or "station-1"
        self.prefix = f"{spec.path}/{topic_level(self.station)}"
        self.part_topic = f"{self.prefix}/part"
        self.state_topic = f"{self.prefix}/state"
        try:
            self.spool = DiskSpool(
                spool_folder(home, spec, self.station), int(spec.options.get("spool_max", DEFAULT_SPOOL_MAX))
            )
        except OSError as exc:
            raise OutputError(f"output {self.name}: cannot open its on-disk queue ({exc})") from None
        self.ca = spec.options.get("ca")
        if self.ca is not None and not Path(str(self.ca)).is_file():
            raise OutputError(f"output {self.name}: ca={self.ca}: no such file")
        self.client_id = str(spec.options.get("client_id") or f"inspector-{uuid.uuid4().hex[:12]}")
        self.keepalive = int(spec.options.get("keepalive", 30))
        self.client = None
        self.connected = False
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._acked: set[int] = set()
        self._head = 0  # every seq up to here acknowledged
        self._sent_through = 0
        self._state: LineState | None = None
        self._state_dirty = False
        self._state_mid: int | None = None
        self._lost: str | None = None
        self._update(pending=self.spool.pending())

    # -- the writer thread ---------------------------------------------------------------------

    def submit(self, part: PartReport) -> None:
        if self.line is None:
            return
        if self._thread is not None and not self._thread.is_alive():
            self._count("dropped")  # the output broke (a bug, logged): count what it misses
            return
        try:
            self.spool.append(part_payload(part, self.line))
        except SpoolFull as exc:
            self._count("dropped")
            if self.health().state != FAILING:
                self._update(state=FAILING, detail=f"on-disk queue full: {exc}")
        except OSError as exc:
            self._count("dropped")
            self._update(state=FAILING, detail=f"on-disk queue: {exc.strerror or exc}")
        else:
            self._update(pending=self.spool.pending())

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is None:  # never started: only the spool (and its lock) to release
            self.spool.close()
            return
        super().close(timeout)

    # -- the output's thread -------------------------------------------------------------------

    def serve(self) -> None:
        try:
            self._publish_loop()
        finally:
            try:
                self._goodbye()
            except Exception:  # whatever broke the loop may break the goodbye: keep the spool safe
                self.spool.close()

    def _publish_loop(self) -> None:
        backoff, next_try = 0.5, 0.0
        while True:
            item = self.next_item(0.0 if self.client is not None else 0.05)
            while item is not None:
                if isinstance(item, LineState):
                    self._state, self._state_dirty = item, True
                item = self.next_item(0.0)
            if self.stopping.is_set() and self._done_stopping():
                break
            now = time.monotonic()
            if self.client is None and now >= next_try:
                if self._connect():
                    backoff = 0.5
                else:
                    next_try, backoff = now + backoff, min(backoff * 2, BACKOFF_MAX_S)
            if self.client is not None:
                rc = self.client.loop(timeout=0.05)
                if rc != 0 and self._lost is None:
                    self._lost = f"connection lost (paho rc {rc})"
                if self._lost is not None:
                    self._drop_client(self._lost)
                    next_try = time.monotonic() + backoff
                elif self.connected:
                    self._publish_window()
                    self._publish_state()
            self.spool.sync()
            self._update(pending=self.spool.pending())

    def _done_stopping(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return True
        if not self.connected:
            return True  # what is left stays on disk for the next start
        return self.spool.pending() == 0 and not self._state_dirty and self._state_mid is None

    def _connect(self) -> bool:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if self.spec.username is not None:
            client.username_pw_set(self.spec.username, self.spec.password)
        if self.spec.scheme == "mqtts":
            client.tls_set(ca_certs=str(self.ca) if self.ca else None)
        client.will_set(self.state_topic, self._state_payload("offline"), qos=1, retain=True)
        client.max_inflight_messages_set(WINDOW + 2)
        client.max_queued_messages_set(0)
        client.connect_timeout = 5.0
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._lost = None
        try:
            client.connect(self.spec.host, self.spec.port, keepalive=self.keepalive)
        except ssl.SSLError as exc:  # a wrong certificate or host name: a setting to fix, not a wait
            reason = (getattr(exc, "verify_message", None) or exc.reason or str(exc)).strip()
            self._down(f"broker {self.spec.host}:{self.spec.port}: TLS refused ({reason})", failing=True)
            return False
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            self._down(f"broker {self.spec.host}:{self.spec.port} unreachable ({reason})")
            return False
        self.client = client
        return True

    def _down(self, detail: str, failing: bool = False) -> None:
        """Not delivering: *buffering* (kept on disk, waiting for the broker) or *failing* (a refusal
        that waiting will not fix: credentials, TLS, a full queue)."""
        pending = self.spool.pending()
        self._update(state=FAILING if failing else BUFFERING, pending=pending, detail=detail)

    def _drop_client(self, reason: str | None) -> None:
        client, self.client = self.client, None
        self.connected = False
        self._inflight.clear()
        self._state_mid = None
        self._sent_through = self._head
        if client is not None:
            sock = client.socket()
            try:
                if sock is not None:
                    sock.close()
            except OSError:
                pass
        if reason is not None:
            self._down(reason, failing=reason.startswith("broker refused"))

    # paho callbacks (run inside client.loop, on this thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._lost = f"broker refused the connection ({reason_code})"
            return
        self.connected = True
        self._head = self.spool.acked()
        self._sent_through = self._head
        self._acked.clear()
        self._state_dirty = self._state is not None
        self._update(state=CONNECTED, detail=f"{self.spec.host}:{self.spec.port}, topic {self.prefix}/…")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._lost is None:
            self._lost = f"connection lost ({reason_code})"

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if mid == self._state_mid:
            self._state_mid = None
            return
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        self._acked.add(seq)
        head = self._head
        while head + 1 in self._acked:
            head += 1
            self._acked.discard(head)
        if head != self._head:
            self._count("sent", head - self._head)
            self._head = head
            self.spool.ack_through(head)

    def _publish_window(self) -> None:
        room = WINDOW - len(self._inflight)
        if room <= 0 or self.client is None:
            return
        for seq, payload in self.spool.peek(self._sent_through, room):
            info = self.client.publish(self.part_topic, with_seq(seq, payload), qos=1)
            if info.rc != 0:
                self._lost = f"publish failed (paho rc {info.rc})"
                return
            self._inflight[info.mid] = seq
            self._sent_through = seq

    def _state_payload(self, state: str) -> bytes:
        line = self.line
        body = {
            "schema": SCHEMA,
            "station": self.station,
            "state": state,
            "run": line.run_id if line else None,
            "model": {"name": line.model_name, "sha256": line.model_sha256} if line else None,
            "at": _iso(utc_now()),
            "pid": os.getpid(),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _publish_state(self) -> None:
        if not self._state_dirty or self._state is None or self.client is None:
            return
        state = "running" if self._state.running else "stopped"
        info = self.client.publish(self.state_topic, self._state_payload(state), qos=1, retain=True)
        if info.rc == 0:
            self._state_dirty = False
            self._state_mid = info.mid

    def _goodbye(self) -> None:
        if self.client is not None:
            if self.connected:
                deadline = time.monotonic() + 2.0
                self._publish_state()
                while self._state_mid is not None and self._lost is None and time.monotonic() < deadline:
                    self.client.loop(timeout=0.05)
                try:
                    self.client.disconnect()  # a clean goodbye: the broker drops the last will
                    self.client.loop(timeout=0.05)
                except Exception:
                    pass
            self._drop_client(None)
        self.spool.close()
        self._update(pending=self.spool.pending())
