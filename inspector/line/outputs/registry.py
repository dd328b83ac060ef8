"""The URL schemes a line output may use (the allow-list), and building outputs from URLs.

A scheme maps to the module and class that implement it, imported only when a URL uses it, so a
line without outputs never loads paho, pymodbus or asyncua. A new output registers here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from inspector.line.outputs.base import Output
from inspector.line.outputs.urls import (
    OutputError,
    OutputSpec,
    SchemeInfo,
    parse_url,
    text,
    verdict_set,
    whole,
)

SCHEMES: dict[str, SchemeInfo] = {}


def pulse_ms(value: str) -> int:
    """0 (handshake: the reject coil stays on until the PLC writes 0) or 10..60000 ms."""
    number = whole(0, 60_000)(value)
    if 0 < number < 10:
        raise ValueError("must be 0 (handshake) or 10..60000")
    return number


_IMPLEMENTATIONS: dict[str, str | Callable[..., Output]] = {}


def register_scheme(info: SchemeInfo, implementation: str | Callable[..., Output]) -> None:
    """Allow ``info.name://`` URLs, built by ``implementation``: an Output class (or factory) called
    as ``implementation(spec, home=…, station=…)``, or "package.module:Class" to import it lazily."""
    SCHEMES[info.name] = info
    _IMPLEMENTATIONS[info.name] = implementation


register_scheme(
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
    "inspector.line.outputs.mqtt:MqttOutput",
)
register_scheme(
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
    "inspector.line.outputs.mqtt:MqttOutput",
)
register_scheme(
    SchemeInfo(
        "modbus",
        502,
        listens=True,
        options={"reject": verdict_set, "pulse_ms": pulse_ms, "unit": whole(0, 247)},
        summary="modbus://127.0.0.1[:502][?reject=NG,UNSURE,ERROR] — Modbus TCP server for the PLC",
    ),
    "inspector.line.outputs.modbus:ModbusOutput",
)
register_scheme(
    SchemeInfo(
        "opc.tcp",
        4840,
        listens=True,
        credentials=True,
        summary="opc.tcp://[user:password@]127.0.0.1[:4840] — OPC UA server (read-only) for PLC / SCADA",
    ),
    "inspector.line.outputs.opcua:OpcUaOutput",
)


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


def build_output(spec: OutputSpec, **context: object) -> Output:
    implementation = _IMPLEMENTATIONS[spec.scheme]
    if not isinstance(implementation, str):
        return implementation(spec, **context)
    module_name, _, class_name = implementation.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise OutputError(f"output {spec.redacted()}: its library is not installed ({exc.name})") from None
    return getattr(module, class_name)(spec, **context)
