"""The project's own exception types for the model layer.

Callers (CLI, UI) catch these and show their message as one line; anything else that escapes is a
bug. Messages name the file and the problem so an engineer can act on them without a traceback.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class for every error the model layer reports to a user."""


class BundleError(ModelError):
    """A model bundle is missing, truncated, corrupt, mismatched or from a newer format."""


class ScheduleError(ModelError):
    """A merge schedule cannot reach the requested compute target on this backbone."""


class ExportError(ModelError):
    """ONNX export failed or the exported model disagrees with PyTorch."""
