"""Account names and passwords: what is accepted, and how a password becomes a stored hash.

Hashes are argon2id (argon2-cffi's ``PasswordHasher``, its RFC 9106 defaults: memory-hard, so a
stolen ledger file costs an attacker memory per guess, not just time). A hash made with older
parameters is replaced at the next good login (``needs_rehash``). Nothing here puts a password
into a message: a refusal says what rule was broken, never what was typed.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from inspector.errors import InspectorError

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing is memory-hard, but a megabyte of "password" is not one
MAX_NAME = 64

hasher = PasswordHasher()  # a module attribute, so that tests may swap in cheaper parameters


def check_name(name: str) -> str:
    """An account name: 1 to 64 printable characters (no control, ANSI or bidi codes), no padding.

    Names end up in the audit trail and in every "who" column; a newline or an escape sequence in
    one could forge or hide rows where it is printed.
    """
    if not name or not name.strip():
        raise InspectorError("a user needs a name")
    if len(name) > MAX_NAME:
        raise InspectorError(f"a user name has at most {MAX_NAME} characters")
    if not name.isprintable():
        raise InspectorError("a user name may hold only printable characters (no control or escape codes)")
    if name != name.strip():
        raise InspectorError("a user name may not start or end with a space")
    return name


def check_password(password: str) -> None:
    """The rules a new password must meet (the password itself is never quoted back)."""
    if len(password) < MIN_PASSWORD:
        raise InspectorError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InspectorError(f"a password has at most {MAX_PASSWORD} characters")
    if "\x00" in password:
        raise InspectorError("a password may not contain a NUL character")


def hash_password(password: str) -> str:
    check_password(password)
    return hasher.hash(password)


def matches(stored_hash: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored_hash`` was made from (a damaged hash: no)."""
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def waste_time(password: str) -> None:
    """Verify against a dummy hash, so that an unknown name answers as slowly as a wrong password."""
    matches(_dummy_hash(), password)


@functools.cache
def _dummy_hash() -> str:
    """A hash of nothing anyone types (made once, on first need: hashing costs memory and time)."""
    return hasher.hash("not-a-password: unknown user")


def needs_rehash(stored_hash: str) -> bool:
    try:
        return hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False
