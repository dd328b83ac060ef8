"""The idle lock's minutes in settings.json (issue 27): a whole number from 0 (never) to a day."""

from __future__ import annotations

import json

import pytest

from inspector.errors import InspectorError
from inspector.settings import Settings, load_settings, save_settings


def test_idle_lock_defaults_to_15_minutes_and_round_trips(tmp_path):
    assert Settings().idle_lock_minutes == 15
    save_settings(tmp_path, Settings(idle_lock_minutes=0))
    assert load_settings(tmp_path).idle_lock_minutes == 0


@pytest.mark.parametrize("value", [-1, 1441, 2.5, "15", True, None])
def test_a_bad_idle_lock_is_one_line_naming_the_field(tmp_path, value):
    (tmp_path / "settings.json").write_text(json.dumps({"idle_lock_minutes": value}))
    with pytest.raises(InspectorError, match="idle_lock_minutes") as caught:
        load_settings(tmp_path)
    assert "\n" not in str(caught.value)
