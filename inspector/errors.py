"""The application layer's user-facing error: one line, shown by the CLI and the UI as it is."""

from __future__ import annotations


class InspectorError(Exception):
    """A command cannot do what was asked (bad arguments, missing state, refused overwrite)."""
