"""Output URLs come from settings.json and the command line: untrusted text, checked here.

Every problem is an :class:`OutputError` of one line that names the URL (its password hidden).
What is checked: the scheme against the allow-list (:data:`SCHEMES`), the host (a DNS name or an IP
literal; listening outputs only bind an IP literal or ``localhost``, and ``127.0.0.1`` when none is
given), the port range, the path (MQTT topic rules), and each option against the scheme's own list.

The grammar and the allow-list are configuration, so they sit beside :mod:`inspector.settings`,
which refuses a settings file with a bad URL, rather than in the line outputs that build from them
(:mod:`inspector.line.outputs.registry`, which pairs each scheme with the class that serves it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from inspector.errors import InspectorError
from inspector.redact import redact_url

LOOPBACK = "127.0.0.1"
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class OutputError(InspectorError):
    """A line output cannot be configured as asked (one line, no traceback)."""


@dataclass(frozen=True)
class SchemeInfo:
    """What a URL scheme accepts. ``listens``: the host is where *we* listen (a server)."""

    name: str
    default_port: int
    listens: bool
    options: dict[str, Callable[[str], object]] = field(default_factory=dict)
    path: str = "none"  # none | topic
    credentials: bool = False
    summary: str = ""


@dataclass(frozen=True)
class OutputSpec:
    url: str
    scheme: str
    host: str
    port: int
    path: str = ""
    username: str | None = None
    password: str | None = None
    options: dict[str, object] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL as shown in the UI, the log and the ledger: never with its password."""
        if self.password is None:
            return self.url  # as read: no password (an ``@`` further on is part of the topic)
        return redact_url(self.url)


def _fail(url: str, message: str) -> OutputError:
    """A refusal naming the URL by :func:`redact_url`'s rule, the one its parsing follows."""
    return OutputError(f"output {redact_url(url)}: {message}")


def check_host(host: str) -> str:
    """A DNS name or an IP literal (raises ValueError otherwise)."""
    if not host:
        raise ValueError("no host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{host!r} is not a host name or IP address")
    if name.replace(".", "").isdigit():
        raise ValueError(f"{host!r} is not a valid IP address")
    return host


def check_topic(topic: str) -> str:
    """An MQTT topic prefix we publish under: no wildcards, no empty levels, no ``$`` system topics."""
    if not topic:
        raise ValueError("empty topic")
    if any(ch in topic for ch in "#+\x00"):
        raise ValueError(f"topic {topic!r} must not contain the wildcards # or + (or NUL)")
    if topic.startswith("$"):
        raise ValueError(f"topic {topic!r} must not start with $ (reserved for the broker)")
    if topic.startswith("/") or topic.endswith("/") or "//" in topic:
        raise ValueError(f"topic {topic!r} has an empty level")
    if len(topic.encode("utf-8")) > 1024:
        raise ValueError("topic is longer than 1024 bytes")
    return topic


def topic_level(text: str) -> str:
    """A station name as one topic level (``/``, wildcards and spaces become ``_``)."""
    cleaned = re.sub(r"[/#+\s\x00$]", "_", text.strip()) or "station"
    return cleaned[:200]


def parse_url(text: object, schemes: dict[str, SchemeInfo]) -> OutputSpec:
    if not isinstance(text, str):
        raise OutputError(f"an output must be a URL text, got {text!r}")
    url = text.strip()
    if not url:
        raise OutputError("empty output URL")
    if len(url) > 2048:
        raise OutputError("output URL longer than 2048 characters")
    if _CONTROL.search(url):
        raise _fail(url, "spaces or control characters are not allowed")
    if "://" not in url:
        raise _fail(url, f"not a URL; expected one of {', '.join(s + '://…' for s in schemes)}")
    if "#" in url:
        raise _fail(url, "'#' is not allowed (no URL fragments, no MQTT wildcards)")
    scheme = url.split("://", 1)[0].lower()
    info = schemes.get(scheme)
    if info is None:
        raise _fail(url, f"unknown scheme {scheme!r} (allowed: {', '.join(schemes)})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(url, f"bad port or address ({exc})") from None
    if port is not None and not 1 <= port <= 65535:
        raise _fail(url, "port must be 1..65535")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username or password) and not info.credentials:
        raise _fail(url, f"{scheme}:// takes no user name or password")
    host = parts.hostname or ""
    try:
        if info.listens:
            host = _bind_host(host)
        else:
            host = check_host(host)
    except ValueError as exc:
        raise _fail(url, str(exc)) from None
    path = unquote(parts.path)
    if info.path == "topic":
        try:
            path = check_topic(path.strip("/") if path not in ("", "/") else "inspector")
        except ValueError as exc:
            raise _fail(url, str(exc)) from None
    elif path not in ("", "/"):
        raise _fail(url, f"{scheme}:// takes no path (got {path!r})")
    else:
        path = ""
    options = _options(url, parts.query, info)
    return OutputSpec(url, scheme, host, port or info.default_port, path, username, password, options)


