"""Settings saved through inspector.settings_change: who may change which field, and the audit row
that names the fields (never their values: a database URL may carry a password)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from access_support import add_three, cheap_hashing  # noqa: F401 (a fixture)

from inspector.access import AccessDenied, Actor, local_actor
from inspector.settings import load_settings, save_settings
from inspector.settings_change import action_for, change_settings
from inspector.store import Ledger


@pytest.fixture
def home(tmp_path, cheap_hashing):  # noqa: F811
    save_settings(tmp_path, load_settings(tmp_path))
    return tmp_path


def _url(home) -> str:
    return f"sqlite:///{home / 'inspector.db'}"


def test_fields_map_to_actions():
    assert action_for("operator") == "set_run_fields"
    assert action_for("unsure_below") == "thresholds" and action_for("gate_recall_drop") == "thresholds"
    assert action_for("db_url") == "settings" and action_for("outputs") == "settings"


def test_without_accounts_anyone_saves_and_it_is_audited(home):
    new = replace(load_settings(home), unsure_below=0.7, db_url="postgresql+psycopg://u:secret-db-pw@h/db")
    assert change_settings(home, _url(home), local_actor("kim"), new) == ["db_url", "unsure_below"]
    assert load_settings(home).unsure_below == 0.7
    with Ledger(_url(home)) as ledger:
        (row,) = ledger.audit_rows(kinds=("settings",))
    assert (row["actor"], row["detail"]) == ("kim", {"changed": ["db_url", "unsure_below"]})
    assert "secret-db-pw" not in str(row)
    assert change_settings(home, _url(home), local_actor("kim"), load_settings(home)) == []


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("operator", "relief", ("operator", "qa", "engineer")),
        ("unsure_below", 0.7, ("engineer",)),
        ("station", "line-9", ("engineer",)),
    ],
)
def test_who_may_change_which_field(home, field, value, allowed):
    add_three(_url(home))
    for name, role in (("cy", "operator"), ("bo", "qa"), ("ana", "engineer")):
        new = replace(load_settings(home), **{field: value})
        if role in allowed:
            assert change_settings(home, _url(home), Actor(name, role), new) == [field]
            save_settings(home, replace(new, **{field: getattr(type(new)(), field)}))  # back, for the next
        else:
            with pytest.raises(AccessDenied, match=f"needs the engineer role \\({name} is {role}\\)"):
                change_settings(home, _url(home), Actor(name, role), new)
            assert getattr(load_settings(home), field) != value
    with pytest.raises(AccessDenied, match="needs a login"):
        change_settings(home, _url(home), local_actor("kim"), replace(load_settings(home), **{field: value}))
