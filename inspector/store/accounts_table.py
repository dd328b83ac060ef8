"""The ``users`` table's SQL, as methods the :class:`~inspector.store.Ledger` inherits.

Accounts live in the ledger so that stations sharing a PostgreSQL ledger share them. Every change
of an account commits together with its row in the hash-chained audit trail (kind ``user``), and
that append takes the chain's lock (SQLite: the writer's BEGIN IMMEDIATE; PostgreSQL: an advisory
lock) *before* anything is read, so two stations adding the first account at once cannot both
succeed. What a password must be, and how it is hashed, is decided above this layer
(:mod:`inspector.passwords`): here a hash is an opaque string that never leaves in a listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inspector.store import audit_chain
from inspector.store.errors import LedgerError
from inspector.store.records import ROLES
from inspector.store.schema import User
from inspector.store.table import Table, guarded, now

KIND = "user"  # the audit rows' kind for every account change
LISTED = ("name", "role", "disabled", "locked_until", "created_at", "password_changed_at")


@dataclass(frozen=True)
class AccountRow:
    """What a login needs to decide: the stored hash stays inside the inspector layer."""

    name: str
    role: str
    password_hash: str
    disabled: bool
    failed_logins: int
    locked_until: datetime | None


class AccountsTable(Table):
    """Account methods of the ledger (mixed into :class:`~inspector.store.Ledger`)."""

    @guarded
    def account_count(self, *, enabled_only: bool = False) -> int:
        """How many accounts exist (0: the product runs as one local user, as before accounts)."""
        stmt = select(func.count()).select_from(User)
        if enabled_only:
            stmt = stmt.where(User.disabled.is_(False))
        with self._reading() as session:
            return session.scalar(stmt) or 0

    @guarded
    def account(self, name: str) -> AccountRow | None:
        """The account called ``name`` (exactly), or None."""
        with self._reading() as session:
            user = session.scalar(select(User).where(User.name == name))
            return None if user is None else _row(user)

    @guarded
    def accounts(self) -> list[dict]:
        """Every account, by name: never its hash or failure count."""
        columns = [getattr(User, name) for name in LISTED]
        with self._reading() as session:
            return [dict(row._mapping) for row in session.execute(select(*columns).order_by(User.name))]

    @guarded
    def create_account(self, name: str, role: str, password_hash: str, *, by: str | None) -> None:
        """Add an account; ``by=None`` adds the first one and is refused once any account exists."""
        if role not in ROLES:
            raise LedgerError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        created = now()
        try:
            with self._writing() as session:
                audit_chain.append(  # first: it takes the chain's lock before anything is read
                    session,
                    kind=KIND,
                    actor=by or name,
                    subject=f"user {name}",
                    meaning="account added" if by else "first account added",
                    detail={"role": role},
                )
                if session.scalar(select(User.id).where(User.name == name)) is not None:
                    raise LedgerError(f"a user called {name} exists already")
                if by is None and session.scalar(select(func.count()).select_from(User)):
                    raise LedgerError("accounts exist already: an engineer must add this one")
                session.add(
                    User(
                        name=name,
                        role=role,
                        password_hash=password_hash,
                        disabled=False,
                        failed_logins=0,
                        created_at=created,
                        password_changed_at=created,
                    )
                )
                session.flush()
        except IntegrityError as exc:  # another station added the same name in between
            raise LedgerError(f"a user called {name} exists already") from exc

    @guarded
    def login_failed(self, name: str, max_failures: int, lock_for: timedelta) -> datetime | None:
        """Count a wrong password; at ``max_failures`` in a row the account locks (audited).

        Returns the end of the lock when this failure locked it, else None.
        """
        with self._writing() as session:
            user = _locked_row(session, name)
            user.failed_logins = (user.failed_logins or 0) + 1
            if user.failed_logins < max_failures:
                return None
            until = now() + lock_for
            user.failed_logins, user.locked_until = 0, until
            audit_chain.append(
                session,
                kind=KIND,
                actor=name,
                subject=f"user {name}",
                meaning="locked out",
                reason=f"{max_failures} wrong passwords in a row",
                detail={"locked_until": until.isoformat(timespec="seconds")},
            )
            return until

    @guarded
    def login_succeeded(self, name: str, new_hash: str | None = None) -> None:
        """Clear the failure count; ``new_hash`` replaces a hash made with older parameters."""
        with self._writing() as session:
            user = _locked_row(session, name)
            user.failed_logins, user.locked_until = 0, None
            if new_hash is not None:
                user.password_hash = new_hash

    @guarded
    def set_account_password(self, name: str, password_hash: str, *, by: str) -> None:
        """A new password (its own, or a reset by an engineer): unlocks the account; audited."""
        with self._writing() as session:
            audit_chain.append(
                session,
                kind=KIND,
                actor=by,
                subject=f"user {name}",
                meaning="password changed" if by == name else "password reset",
            )
            user = _locked_row(session, name)
            user.password_hash, user.password_changed_at = password_hash, now()
            user.failed_logins, user.locked_until = 0, None

    @guarded
    def disable_account(self, name: str, *, by: str) -> None:
        """Disable an account for good (rows that name it stay); the last enabled engineer stays."""
        with self._writing() as session:
            audit_chain.append(session, kind=KIND, actor=by, subject=f"user {name}", meaning="disabled")
            user = _locked_row(session, name)
            if user.disabled:
                raise LedgerError(f"{name} is disabled already")
            if user.role == "engineer":
                others = session.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.role == "engineer", User.disabled.is_(False), User.name != name)
                )
                if not others:
                    raise LedgerError(
                        f"{name} is the last enabled engineer: nobody could administer accounts after"
                    )
            user.disabled = True


def _locked_row(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    if user is None:
        raise LedgerError(f"no user called {name}")
    return user


def _row(user: User) -> AccountRow:
    return AccountRow(
        name=user.name,
        role=user.role,
        password_hash=user.password_hash,
        disabled=bool(user.disabled),
        failed_logins=user.failed_logins or 0,
        locked_until=user.locked_until,
    )