def _bind_host(host: str) -> str:
    """Where a server of ours listens: loopback unless another interface is named explicitly."""
    if host in ("", "localhost"):
        return LOOPBACK
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(
            f"a listening output binds an IP address ({LOOPBACK}, 0.0.0.0 for every interface, "
            f"or one interface's address), not {host!r}"
        ) from None


def _options(url: str, query: str, info: SchemeInfo) -> dict[str, object]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _fail(url, f"cannot read the options {query!r}") from None
    options: dict[str, object] = {}
    for key, value in pairs:
        if key in options:
            raise _fail(url, f"option {key!r} given twice")
        check = info.options.get(key)
        if check is None:
            known = ", ".join(info.options) or "none"
            raise _fail(url, f"unknown option {key!r} (known: {known})")
        try:
            options[key] = check(value)
        except ValueError as exc:
            raise _fail(url, f"option {key}={value!r}: {exc}") from None
    return options


# -- option parsers -----------------------------------------------------------------------------


def whole(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("not a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"must be {low}..{high}")
        return number

    return parse


def verdict_set(value: str) -> tuple[str, ...]:
    verdicts = tuple(v.strip().upper() for v in value.split(",") if v.strip())
    unknown = [v for v in verdicts if v not in ("OK", "NG", "UNSURE", "ERROR")]
    if unknown or not verdicts:
        raise ValueError("a comma-separated list of OK, NG, UNSURE, ERROR")
    return verdicts


def text(max_len: int = 200) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value or len(value) > max_len:
            raise ValueError(f"must be 1..{max_len} characters")
        return value

    return parse


def pulse_ms(value: str) -> int:
    """0 (handshake: the reject coil stays on until the PLC writes 0) or 10..60000 ms."""
    number = whole(0, 60_000)(value)
    if 0 < number < 10:
        raise ValueError("must be 0 (handshake) or 10..60000")
    return number


# The allow-list: a scheme not here is refused. Each is served by the class paired with it in
# inspector.line.outputs.registry; a plug-in adds both with its register_scheme.
SCHEMES: dict[str, SchemeInfo] = {
    info.name: info
    for info in (
        SchemeInfo(
            "mqtt",
            1883,
            listens=False,
            options={
                "client_id": text(64),
                "spool_max": whole(100, 10_000_000),
                "keepalive": whole(5, 3600),
            },
            path="topic",
            credentials=True,
            summary="mqtt://[user:password@]broker[:1883][/topic/prefix] — one JSON message per part (MES)",
        ),
        SchemeInfo(
            "mqtts",
            8883,
            listens=False,
            options={
                "client_id": text(64),
                "spool_max": whole(100, 10_000_000),
                "keepalive": whole(5, 3600),
                "ca": text(4096),
            },
            path="topic",
            credentials=True,
            summary="mqtts://[user:password@]broker[:8883][/prefix][?ca=CA.pem] — MQTT over TLS",
        ),
        SchemeInfo(
            "modbus",
            502,
            listens=True,
            options={"reject": verdict_set, "pulse_ms": pulse_ms, "unit": whole(0, 247)},
            summary="modbus://127.0.0.1[:502][?reject=NG,UNSURE,ERROR] — Modbus TCP server for the PLC",
        ),
        SchemeInfo(
            "opc.tcp",
            4840,
            listens=True,
            credentials=True,
            summary="opc.tcp://[user:password@]127.0.0.1[:4840] — OPC UA server (read-only) for PLC / SCADA",
        ),
    )
}


def parse_output_url(url: object) -> OutputSpec:
    """Check one output URL (raises :class:`OutputError`, one line)."""
    return parse_url(url, SCHEMES)


def check_output_urls(urls: Iterable[object]) -> list[OutputSpec]:
    """Check a list of URLs: each valid, and no two listening on the same address and port."""
    specs = [parse_output_url(url) for url in urls]
    seen: dict[tuple[str, int], str] = {}
    for spec in specs:
        if SCHEMES[spec.scheme].listens:
            key = (spec.host, spec.port)
            if key in seen:
                raise OutputError(
                    f"outputs {seen[key]} and {spec.redacted()} both listen on {key[0]}:{key[1]}"
                )
            seen[key] = spec.redacted()
    return specs
