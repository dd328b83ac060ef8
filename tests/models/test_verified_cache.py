"""``models.files.verified_cache``: a derived file is reused while its stamp vouches for its bytes,
and rebuilt (once) when it is missing, damaged or refused by its reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.files import sha256_file, stamp_path, verified_cache


class Unloadable(Exception):
    pass


def _cache(tmp_path: Path, builds: list[Path], **kwargs):
    def build(path: Path) -> None:
        builds.append(path)
        path.write_text(f"derived {len(builds)}")

    return verified_cache(
        tmp_path / "derived.bin", build, lambda path, digest: (path.read_text(), digest), **kwargs
    )


def test_built_once_then_reused(tmp_path):
    builds: list[Path] = []
    text, digest = _cache(tmp_path, builds)
    assert text == "derived 1" and digest == sha256_file(tmp_path / "derived.bin")
    assert stamp_path(tmp_path / "derived.bin").read_text().strip() == digest
    assert _cache(tmp_path, builds) == (text, digest) and len(builds) == 1


@pytest.mark.parametrize("damage", ["truncate", "no-stamp", "no-file"])
def test_damaged_or_unstamped_cache_is_rebuilt(tmp_path, damage):
    builds: list[Path] = []
    _cache(tmp_path, builds)
    target = tmp_path / "derived.bin"
    if damage == "truncate":
        target.write_text("derived")
    elif damage == "no-stamp":
        stamp_path(target).unlink()
    else:
        target.unlink()
    assert _cache(tmp_path, builds)[0] == "derived 2"


def test_stamped_bytes_the_reader_refuses_are_rebuilt(tmp_path):
    builds: list[Path] = []
    target = tmp_path / "derived.bin"

    def build(path: Path) -> None:
        builds.append(path)
        path.write_text(f"derived {len(builds)}")

    def open_file(path: Path, _digest: str) -> str:
        if path.read_text() == "derived 1":
            raise Unloadable
        return path.read_text()

    with pytest.raises(Unloadable):  # a freshly built file the reader refuses: the caller hears it
        verified_cache(target, build, open_file)
    assert verified_cache(target, build, open_file, unusable=(Unloadable,)) == "derived 2"


def test_a_stamp_under_another_name(tmp_path):
    builds: list[Path] = []
    stamp = tmp_path / "legacy.sha256"
    _, digest = _cache(tmp_path, builds, stamp=stamp)
    assert stamp.read_text().strip() == digest and not stamp_path(tmp_path / "derived.bin").exists()
    _cache(tmp_path, builds, stamp=stamp)
    assert len(builds) == 1
