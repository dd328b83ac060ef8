"""The application layer's user-facing errors: one line, shown by the CLI and the UI as it is."""

from __future__ import annotations

from data.errors import DataError
from models.errors import ModelError


class InspectorError(Exception):
    """A command cannot do what was asked (bad arguments, missing state, refused overwrite)."""


USER_ERRORS: tuple[type[Exception], ...] = (ModelError, DataError, InspectorError, OSError)
"""What a person can fix: one line from the CLI, the app and background jobs; the rest are bugs."""
