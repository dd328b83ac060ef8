"""Station datasets: layouts, splits, groups, fingerprints and every bad-input case."""

from __future__ import annotations

import shutil

import pytest
from tests_support import write_manifest

from data.elpv import elpv_label, load_elpv
from data.errors import DataError
from data.station import load_station, verify_images


def test_folder_dataset_gets_seeded_stratified_splits(tiny_station):
    station = load_station(tiny_station, seed=3)
    assert station.classes == ["ok", "scratch", "spot"]
    counts = station.counts()
    for name in station.classes:
        assert counts["train"][name] > counts["test"][name] > 0
    again = load_station(tiny_station, seed=3)
    assert [s.split for s in station.samples] == [s.split for s in again.samples]
    assert station.fingerprint() == again.fingerprint()


def test_fingerprint_changes_with_a_label(tiny_station):
    before = load_station(tiny_station).fingerprint()
    moved = next((tiny_station / "ok").iterdir())
    shutil.move(moved, tiny_station / "spot" / moved.name)
    assert load_station(tiny_station).fingerprint() != before


def test_manifest_split_and_groups_are_honoured(tiny_station):
    files = sorted(tiny_station.rglob("*.png"))
    rows = [
        (f.relative_to(tiny_station).as_posix(), f.parent.name, "", f"part{i // 3}")
        for i, f in enumerate(files)
    ]
    station = load_station(write_manifest(tiny_station, rows, columns=("path", "label", "split", "group")))
    by_group: dict[str, set[str]] = {}
    for sample in station.samples:
        by_group.setdefault(sample.group, set()).add(sample.split)
    assert all(len(splits) == 1 for splits in by_group.values()), "a physical part leaked across splits"
    fixed = [(p, lab, "test" if i % 4 == 0 else "train", g) for i, (p, lab, _, g) in enumerate(rows)]
    station = load_station(write_manifest(tiny_station, fixed, columns=("path", "label", "split", "group")))
    assert [s.split for s in station.samples] == [r[2] for r in fixed]


def test_paths_escaping_the_root_and_missing_files_are_skipped(tiny_station, tmp_path):
    (tmp_path / "outside.png").write_bytes((next((tiny_station / "ok").iterdir())).read_bytes())
    rows = [
        (f.relative_to(tiny_station).as_posix(), f.parent.name) for f in sorted(tiny_station.rglob("*.png"))
    ]
    rows += [("../outside.png", "ok"), ("ok/does_not_exist.png", "ok")]
    station = load_station(write_manifest(tiny_station, rows, columns=("path", "label")))
    assert any("outside the dataset folder" in issue for issue in station.issues)
    assert any("do not exist" in issue for issue in station.issues)
    assert all(s.path.is_relative_to(tiny_station) for s in station.samples)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "nope", "no such dataset"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "no class folders with images"),
        (lambda root: _single_class(root), "only one class"),
        (lambda root: _manifest(root, "file,label\na.png,ok\n"), "at least 'path,label'"),
        (lambda root: _manifest(root, "path,label,split\nok/ok_000.png,ok,training\n"), "not one of train"),
        (lambda root: _text_file(root), "folder of class folders"),
    ],
)
def test_unusable_datasets_are_one_clear_error(tiny_station, make, message):
    with pytest.raises(DataError, match=message):
        load_station(make(tiny_station.parent) if message != "not one of train" else make(tiny_station))


def _single_class(root):
    (root / "one" / "ok").mkdir(parents=True)
    shutil.copy(next((root / "station" / "ok").iterdir()), root / "one" / "ok" / "a.png")
    shutil.copy(next((root / "station" / "spot").iterdir()), root / "one" / "ok" / "b.png")
    return root / "one"


def _text_file(root):
    path = root / "notes.txt"
    path.write_text("x")
    return path


def _manifest(root, text):
    path = root / "m.csv"
    path.write_text(text)
    return path


def test_empty_class_folder_is_reported(tiny_station):
    (tiny_station / "dent").mkdir()
    station = load_station(tiny_station)
    assert "dent" not in station.classes
    assert any("dent" in issue and "no images" in issue for issue in station.issues)


def test_duplicates_across_splits_are_removed_from_test(tiny_station):
    source = next((tiny_station / "spot").iterdir())
    for i in range(12):
        shutil.copy(source, tiny_station / "spot" / f"copy_{i}.png")
    station = load_station(tiny_station)
    hashes = {}
    for sample in station.samples:
        hashes.setdefault(sample.path.read_bytes(), set()).add(sample.split)
    assert all(len(splits) == 1 for splits in hashes.values())
    assert any("duplicated across splits" in issue for issue in station.issues)


def test_elpv_label_mapping_and_split():
    assert [elpv_label(p) for p in (0.0, 1 / 3, 2 / 3, 1.0)] == ["ok", None, "defect", "defect"]
    station = load_elpv(seed=0)
    assert station.classes == ["defect", "ok"]
    assert len(station.samples) == 2624 - 295
    counts = station.counts()
    assert abs(counts["test"]["defect"] / sum(counts["test"].values()) - 821 / 2329) < 0.02


