"""Account test helpers: cheap argon2 parameters (the real ones cost 64 MiB and ~0.1 s a hash)
and a ledger with one account of each role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

PASSWORDS = {"ana": "engineer-pass-1", "bo": "qa-pass-22", "cy": "operator-pass-3"}
ROLE_OF = {"ana": "engineer", "bo": "qa", "cy": "operator"}


@pytest.fixture
def cheap_hashing(monkeypatch) -> Iterator[PasswordHasher]:
    """Still argon2id, at parameters a test can afford many times over."""
    from inspector import passwords

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "hasher", cheap)
    passwords._dummy_hash.cache_clear()
    yield cheap
    passwords._dummy_hash.cache_clear()


def add_three(url: str) -> None:
    """ana (engineer, the first account), bo (qa) and cy (operator)."""
    from inspector.access import login
    from inspector.accounts import add_user

    add_user(url, None, "ana", "engineer", PASSWORDS["ana"])
    ana = login(url, "ana", PASSWORDS["ana"])
    add_user(url, ana, "bo", "qa", PASSWORDS["bo"])
    add_user(url, ana, "cy", "operator", PASSWORDS["cy"])
