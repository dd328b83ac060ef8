"""Every output takes the place of a regular file only; new files get the umask's permissions."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from models.files import (
    JSONTooDeep,
    UnsafeOutput,
    atomic_write,
    atomic_write_text,
    default_mode,
    output_target,
    read_json,
)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"


@pytest.mark.parametrize("kind", ["fifo", "link-to-fifo", "folder", "link-to-device", "device"])
def test_non_regular_targets_are_refused_and_left_alone(tmp_path, kind):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    paths = {
        "fifo": fifo,
        "link-to-fifo": tmp_path / "l1",
        "folder": tmp_path / "folder",
        "link-to-device": tmp_path / "l2",
        "device": Path("/dev/null"),
    }
    (tmp_path / "l1").symlink_to(fifo)
    (tmp_path / "l2").symlink_to("/dev/null")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafeOutput, match="refusing to write over it"):
        atomic_write_text(paths[kind], "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "no temp file left behind"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_existing_file_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        output_target(path, overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_text(path, "theirs", overwrite=False)
    assert path.read_text() == "mine"


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path, umask_022):
    fresh = atomic_write_text(tmp_path / "new.txt", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644 == default_mode()
    kept = tmp_path / "private.txt"
    kept.write_text("x")
    kept.chmod(0o600)
    atomic_write_text(kept, "y")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    os.umask(0o077)
    assert default_mode() == 0o600


def test_a_private_file_is_owner_only_and_keeps_a_stricter_mode(tmp_path, umask_022):
    """``private=True`` (settings with a password): 0600 when new, tightened from 0644, 0400 kept."""
    fresh = atomic_write_text(tmp_path / "secret.json", "x", private=True)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    fresh.chmod(0o644)  # written by an older version
    atomic_write_text(fresh, "y", private=True)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    fresh.chmod(0o400)
    atomic_write_text(fresh, "z", private=True)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o400 and fresh.read_text() == "z"
    assert stat.S_IMODE(atomic_write_text(tmp_path / "plain.txt", "x").stat().st_mode) == 0o644


def test_a_full_disk_mid_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("yesterday's export\n")

    def write_until_full(tmp: Path) -> None:
        tmp.write_text("half of today")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, write_until_full)
    assert target.read_text() == "yesterday's export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_read_json_refuses_a_nesting_bomb_with_a_message(tmp_path):
    """``json.loads`` raised RecursionError on ``[[[[...``; the readers of model.json, settings.json,
    the registry index and golden baselines all go through this one."""
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, {"b": 2}]}')
    assert read_json(path) == {"a": [1, {"b": 2}]}
    for depth in (100_000, 500):  # one the parser cannot take, one it can that later code might not
        path.write_text("[" * depth + "]" * depth)
        with pytest.raises(JSONTooDeep, match="nested too deeply"):
            read_json(path)
