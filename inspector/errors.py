"""The application layer's user-facing errors: one line, shown by the CLI and the UI as it is."""

from __future__ import annotations

from data.errors import DataError
from models.errors import ModelError


class InspectorError(Exception):
    """A command cannot do what was asked (bad arguments, missing state, refused overwrite)."""


class StoppedBeforeFirstEpoch(InspectorError):
    """Training was stopped (cancel, time budget) before one epoch finished: nothing was written.

    Callers that know *why* it stopped (the wizard's budget or its Stop button) catch this type and
    say so, instead of matching the message's wording.
    """


USER_ERRORS: tuple[type[Exception], ...] = (ModelError, DataError, InspectorError, OSError)
"""What a person can fix: one line from the CLI, the app and background jobs; the rest are bugs."""
