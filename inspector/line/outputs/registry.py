"""Which class serves each allowed URL scheme, and building outputs from URLs.

The allow-list itself and the URL grammar are configuration (:mod:`inspector.output_urls`, read by
the settings too); this pairs each scheme with its implementation, named as "package.module:Class"
and imported only when a URL uses it, so a line without outputs never loads paho, pymodbus or
asyncua. A new output registers here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from inspector.line.outputs.base import Output
from inspector.output_urls import SCHEMES, OutputError, OutputSpec, SchemeInfo

_IMPLEMENTATIONS: dict[str, str | Callable[..., Output]] = {
    "mqtt": "inspector.line.outputs.mqtt:MqttOutput",
    "mqtts": "inspector.line.outputs.mqtt:MqttOutput",
    "modbus": "inspector.line.outputs.modbus:ModbusOutput",
    "opc.tcp": "inspector.line.outputs.opcua:OpcUaOutput",
}


def register_scheme(info: SchemeInfo, implementation: str | Callable[..., Output]) -> None:
    """Allow ``info.name://`` URLs, built by ``implementation``: an Output class (or factory) called
    as ``implementation(spec, home=…, station=…)``, or "package.module:Class" to import it lazily."""
    SCHEMES[info.name] = info
    _IMPLEMENTATIONS[info.name] = implementation


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
