"""Where frames come from: cameras through OpenCV, folders, a simulated station, line-scan, GenICam.

Every source delivers :class:`Frame` objects through the same small interface, so the pipeline
never cares which one feeds it. ``open_source`` turns the CLI's ``--source`` text into one.
"""

from inspector.line.sources.base import BadFrame, Frame, FrameSource, SourceDisconnected, SourceError
from inspector.line.sources.spec import SOURCE_HELP, open_source

__all__ = [
    "SOURCE_HELP",
    "BadFrame",
    "Frame",
    "FrameSource",
    "SourceDisconnected",
    "SourceError",
    "open_source",
]