def test_a_class_too_small_to_split_stays_in_train(tiny_station):
    (tiny_station / "rare").mkdir()
    import cv2
    import numpy as np

    for i in range(2):
        cv2.imwrite(str(tiny_station / "rare" / f"r{i}.png"), np.full((40, 40), 10 + i, np.uint8))
    station = load_station(tiny_station)
    assert {s.split for s in station.samples if s.label == "rare"} == {"train"}
    assert any("'rare' has too few images (2)" in issue for issue in station.issues)
    counts = station.counts()
    assert counts["train"]["ok"] > counts["val"]["ok"] > 0


def test_shared_magnetic_tile_manifest_keeps_its_group_split():
    from conftest import shared_dataset

    from data.loading import load_pixels

    station = load_station(shared_dataset("magnetic_tile"))
    assert "free" in station.classes and len(station.classes) == 6
    splits_of_group: dict[str, set[str]] = {}
    for sample in station.samples:
        splits_of_group.setdefault(sample.group, set()).add(sample.split)
    assert all(len(s) == 1 for s in splits_of_group.values())
    loaded = load_pixels(station.split("test")[:3], channels=1, max_side=64, progress=False)
    assert len(loaded) == 3 and max(loaded.images[0].shape) <= 64


def test_fewer_than_five_groups_keep_everything_in_train_with_a_note(tmp_path):
    import cv2
    import numpy as np
    from tests_support import write_manifest

    from data.station import load_station

    rows = []
    for i in range(12):
        name = f"img{i}.png"
        cv2.imwrite(str(tmp_path / name), np.full((16, 16), 10 * i, np.uint8))
        rows.append((name, "ok" if i % 2 else "ng", f"g{i % 3}"))
    station = load_station(write_manifest(tmp_path, rows, ["path", "label", "group"]))
    assert {s.split for s in station.samples} == {"train"}
    assert any("too few to hold any out" in issue for issue in station.issues)


def _rows(station_root):
    files = sorted(station_root.rglob("*.png"))
    return [(f.relative_to(station_root).as_posix(), f.parent.name) for f in files]


def test_a_repeated_manifest_row_counts_once_with_a_note(tiny_station):
    rows = _rows(tiny_station)
    station = load_station(write_manifest(tiny_station, rows + rows[:3], columns=("path", "label")))
    assert len(station.samples) == len(rows)
    assert any("3 repeated entries of the same file counted once" in issue for issue in station.issues)


def test_one_file_under_two_labels_is_an_error(tiny_station):
    rows = _rows(tiny_station)
    path, label = rows[0]
    other = "spot" if label != "spot" else "ok"
    with pytest.raises(DataError, match=f"{path}: listed under two labels"):
        load_station(write_manifest(tiny_station, [*rows, (path, other)], columns=("path", "label")))


def test_verify_images_drops_and_reports_files_that_do_not_decode(tiny_station):
    (tiny_station / "ok" / "notes.png").write_text("a text file named like an image")
    (tiny_station / "spot" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    listed = load_station(tiny_station)
    station = verify_images(listed)
    assert len(station.samples) == len(listed.samples) - 2
    assert not any(s.path.name in ("notes.png", "cut.jpg") for s in station.samples)
    assert any("2 file(s) are not readable images" in issue for issue in station.issues)
    assert any("notes.png" in issue for issue in station.issues)
    assert verify_images(station) is station


def test_a_manifest_path_with_a_nul_byte_or_too_long_is_a_skipped_row(tiny_station):
    rows = [
        (f.relative_to(tiny_station).as_posix(), f.parent.name) for f in sorted(tiny_station.rglob("*.png"))
    ]
    bad = [("ok/a\x00b.png", "ok"), ("ok/" + "a" * 300 + ".png", "ok")]
    station = load_station(write_manifest(tiny_station, rows + bad, columns=("path", "label")))
    assert len(station.samples) == len(rows)
    assert sum("not a usable file name" in issue for issue in station.issues) == 2


def test_folder_symlinks_pointing_outside_the_station_are_skipped(tiny_station, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "dent").mkdir(parents=True)
    image = next((tiny_station / "ok").iterdir())
    for name in ("a.png", "b.png"):
        shutil.copy(image, outside / "dent" / name)
    (tiny_station / "ok" / "linked.png").symlink_to(outside / "dent" / "a.png")
    (tiny_station / "dent").symlink_to(outside / "dent", target_is_directory=True)
    station = load_station(tiny_station)
    assert "dent" not in station.classes
    assert all(s.path.is_relative_to(tiny_station) for s in station.samples)
    assert any("1 file(s) point outside the dataset folder" in issue for issue in station.issues)
    assert any("dent" in issue and "outside the dataset folder" in issue for issue in station.issues)


def test_parts_per_split_and_masked_defects_are_counted_from_the_manifest(tiny_station):
    files = sorted(tiny_station.rglob("*.png"))
    splits = ("train", "val", "test")
    rows = [
        (
            f.relative_to(tiny_station).as_posix(),
            f.parent.name,
            splits[i % 3],
            f"{f.parent.name}-{i % 6}",
            "" if f.parent.name == "ok" else f.relative_to(tiny_station).as_posix(),
        )
        for i, f in enumerate(files)
    ]
    station = load_station(write_manifest(tiny_station, rows, ("path", "label", "split", "group", "mask")))
    parts = station.group_counts()
    assert parts["test"]["spot"] == 2 and parts["train"]["ok"] == 2  # groups i%6 in {2,5}, {0,3}
    assert station.normal_classes == {"ok"}
    assert station.masked() == {"scratch": 24, "spot": 24}
