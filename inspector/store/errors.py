"""The ledger's one-line errors, so the CLI and UI can show them as they are."""

from __future__ import annotations

from inspector.errors import InspectorError


class LedgerError(InspectorError):
    """The results ledger cannot do what was asked (bad URL, unreachable server, bad input)."""
