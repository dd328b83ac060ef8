"""The results ledger (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL for shared plants."""

from __future__ import annotations

from inspector.store.database import default_url, upgrade
from inspector.store.errors import LedgerError
from inspector.store.ledger import Ledger
from inspector.store.records import ResultFilter, ResultRecord, ShadowRecord, ShadowUpdate

__all__ = [
    "Ledger",
    "LedgerError",
    "ResultFilter",
    "ResultRecord",
    "ShadowRecord",
    "ShadowUpdate",
    "default_url",
    "upgrade",
]
