"""Turning the ``--source`` text of the CLI (and the app's source box) into a frame source."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import parse_qsl

from data.errors import DataError
from data.station import Station, load_station
from inspector.line.sources.base import FrameSource, SourceError
from inspector.line.sources.opencv_source import STREAM_PREFIXES, VIDEO_SUFFIXES

SOURCE_HELP = (
    "camera index (0), video file, stream URL (rtsp://…), image folder, "
    "sim[:DATA] (simulated station, default ELPV), linescan[:DATA], or genicam:PRODUCER.cti[#SERIAL]; "
    "options after '?', e.g. sim?profile=lighting&fps=15"
)


def _options(text: str) -> tuple[str, dict[str, str]]:
    if "?" not in text or text.startswith(STREAM_PREFIXES):
        return text, {}
    base, query = text.split("?", 1)
    return base, dict(parse_qsl(query))


def check_rate(value: float | None, what: str = "--fps") -> float | None:
    """A replay rate: None or 0 means unpaced, else frames per second.

    Negative, NaN and infinite rates are refused (they used to mean "unpaced" silently).
    """
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise SourceError(f"{what} {value}: must be a finite number of frames per second >= 0 (0: unpaced)")
    return value or None


def _rate(options: dict[str, str], default: float | None) -> float | None:
    if "fps" not in options:
        return check_rate(default)
    try:
        value = float(options["fps"])
    except ValueError:
        raise SourceError(f"source option fps={options['fps']!r}: not a number") from None
    return check_rate(value, "source option fps=")


def _int(options: dict[str, str], key: str, default: int, minimum: int) -> int:
    """An integer source option, at least ``minimum`` (a bad one is refused, never defaulted)."""
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError:
        raise SourceError(f"source option {key}={options[key]!r}: not a whole number") from None
    if value < minimum:
        raise SourceError(f"source option {key}={value}: must be {minimum} or more")
    return value


def _flag(options: dict[str, str], key: str, default: bool) -> bool:
    value = options.get(key)
    return default if value is None else value.lower() not in ("0", "false", "no", "off")


def _station(data: str, seed: int) -> Station:
    """The station a simulated source replays: a named dataset, a folder or a manifest (none: ELPV)."""
    try:
        return load_station(data or "elpv", seed)
    except DataError as exc:
        raise SourceError(str(exc)) from None


def open_source(text: str, fps: float | None = None, loop: bool | None = None, seed: int = 0) -> FrameSource:
    """A source for ``text`` (not yet opened). ``fps``/``loop`` override the source's defaults."""
    from inspector.line.sources.folder_source import FolderSource
    from inspector.line.sources.opencv_source import VideoCaptureSource

    spec, options = _options(text.strip())
    if not spec:
        raise SourceError(f"empty source; expected {SOURCE_HELP}")
    rate = _rate(options, fps)
    kind, _, argument = spec.partition(":")
    if kind in ("sim", "demo"):
        from inspector.line.sources.simulated import SimulatedStation

        return SimulatedStation(
            _station(argument, seed),
            split=options.get("split", "test"),
            fps=rate if "fps" in options or fps is not None else 10.0,
            loop=_flag(options, "loop", True if loop is None else loop),
            profile=options.get("profile") or None,
            severity=_int(options, "severity", 2, 1),
            seed=seed,
        )
    if kind == "linescan":
        from inspector.line.sources.linescan import LineScanSource

        station = _station(argument, seed)
        return LineScanSource(
            station.split(options.get("split", "test")),
            name=f"line-scan over {station.source}",
            frame_height=_int(options, "height", 256, 1),
            overlap=_int(options, "overlap", 32, 0),
            fps=rate if "fps" in options or fps is not None else 10.0,
            loop=_flag(options, "loop", True if loop is None else loop),
        )
    if kind == "genicam":
        from inspector.line.sources.genicam import GenICamSource

        producer, _, serial = argument.partition("#")
        return GenICamSource(producer, serial or None)
    if spec.isdigit():
        return VideoCaptureSource(int(spec), fps=rate)
    if spec.startswith(STREAM_PREFIXES):
        return VideoCaptureSource(spec, fps=rate)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(
            path,
            fps=rate if "fps" in options or fps is not None else 10.0,
            loop=_flag(options, "loop", bool(loop)),
        )
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoCaptureSource(str(path), fps=rate, loop=_flag(options, "loop", bool(loop)))
    if not path.exists():
        raise SourceError(f"{spec}: no such folder, file or camera; expected {SOURCE_HELP}")
    raise SourceError(f"{spec}: not a video file or image folder; expected {SOURCE_HELP}")
