"""What the ledger's table mixins share: the engine and sessions they are mixed onto, and the one
rule that database trouble leaves a public method as a one-line :class:`LedgerError`.

:class:`~inspector.store.Ledger` is assembled from :class:`Table` subclasses (accounts, the audit
trail) so no one module holds every table's SQL.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from inspector.store import database
from inspector.store.errors import LedgerError

if TYPE_CHECKING:
    from sqlalchemy import Engine

P = ParamSpec("P")
T = TypeVar("T")


def now() -> datetime:
    """Timestamps are stored in UTC."""
    return datetime.now(timezone.utc)


class Table:
    """The ledger's engine and sessions, as the mixins see them (the ledger provides them)."""

    _engine: Engine
    _writing: Callable[[], AbstractContextManager[Session]]
    _reading: Callable[[], AbstractContextManager[Session]]


def guarded(method: Callable[P, T]) -> Callable[P, T]:
    """Database failures leave ``method`` as a one-line LedgerError naming the database."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except LedgerError:
            raise
        except (SQLAlchemyError, sqlite3.Error) as exc:
            table = args[0]
            assert isinstance(table, Table)
            raise database.db_error(exc, table._engine.url, method.__name__.replace("_", " ")) from exc

    return wrapper
